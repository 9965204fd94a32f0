"""Concurrent clients creating the same ROI on PostgreSQL: one wins, the others get 409 with its state, never 500."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections, transaction
from rest_framework.test import APIClient

from studyapp.annotations import services
from studyapp.annotations.models import RoiAnnotation
from tests.factories import make_clip

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif("connection.vendor != 'postgresql'", reason="real row locks need PostgreSQL")]


@pytest.fixture
def clip(tmp_path):
    clip, _ = make_clip(tmp_path, n_frames=6)
    return clip


def _client(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def _waiting_on_a_lock(count: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0] >= count


def test_a_create_that_loses_the_race_is_a_conflict_with_the_winners_roi(clip, users):
    """The loser's INSERT waits on the winner's uncommitted row, then meets the unique constraint."""
    annotator, frame = users["annotator"], clip.frames.first()
    winner_inside, release = threading.Event(), threading.Event()

    def winner():
        try:
            with transaction.atomic():
                services.roi_save(frame=frame, annotator=annotator, center_x=40, center_y=60)
                winner_inside.set()
                release.wait(30)
        finally:
            connections.close_all()

    def loser():
        try:
            return _client(annotator).post("/api/annotations/", {"frame": frame.pk, "center_x": 90, "center_y": 60},
                                           format="json")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(winner)
        assert winner_inside.wait(30)
        second = pool.submit(loser)
        deadline = time.monotonic() + 30
        while not _waiting_on_a_lock(1):  # the loser's INSERT is blocked behind the winner's row
            assert time.monotonic() < deadline, "the second request never reached the insert"
            time.sleep(0.02)
        release.set()
        first.result()
        response = second.result()
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "stale_version" and "Reload" in body["detail"]
    assert body["current"]["x"] == 10 and body["current"]["version"] == 1  # the winner's ROI (centre 40)
    assert RoiAnnotation.objects.get().x == 10


def test_many_clients_creating_the_same_rois_at_once(clip, users):
    """Six clients per frame at a barrier: one 201 per frame, the rest 409, no 5xx, one row per frame."""
    annotator, frames = users["annotator"], list(clip.frames.all()[:4])
    clients_per_frame = 6
    barrier = threading.Barrier(clients_per_frame * len(frames))

    def create(frame):
        api = _client(annotator)
        try:
            barrier.wait(30)
            return frame.pk, api.post("/api/annotations/", {"frame": frame.pk, "center_x": 80, "center_y": 60},
                                      format="json").status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(clients_per_frame * len(frames)) as pool:
        results = list(pool.map(create, [f for f in frames for _ in range(clients_per_frame)]))
    for frame in frames:
        codes = sorted(code for pk, code in results if pk == frame.pk)
        assert codes == [201] + [409] * (clients_per_frame - 1), codes
    assert RoiAnnotation.objects.count() == len(frames)
