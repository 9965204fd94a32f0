from django.conf import settings
from django.db import connection, transaction
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from .selectors import workers_liveness
from .tasks import heartbeat


class HealthView(APIView):
    """Liveness of the database, of each worker (from its own heartbeat), and of the default and training queues."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: dict})
    def get(self, request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        liveness = workers_liveness()
        latest = liveness["workers"][0] if liveness["workers"] else None
        return Response({
            "database": "ok",
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
    """Queue a heartbeat task; a worker on the default queue records it within seconds."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={202: dict})
    def post(self, request):
        transaction.on_commit(heartbeat.delay)
        return Response({"queued": True}, status=202)
