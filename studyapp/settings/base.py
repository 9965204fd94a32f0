import importlib.util
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(os.environ.get("CTS_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set SECRET_KEY (or DEBUG=1 for a local run with a throwaway key).")
    SECRET_KEY = "insecure-local-development-key-only-used-with-DEBUG"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "studyapp.accounts",
    "studyapp.protocol",
    "studyapp.cohort",
    "studyapp.ops",
    "studyapp.sites",
    "studyapp.clips",
    "studyapp.annotations",
    "studyapp.demo",
    "studyapp.experiments",
    "studyapp.prospective",
    "studyapp.explanations",
    "studyapp.dashboards",
    "studyapp.reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "studyapp.common.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "studyapp.common.middleware.RefuseNulBytesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "studyapp.urls"
WSGI_APPLICATION = "studyapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "studyapp.accounts.context_processors.roles",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'cts-study.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A worker process shares the file: wait for its locks instead of failing, and let tests
    # use a file (not memory) so a worker started by a test sees the same data.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # WAL lets the web process read while the worker writes; NORMAL sync is safe with WAL.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE",
                                       "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-cts-study.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# The model backend, refusing sign-in for a while after CTS_LOGIN_MAX_FAILURES failures (studyapp/accounts/throttle.py).
AUTHENTICATION_BACKENDS = ["studyapp.accounts.throttle.ThrottledModelBackend"]
CTS_LOGIN_MAX_FAILURES = int(os.environ.get("CTS_LOGIN_MAX_FAILURES", "5"))
CTS_LOGIN_LOCKOUT_S = int(os.environ.get("CTS_LOGIN_LOCKOUT_S", "900"))
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "cohort:hand-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # plotly.js as shipped inside the plotly package (figures are built in Python), never from a CDN:
    # the pages and the study report draw with the same version, and nothing is vendored twice.
    ("vendor/plotly", Path(importlib.util.find_spec("plotly").origin).parent / "package_data"),
]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": os.environ.get("MEDIA_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage")},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage" if not DEBUG
                    else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Uploaded clips: refused above these limits before anything is stored.
CTS_MAX_UPLOAD_MB = int(os.environ.get("CTS_MAX_UPLOAD_MB", "500"))
CTS_CLIP_MAX_DIMENSION = int(os.environ.get("CTS_CLIP_MAX_DIMENSION", "4096"))
CTS_CLIP_MAX_FRAMES = int(os.environ.get("CTS_CLIP_MAX_FRAMES", "20000"))
FILE_UPLOAD_TEMP_DIR = os.environ.get("FILE_UPLOAD_TEMP_DIR") or None
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Transport security: on by default outside DEBUG (`manage.py check --deploy` passes with no warning).
# scripts/run.sh serves plain http on 127.0.0.1 and turns them off explicitly; behind a TLS-terminating proxy
# keep them on and set CTS_PROXY_SSL_HEADER so Django knows the original request was https.
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
if env_bool("CTS_PROXY_SSL_HEADER", False):  # the proxy sets X-Forwarded-Proto and strips it from clients
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Health checks from the load balancer come over plain http inside the network.
SECURE_REDIRECT_EXEMPT = [r"^api/health/$"]
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Scripts only from this site's static files; plotly draws with inline styles, heatmaps are data: URIs.
CTS_CONTENT_SECURITY_POLICY = os.environ.get("CTS_CONTENT_SECURITY_POLICY", "; ".join((
    "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data: blob:",
    "font-src 'self' data:", "connect-src 'self'", "object-src 'none'", "base-uri 'self'", "form-action 'self'",
    "frame-ancestors 'none'")))

# --- Celery (the worker is mlworker; tasks live beside the apps that own their rows) ---
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", f"file://{VAR_DIR / 'celery-results'}")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
if CELERY_BROKER_URL.startswith("filesystem://") or CELERY_RESULT_BACKEND.startswith("file://") \
        or DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The serverless defaults keep their state in folders that kombu and Celery expect to exist.
    for _folder in (VAR_DIR / "broker" / "queue", VAR_DIR / "broker" / "processed", VAR_DIR / "broker" / "control",
                    VAR_DIR / "celery-results"):
        _folder.mkdir(parents=True, exist_ok=True)
