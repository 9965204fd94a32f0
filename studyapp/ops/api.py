from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import RetrieveAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from studyapp.accounts.permissions import has_perms

from .models import BackgroundJob
from .selectors import workers_liveness
from .tasks import heartbeat

# Worker host names and queue layout are for those who look after the workers (the PI, admins).
WORKER_DETAIL_PERM = "ops.view_workerheartbeat"


class HealthView(APIView):
    """Overall `ok`/`degraded` for anyone (a load balancer); per-queue liveness for users; each worker for the PI."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: dict, 503: dict})
    def get(self, request):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            liveness = workers_liveness()
        except DatabaseError:
            return Response({"status": "degraded", "database": "down"}, status=503)
        healthy = all(queue["alive"] for queue in liveness["queues"].values())
        report = {"status": "ok" if healthy else "degraded"}
        user = request.user
        if not (user and user.is_authenticated):
            return Response(report)
        report["database"] = "ok"
        if not user.has_perm(WORKER_DETAIL_PERM):
            report["queues"] = {name: {"queue": queue["queue"], "alive": queue["alive"]}
                                for name, queue in liveness["queues"].items()}
            return Response(report)
        latest = liveness["workers"][0] if liveness["workers"] else None
        return Response({
            **report,
            # The most recently seen worker, as before per-worker reporting (kept for existing clients).
            "worker": {
                "last_seen": latest["last_seen"] if latest else None,
                "hostname": latest["hostname"] if latest else None,
                "alive": bool(latest and latest["alive"]),
            },
            "heartbeat_interval_s": settings.CTS_WORKER_HEARTBEAT_S,
            **liveness,
        })


class WorkerPingView(APIView):
    """Queue a heartbeat task; a worker on the default queue records it within seconds (the PI's check)."""

    permission_classes = [has_perms(WORKER_DETAIL_PERM)]

    @extend_schema(request=None, responses={202: dict})
    def post(self, request):
        transaction.on_commit(heartbeat.delay)
        return Response({"queued": True}, status=202)


class BackgroundJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = BackgroundJob
        fields = ["id", "kind", "status", "done", "total", "message", "error", "result", "created_at", "started_at",
                  "finished_at"]


def job_accepted(job: BackgroundJob) -> Response:
    """202 with the job and where to poll it: the answer of every endpoint that queues a background job."""
    return Response({**BackgroundJobSerializer(job).data, "url": reverse("backgroundjob-detail", args=[job.pk])},
                    status=202)


class BackgroundJobView(RetrieveAPIView):
    """A background job you queued (propagation, prediction): poll it until `status` is done or failed."""

    permission_classes = [IsAuthenticated]
    serializer_class = BackgroundJobSerializer

    def get_queryset(self):
        # Only the one who queued it: a prediction's result is the PI's, a propagation's the annotator's.
        jobs = BackgroundJob.objects.all()
        return jobs if self.request.user.is_superuser else jobs.filter(created_by=self.request.user)
