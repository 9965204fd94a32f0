import numpy as np
import pytest

from studyapp.annotations import services
from studyapp.annotations.models import NerveOutline, RoiAnnotation
from studyapp.cohort.models import CsaMeasurement
from studyapp.ops.models import BackgroundJob
from tests.factories import UserFactory, make_clip

pytestmark = pytest.mark.django_db


@pytest.fixture
def clip(tmp_path):
    clip, phantom = make_clip(tmp_path, n_frames=30)
    clip.phantom = phantom
    return clip


def frame(clip, position):
    return clip.frames.all()[position]


def test_roi_is_a_fixed_physical_square_clamped_inside_the_frame(api_for, clip):
    api = api_for("annotator")
    response = api.post("/api/annotations/", {"frame": frame(clip, 0).pk, "center_x": 80, "center_y": 60},
                        format="json")
    assert response.status_code == 201, response.content
    roi = response.json()
    assert (roi["w"], roi["h"]) == (60, 60)  # 15 mm at 0.25 mm/px
    assert (roi["x"], roi["y"], roi["status"], roi["version"]) == (50, 30, "keyframe", 1)
    edge = api.post("/api/annotations/", {"frame": frame(clip, 1).pk, "center_x": 2, "center_y": 118},
                    format="json").json()
    assert (edge["x"], edge["y"]) == (0, 60)  # shifted inside, not shrunk


def test_stale_save_is_refused_never_overwrites(api_for, users, clip):
    api = api_for("annotator")
    f = frame(clip, 0)
    created = api.post("/api/annotations/", {"frame": f.pk, "center_x": 80, "center_y": 60}, format="json").json()
    moved = api.post("/api/annotations/", {"frame": f.pk, "center_x": 70, "center_y": 60,
                                           "version": created["version"]}, format="json")
    assert moved.status_code == 200 and moved.json()["version"] == 2
    stale = api.post("/api/annotations/", {"frame": f.pk, "center_x": 90, "center_y": 60,
                                           "version": created["version"]}, format="json")
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_version" and "Reload" in stale.json()["detail"]
    assert stale.json()["current"]["x"] == 40
    roi = RoiAnnotation.objects.get()
    assert (roi.x, roi.version) == (40, 2)
    # creating over an existing ROI without a version is stale too
    assert api.post("/api/annotations/", {"frame": f.pk, "center_x": 90, "center_y": 60},
                    format="json").status_code == 409


def test_a_blinded_rater_cannot_reach_anothers_roi(api_for, users, clip):
    roi = services.roi_save(frame=frame(clip, 0), annotator=users["annotator"], center_x=80, center_y=60)
    other = UserFactory(username="annot2", role="annotator")
    from rest_framework.test import APIClient
    api = APIClient()
    api.force_authenticate(other)
    # Not even its existence: the same answer as for an id that doesn't exist.
    assert api.get(f"/api/annotations/{roi.pk}/").status_code == 404
    assert api.get(f"/api/annotations/{roi.pk + 1000}/").status_code == 404
    assert api.delete(f"/api/annotations/{roi.pk}/?version=1").status_code == 404
    assert api.post(f"/api/annotations/{roi.pk}/status/", {"status": "confirmed", "version": 1},
                    format="json").status_code == 404


def test_unblinded_others_annotations_are_read_only(api_for, users, clip):
    from studyapp.protocol.models import StudySettings

    StudySettings.objects.update_or_create(id=1, defaults={"raters_blinded": False})
    roi = services.roi_save(frame=frame(clip, 0), annotator=users["annotator"], center_x=80, center_y=60)
    other = UserFactory(username="annot2", role="annotator")
    from rest_framework.test import APIClient
    api = APIClient()
    api.force_authenticate(other)
    assert api.get(f"/api/annotations/{roi.pk}/").status_code == 200
    assert api.delete(f"/api/annotations/{roi.pk}/?version=1").status_code == 403
    assert api.post(f"/api/annotations/{roi.pk}/status/", {"status": "confirmed", "version": 1},
                    format="json").status_code == 403


def test_roi_needs_spacing(tmp_path, api_for):
    clip, _ = make_clip(tmp_path, spacing=None)
    response = api_for("annotator").post("/api/annotations/", {"frame": clip.frames.first().pk, "center_x": 80,
                                                               "center_y": 60}, format="json")
    assert response.status_code == 400 and "Calibrate" in str(response.json())


