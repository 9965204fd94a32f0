import pytest
from django.core.management import call_command

from mlworker.phantom import PhantomConfig
from studyapp.annotations.models import NerveOutline, RoiAnnotation
from studyapp.annotations.selectors import csa_agreement
from studyapp.clips.models import Clip, Frame
from studyapp.cohort.models import Hand
from studyapp.demo.services import demo_seed
from studyapp.ops.models import BackgroundJob
from tests.conftest import wait_for

SMALL = PhantomConfig(width=160, height=120, n_frames=6, pixel_spacing_mm=0.25)


@pytest.mark.django_db
def test_demo_study_is_consistent_and_seeded_once(settings):
    from studyapp.protocol.models import StudySettings

    StudySettings.objects.update_or_create(id=1, defaults={"frames_per_clip": 6})
    assert demo_seed(n_hands=8, config=SMALL, second_rater_every=2, awaiting_annotation=2, explain_sample=True) == 10
    explain = StudySettings.current()  # a sample of frames per hand, so explanations finish on a CPU
    assert (explain.explain_frames_occlusion, explain.explain_frames_lime, explain.explain_frames_gradcam) == (2, 1, 5)
    awaiting = Hand.objects.filter(clips__frames__rois__isnull=True).distinct()
    assert awaiting.count() == 2 and all(h.clips.get().extraction_status == "done" for h in awaiting)
    # The first waits in the demo annotator's worklist; the other is open to any annotator.
    assert sorted(Clip.objects.filter(hand__in=awaiting).values_list("assigned_to__username", flat=True),
                  key=str) == [None, "annotator"]
    hands = Hand.objects.exclude(pk__in=awaiting)
    assert hands.filter(group="control").count() == 4 and hands.filter(group="cts").count() == 4
    assert all(h.stage == 1 for h in hands.filter(group="control"))
    assert all(2 <= h.stage <= 5 for h in hands.filter(group="cts"))
    assert set(Clip.objects.values_list("format", flat=True)) == {"video", "dicom"}
    assert all(c.extraction_status == "done" and c.spacing_mm for c in Clip.objects.all())
    assert Frame.objects.count() == 10 * 6
    assert RoiAnnotation.objects.filter(annotator__username="annotator", status="confirmed").count() == 48
    assert all(h.csa_measurements.filter(method="manual").exists() for h in hands)
    assert NerveOutline.objects.filter(annotator__username="annotator").count() == 8
    assert csa_agreement()["icc"] is not None
    with pytest.raises(ValueError, match="already seeded"):
        demo_seed(n_hands=2, config=SMALL)
    call_command("seed_demo", "--background")  # a second `run.sh --demo` queues nothing
    assert not BackgroundJob.objects.exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_seed_demo_in_the_background_on_a_real_worker(celery_worker_process, settings):
    settings.MEDIA_ROOT = celery_worker_process.media_root
    call_command("seed_demo", "--hands", "2", "--awaiting", "0", "--background")
    job = BackgroundJob.objects.get(kind="seed_demo")
    job = wait_for(lambda: BackgroundJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).first(),
                   timeout=180, worker=celery_worker_process)
    assert job.status == "done", job.error
    assert (job.done, job.total) == (2, 2)
    assert Hand.objects.count() == 2 and Frame.objects.count() == 200


@pytest.mark.django_db
def test_pi_is_offered_the_demo_on_an_empty_study(client_for, django_capture_on_commit_callbacks, monkeypatch):
    from studyapp.demo.tasks import seed_demo_study

    queued = []
    monkeypatch.setattr(seed_demo_study, "delay", queued.append)
    client = client_for("pi")
    assert "Seed the demo study" in client.get("/cohort/").content.decode()
    assert "Seed the demo study" not in client_for("coordinator").get("/cohort/").content.decode()
    client = client_for("pi")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/demo/seed/")
    job = BackgroundJob.objects.get()
    assert queued == [job.pk]
    assert "Seeding the demo study" in client.get("/cohort/").content.decode()
    assert client.post("/demo/seed/").status_code == 302 and BackgroundJob.objects.count() == 1
    assert client_for("annotator").post("/demo/seed/").status_code == 403
