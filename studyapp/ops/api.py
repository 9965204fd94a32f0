from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import WorkerHeartbeat
from .tasks import heartbeat

WORKER_FRESH = timedelta(minutes=2)


class HealthView(APIView):
    """Liveness of the database and when a worker last answered a ping."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: dict})
    def get(self, request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        last = WorkerHeartbeat.objects.order_by("-seen_at").first()
        return Response({
            "database": "ok",
            "worker": {
                "last_seen": last.seen_at if last else None,
                "hostname": last.hostname if last else None,
                "alive": bool(last and timezone.now() - last.seen_at < WORKER_FRESH),
            },
        })


class WorkerPingView(APIView):
    """Queue a heartbeat task; a running worker records it within seconds."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={202: dict})
    def post(self, request):
        transaction.on_commit(heartbeat.delay)
        return Response({"queued": True}, status=202)