def _propagate(api, clip, django_capture_on_commit_callbacks):
    """POST propagate (202 and a job), run the queued job as the worker does, and poll it as the page does."""
    from studyapp.annotations.tasks import propagate_rois

    with django_capture_on_commit_callbacks() as queued:
        response = api.post(f"/api/clips/{clip.pk}/propagate/")
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["status"] == "queued" and job["url"] == f"/api/jobs/{job['id']}/" and len(queued) == 1
    assert api.get(job["url"]).json()["status"] == "queued"
    propagate_rois.run(job["id"])  # the task's body, in this process
    return api.get(job["url"]).json()


def test_propagation_between_keyframes_tracks_the_nerve(api_for, users, clip, django_capture_on_commit_callbacks):
    api = api_for("annotator")
    frames = list(clip.frames.all())
    for f in (frames[0], frames[-1]):
        cx, cy = clip.phantom.centers[f.index]
        api.post("/api/annotations/", {"frame": f.pk, "center_x": cx, "center_y": cy}, format="json")
    job = _propagate(api, clip, django_capture_on_commit_callbacks)
    assert job["status"] == "done" and job["result"] == {"proposed": len(frames) - 2, "kept": []}
    assert (job["done"], job["total"]) == (len(frames), len(frames)) and "Proposed the ROI on 28" in job["message"]
    rois = {r.frame.index: r for r in RoiAnnotation.objects.select_related("frame")}
    errors_mm = []
    for index, roi in rois.items():
        cx, cy = roi.x + roi.w / 2, roi.y + roi.h / 2
        errors_mm.append(np.hypot(cx - clip.phantom.centers[index][0], cy - clip.phantom.centers[index][1]) * 0.25)
    # Bound: the ROI centre stays within 1.5 mm of the true nerve centre (the ROI is 15 mm wide).
    assert max(errors_mm) < 1.5, errors_mm
    assert {r.status for i, r in rois.items() if 0 < i < frames[-1].index} == {"proposed"}
    # Audited as the annotator's own proposals, though a worker wrote them.
    assert {r.history.first().history_user for r in rois.values()} == {users["annotator"]}
    confirm = api.post(f"/api/clips/{clip.pk}/confirm-all/")
    assert confirm.json() == {"confirmed": len(frames) - 2}
    assert set(RoiAnnotation.objects.values_list("status", flat=True)) == {"keyframe", "confirmed"}


def test_tracking_forward_from_one_keyframe(api_for, clip, django_capture_on_commit_callbacks):
    api = api_for("annotator")
    first = clip.frames.first()
    cx, cy = clip.phantom.centers[first.index]
    api.post("/api/annotations/", {"frame": first.pk, "center_x": cx, "center_y": cy}, format="json")
    assert _propagate(api, clip, django_capture_on_commit_callbacks)["status"] == "done"
    rois = RoiAnnotation.objects.select_related("frame")
    assert {r.method for r in rois} == {"manual", "tracked"}
    worst = max(np.hypot(r.x + r.w / 2 - clip.phantom.centers[r.frame.index][0],
                         r.y + r.h / 2 - clip.phantom.centers[r.frame.index][1]) * 0.25 for r in rois)
    assert worst < 2.0


def test_propagate_without_keyframe_is_a_clear_error(api_for, clip):
    response = api_for("annotator").post(f"/api/clips/{clip.pk}/propagate/")
    assert response.status_code == 400 and "at least one frame" in str(response.json())
    assert not BackgroundJob.objects.exists()


def test_asking_twice_while_queued_gives_the_same_job_and_a_second_delivery_is_dropped(
        api_for, clip, django_capture_on_commit_callbacks):
    from studyapp.annotations.propagation import propagation_run

    api = api_for("annotator")
    api.post("/api/annotations/", {"frame": frame(clip, 0).pk, "center_x": 80, "center_y": 60}, format="json")
    with django_capture_on_commit_callbacks() as queued:
        first = api.post(f"/api/clips/{clip.pk}/propagate/").json()
        second = api.post(f"/api/clips/{clip.pk}/propagate/").json()
    assert first["id"] == second["id"] and len(queued) == 1
    assert propagation_run(job_id=first["id"]).status == "done"
    versions = dict(RoiAnnotation.objects.values_list("pk", "version"))
    assert propagation_run(job_id=first["id"]) is None  # redelivered after it finished: nothing runs again
    assert dict(RoiAnnotation.objects.values_list("pk", "version")) == versions
    # Another annotator's job, and other users' polls of it.
    assert api_for("pi").get(first["url"]).status_code == 404
    assert api_for("admin").get(first["url"]).status_code == 200
    assert api_for("anonymous").get(first["url"]).status_code == 401


