"""The study's roles as Django groups, and the model permissions each one holds."""

from django.contrib.auth.models import Group, Permission

COORDINATOR = "coordinator"
ANNOTATOR = "annotator"
PI = "pi"
ROLES = (COORDINATOR, ANNOTATOR, PI)

_CRUD = ("add", "change", "delete", "view")


def _crud(app: str, *models: str) -> set[str]:
    return {f"{app}.{action}_{model}" for model in models for action in _CRUD}


def _view(app: str, *models: str) -> set[str]:
    return {f"{app}.view_{model}" for model in models}


COHORT_MODELS = ("participant", "hand", "epsexam", "csameasurement")

ANNOTATION_MODELS = ("roiannotation", "nerveoutline")
# Explanations are results: the PI and the coordinator read them, annotators never (they stay blinded).
EXPLANATION_VIEW = {"explanations.view_explanationjob", "explanations.view_frameexplanation"}
CLIP_UPLOAD = {"clips.add_clip", "clips.change_clip", "clips.view_clip", "clips.view_frame"}
CLIP_ASSIGN = {"clips.assign_clip"}  # who hands a clip to an annotator; annotators only take open ones
# Sites are the PI's study data; whoever uploads reads them (to choose one), and the coordinator and PI correct
# a clip's site and scanner afterwards (audited, with a reason).
SITE_VIEW = {"sites.view_site"}
SITE_CORRECT = {"clips.correct_site"}
# Raters work blind: the diagnosis and other raters' work are for those who don't rate (and the PI adjudicates).
DIAGNOSIS = {"cohort.view_diagnosis"}
ALL_RATERS = {"annotations.view_all_raters", "annotations.view_roiadjudication", "annotations.view_csaadjudication"}
ADJUDICATE = {"annotations.adjudicate"}
# Worker host names and the manual ping: for whoever looks after background work (training is the PI's).
WORKER_STATUS = {"ops.view_workerheartbeat"}

# Prospective predictions stay sealed for everyone until the hand's EPS is entered (prospective.selectors); then
# the coordinator who entered it and the PI may read them. Freezing the model and the dashboard are the PI's.
PROSPECTIVE_RESULTS = {"prospective.view_prospectiveprediction"}
PROSPECTIVE_PI = {"prospective.view_prospectivemodel", "prospective.freeze_prospectivemodel",
                  "prospective.view_prospectiveoutcome"}

# Fields hidden from a role without the permission that reveals them, everywhere the API could show them: the
# output, and the filters, ordering and search (a filter on a hidden field reveals it as surely as showing it).
# Names are model fields and the filters derived from them (`included` is the eligibility of `exclusion_reason`).
DEMOGRAPHIC_FIELDS = ("sex", "age")
DIAGNOSIS_PARTICIPANT_FIELDS = ("recruitment",)  # recruitment all but names the group
DIAGNOSIS_HAND_FIELDS = ("stage", "group", "staging_reason", "needs_restaging", "staged_at", "exclusion_reason",
                         "exclusion_detail")
HIDDEN_FIELDS_BY_PERM: dict[str, tuple[str, ...]] = {
    "cohort.view_demographics": DEMOGRAPHIC_FIELDS,
    "cohort.view_diagnosis": (*DIAGNOSIS_PARTICIPANT_FIELDS, *DIAGNOSIS_HAND_FIELDS, "included"),
}

# Later issues extend these sets (splits, training) in one place.
ROLE_PERMISSIONS: dict[str, set[str]] = {
    COORDINATOR: (_crud("cohort", *COHORT_MODELS) | CLIP_UPLOAD | CLIP_ASSIGN
                  | _view("annotations", *ANNOTATION_MODELS)
                  | {"cohort.view_demographics", "protocol.view_studysettings"} | DIAGNOSIS | ALL_RATERS
                  | EXPLANATION_VIEW | SITE_VIEW | SITE_CORRECT | PROSPECTIVE_RESULTS),
    # Annotators see what annotation needs: hands and their own measurements, never demographics or diagnosis.
    ANNOTATOR: (_view("cohort", "participant", "hand", "csameasurement") | CLIP_UPLOAD
                | _crud("annotations", *ANNOTATION_MODELS) | {"protocol.view_studysettings"} | SITE_VIEW),
    # Only the PI locks splits and launches training; results stay with the PI (others remain blinded).
    PI: (_view("cohort", *COHORT_MODELS) | _view("clips", "clip", "frame") | CLIP_ASSIGN
         | _crud("sites", "site") | SITE_CORRECT
         | _view("annotations", *ANNOTATION_MODELS)
         | _view("experiments", "split", "experiment", "trainingrun")
         | {"cohort.view_demographics", "protocol.view_studysettings", "protocol.change_studysettings",
            "experiments.add_split", "experiments.delete_split", "experiments.lock_split",
            "experiments.add_experiment", "experiments.launch_experiment"}
         | DIAGNOSIS | ALL_RATERS | ADJUDICATE | WORKER_STATUS
         | EXPLANATION_VIEW | {"explanations.add_explanationjob", "explanations.change_explanationjob"}
         | PROSPECTIVE_RESULTS | PROSPECTIVE_PI),
}


def sync_roles() -> None:
    """Create the role groups and set exactly their permissions (idempotent; runs after migrate)."""
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for perm in sorted(perms):
            app_label, codename = perm.split(".")
            try:
                wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
            except Permission.DoesNotExist:
                # The app providing it is not migrated yet; a later post_migrate completes the set.
                continue
        group.permissions.set(wanted)


def hidden_fields(user) -> frozenset[str]:
    """The fields (and filters derived from them) this user may not see, by HIDDEN_FIELDS_BY_PERM."""
    return frozenset(name for perm, names in HIDDEN_FIELDS_BY_PERM.items() if not user.has_perm(perm)
                     for name in names)


def user_roles(user) -> list[str]:
    roles = [name for name in user.groups.values_list("name", flat=True) if name in ROLES]
    if user.is_superuser:
        roles.append("admin")
    return roles