# Background work is claimed under a lease (studyapp/common/jobs.py): the worker holding a job renews it every
# quarter lease; once it expires, any worker's heartbeat queues the job again (resumed or restarted). The
# broker redelivers a message not acknowledged within its visibility timeout, even while its worker still
# runs it; the claim drops such a delivery while the lease is live. Keep the lease far below the timeout so
# a dead worker's job comes back through its lease in a minute, not through the broker hours later.
CTS_JOB_LEASE_S = float(os.environ.get("CTS_JOB_LEASE_S", "60"))
CTS_BROKER_VISIBILITY_TIMEOUT_S = int(os.environ.get("CTS_BROKER_VISIBILITY_TIMEOUT_S", str(6 * 3600)))
if not 0 < CTS_JOB_LEASE_S * 10 <= CTS_BROKER_VISIBILITY_TIMEOUT_S:
    raise ImproperlyConfigured("CTS_JOB_LEASE_S must be above 0 and at most a tenth of "
                               "CTS_BROKER_VISIBILITY_TIMEOUT_S.")
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CTS_BROKER_VISIBILITY_TIMEOUT_S}
# A web request that queues work while the broker is down fails in about a second, not after a minute.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Queues of the single worker the test suite starts (tests/conftest.py). run.sh and the compose file run one
# worker on "default" and one on CTS_TRAINING_QUEUE, so extraction never waits behind training.
CTS_WORKER_QUEUES = env_list("CTS_WORKER_QUEUES", "default,training")
CTS_TRAINING_QUEUE = os.environ.get("CTS_TRAINING_QUEUE", "training")
# Every worker records itself alive this often (studyapp/ops/heartbeat.py); /api/health/ counts it alive for
# BEATS_BEFORE_DEAD intervals (studyapp/ops/liveness.py).
CTS_WORKER_HEARTBEAT_S = float(os.environ.get("CTS_WORKER_HEARTBEAT_S", "15"))
if not CTS_WORKER_HEARTBEAT_S > 0:
    raise ImproperlyConfigured("CTS_WORKER_HEARTBEAT_S must be a number of seconds above 0.")
# Training checkpoints (resume after a worker dies) and optional local ImageNet weights (<model_name>.pth).
CTS_CHECKPOINT_DIR = Path(os.environ.get("CTS_CHECKPOINT_DIR", VAR_DIR / "checkpoints"))
CTS_WEIGHTS_DIR = os.environ.get("CTS_WEIGHTS_DIR", "")
# Registered models a worker process keeps loaded for predictions (least recently used dropped first).
CTS_PREDICT_MODELS_CACHED = int(os.environ.get("CTS_PREDICT_MODELS_CACHED", "2"))
# A run that finishes DONE queues the explanation of its test frames by every method (on the training queue).
CTS_EXPLAIN_AFTER_TRAINING = os.environ.get("CTS_EXPLAIN_AFTER_TRAINING", "1") == "1"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: unauthenticated API calls then get 401 with a WWW-Authenticate header.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["studyapp.accounts.permissions.ModelPermissions"],
    "DEFAULT_FILTER_BACKENDS": [
        # DRF's own, less what a role may not see (studyapp/common/visibility.py).
        "studyapp.common.visibility.VisibleFieldsFilterBackend",
        "studyapp.common.visibility.VisibleSearchFilter",
        "studyapp.common.visibility.VisibleOrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": int(os.environ.get("API_PAGE_SIZE", "50")),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "studyapp.common.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CTS-Study API",
    "DESCRIPTION": "Cohort, electrophysiology staging, ultrasound clips and model results of a CTS study.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "ENUM_NAME_OVERRIDES": {
        "ExplanationMethodEnum": "studyapp.explanations.models.ExplanationJob.Method",
        "ExplanationStatusEnum": "studyapp.explanations.models.ExplanationJob.Status",
        "OutcomeEnum": "studyapp.explanations.models.Outcome",
        "RoiStatusEnum": "studyapp.annotations.models.RoiAnnotation.Status",
        # Background jobs and clip extraction share one set of states (queued, running, done, failed).
        "JobStatusEnum": "studyapp.ops.models.BackgroundJob.Status",
        "SplitStatusEnum": "studyapp.experiments.models.Split.Status",
        "SplitKindEnum": "studyapp.experiments.models.Split.Kind",
        "SplitDomainEnum": "studyapp.experiments.models.Split.Domain",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
