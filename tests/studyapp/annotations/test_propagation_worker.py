"""ROI propagation on a real worker: queued by the API (202), followed by polling, equal to the direct computation."""

import pytest

from studyapp.annotations import services
from studyapp.annotations.models import RoiAnnotation
from studyapp.annotations.propagation import roi_propagate
from tests.conftest import wait_for
from tests.factories import UserFactory, make_clip


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_propagation_runs_on_the_worker_with_progress_and_the_direct_result(celery_worker_process, api_for, users,
                                                                            settings, tmp_path):
    settings.MEDIA_ROOT = celery_worker_process.media_root
    clip, phantom = make_clip(tmp_path, n_frames=24)
    frames = list(clip.frames.all())
    direct = UserFactory(username="direct", role="annotator")
    for annotator in (users["annotator"], direct):
        for f in (frames[2], frames[-3]):
            cx, cy = (float(v) for v in phantom.centers[f.index])
            services.roi_save(frame=f, annotator=annotator, center_x=cx, center_y=cy)

    api = api_for("annotator")
    response = api.post(f"/api/clips/{clip.pk}/propagate/")
    assert response.status_code == 202, response.content
    url = response.json()["url"]
    states = []

    def finished():
        job = api.get(url).json()
        states.append((job["status"], job["done"], job["total"]))
        return job if job["status"] in ("done", "failed") else None

    job = wait_for(finished, timeout=120, interval=0.05, worker=celery_worker_process)
    assert job["status"] == "done", job["error"]
    assert (job["done"], job["total"]) == (len(frames), len(frames))
    assert all(total == len(frames) for _, _, total in states)  # the page can show n of N from the first poll
    assert [s for s, _, _ in states] == sorted((s for s, _, _ in states), key=["queued", "running", "done"].index)
    assert job["result"] == roi_propagate(clip=clip, annotator=direct) == {"proposed": len(frames) - 2, "kept": []}

    def boxes(user):
        return {r.frame_id: (r.box, r.method, r.status, round(r.score or 0, 6))
                for r in RoiAnnotation.objects.filter(annotator=user)}

    assert boxes(users["annotator"]) == boxes(direct)