def test_propagation_leaves_alone_what_the_annotator_changes_while_it_runs(users, clip):
    """The annotator moves, places and deletes ROIs while the worker matches: those frames stay theirs."""
    from studyapp.annotations import propagation

    annotator = users["annotator"]
    frames = list(clip.frames.all())
    centre = lambda f: tuple(float(v) for v in clip.phantom.centers[f.index])  # noqa: E731
    services.roi_save(frame=frames[0], annotator=annotator, center_x=centre(frames[0])[0],
                      center_y=centre(frames[0])[1])
    first = propagation.roi_propagate(clip=clip, annotator=annotator)  # proposals on frames 1..29
    assert first == {"proposed": len(frames) - 1, "kept": []}
    moved, deleted, placed = frames[3], frames[5], frames[7]
    services.roi_delete(roi=RoiAnnotation.objects.get(frame=placed), expected_version=1)

    def meanwhile(done, total, message):
        if message.startswith("Matching"):  # frames read; the annotator goes on working
            roi = RoiAnnotation.objects.get(frame=moved)
            services.roi_save(frame=moved, annotator=annotator, center_x=100, center_y=70, expected_version=roi.version)
            roi = RoiAnnotation.objects.get(frame=deleted)
            services.roi_delete(roi=roi, expected_version=roi.version)
            services.roi_save(frame=placed, annotator=annotator, center_x=90, center_y=65)

    second = propagation.roi_propagate(clip=clip, annotator=annotator, progress=meanwhile)
    assert second["kept"] == sorted(f.index for f in (moved, deleted, placed))
    assert second["proposed"] == len(frames) - 1 - 3
    after = {r.frame_id: r for r in RoiAnnotation.objects.filter(annotator=annotator)}
    assert (after[moved.pk].status, after[moved.pk].method, after[moved.pk].version) == ("keyframe", "manual", 2)
    assert deleted.pk not in after
    assert (after[placed.pk].status, after[placed.pk].version) == ("keyframe", 1)
    assert after[frames[1].pk].version == 2 and after[frames[1].pk].status == "proposed"


def test_propagation_job_records_a_clear_failure(users, clip, django_capture_on_commit_callbacks):
    from studyapp.annotations.propagation import propagation_run

    annotator = users["annotator"]
    roi = services.roi_save(frame=frame(clip, 0), annotator=annotator, center_x=80, center_y=60)
    with django_capture_on_commit_callbacks():
        job = services.roi_propagate_queue(clip=clip, annotator=annotator)
    services.roi_delete(roi=roi, expected_version=1)  # gone before the worker takes the job
    job = propagation_run(job_id=job.pk)
    assert job.status == "failed" and "at least one frame" in job.error and job.finished_at


def test_outline_area_becomes_a_csa_measurement(api_for, clip):
    api = api_for("annotator")
    f = frame(clip, 0)
    # a 40 x 20 px rectangle at 0.25 mm/px is 10 x 5 mm = 50 mm²
    response = api.post("/api/outlines/", {"frame": f.pk, "points": [[40, 40], [80, 40], [80, 60], [40, 60]]},
                        format="json")
    assert response.status_code == 201, response.content
    assert response.json()["area_mm2"] == pytest.approx(50.0)
    measurement = CsaMeasurement.objects.get(method="outline")
    assert (measurement.csa_mm2, measurement.hand_id, measurement.measured_by.username) == (50.0, clip.hand_id, "annot")
    assert NerveOutline.objects.get().csa_measurement == measurement
    crossing = api.post("/api/outlines/", {"frame": f.pk, "points": [[40, 40], [80, 60], [80, 40], [40, 60]]},
                        format="json")
    assert crossing.status_code == 400 and "points" in crossing.json()
    assert api.delete(f"/api/outlines/{response.json()['id']}/").status_code == 204
    assert not CsaMeasurement.objects.filter(method="outline").exists()


def test_roi_changes_are_audited(users, clip):
    roi = services.roi_save(frame=frame(clip, 0), annotator=users["annotator"], center_x=80, center_y=60)
    services.roi_set_status(roi=roi, status="confirmed", expected_version=1)
    assert [h.status for h in roi.history.all()] == ["confirmed", "keyframe"]
