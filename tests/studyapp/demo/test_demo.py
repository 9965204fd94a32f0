import json

import pytest
from django.core.management import call_command

from mlworker.phantom import SITE_A_LOGIQ, SITE_B_CX50, PhantomConfig
from studyapp.annotations.models import NerveOutline, RoiAnnotation
from studyapp.annotations.selectors import csa_agreement
from studyapp.clips.models import Clip, Frame
from studyapp.cohort.models import Hand
from studyapp.demo.services import demo_prospective_eps_enter, demo_seed
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
    call_command("seed_demo", "--hands", "2", "--awaiting", "0", "--prospective", "1", "--background")
    job = BackgroundJob.objects.get(kind="seed_demo")
    job = wait_for(lambda: BackgroundJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).first(),
                   timeout=180, worker=celery_worker_process)
    assert job.status == "done", job.error
    assert (job.done, job.total) == (3, 3)
    assert Hand.objects.count() == 3 and Frame.objects.count() == 300
    assert Hand.objects.filter(eps_exams__isnull=True).count() == 1


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


@pytest.mark.django_db
def test_demo_spans_two_sites_and_enrolls_prospective_hands_without_eps(settings, tmp_path):
    from studyapp.protocol.models import StudySettings
    from studyapp.sites.models import Site

    settings.VAR_DIR = tmp_path  # where the demo keeps the prospective hands' truth
    StudySettings.objects.update_or_create(id=1, defaults={"frames_per_clip": 6})
    assert demo_seed(n_hands=10, config=SMALL, second_rater_every=50, prospective=4) == 14

    # Two sites, each known by its scanner's DICOM InstitutionName; every clip names its site and scanner.
    sites = {site.code: site for site in Site.objects.all()}
    assert set(sites) == {"site-a", "site-b"}
    assert sites["site-a"].institution_names == [SITE_A_LOGIQ.institution_name]
    assert sites["site-a"].history.count() == 1  # audited
    profiles = {"site-a": SITE_A_LOGIQ, "site-b": SITE_B_CX50}
    for clip in Clip.objects.select_related("site"):
        profile = profiles[clip.site.code]
        assert (clip.scanner_manufacturer, clip.scanner_model) == (profile.manufacturer, profile.model_name)
        if clip.format == "dicom":  # read from the file's header
            assert clip.site_source == "dicom" and clip.institution_name == profile.institution_name
            assert clip.probe == profile.transducer and clip.frequency_mhz == profile.frequency_mhz
        else:  # entered at upload
            assert clip.site_source == "entered" and clip.institution_name == ""
        # Each site's scanner images its own depth over the frame (site B deeper: larger pixels).
        assert clip.pixel_spacing_row_mm == pytest.approx(profile.pixel_spacing_mm(120, 0.25), rel=1e-4)
        assert clip.history.filter(site=clip.site).exists()
    # Participants of each group go 60/40 to the sites, so both groups are at both sites.
    retrospective = Hand.objects.filter(eps_exams__isnull=False).distinct()
    for group in ("control", "cts"):
        per_site = {code: retrospective.filter(group=group, clips__site__code=code).count() for code in sites}
        assert per_site["site-a"] >= per_site["site-b"] >= 1, (group, per_site)
    by_site = {code: Clip.objects.filter(site__code=code).count() for code in sites}
    assert by_site["site-a"] > by_site["site-b"] > 0

    # Prospective hands: newly enrolled patients, clips with confirmed ROIs, a CSA, and no EPS: no group yet.
    prospective = Hand.objects.filter(eps_exams__isnull=True).select_related("participant")
    assert prospective.count() == 4
    latest_retrospective = max(h.participant.enrolled_on for h in retrospective)
    for hand in prospective:
        assert hand.group == "needs_review" and hand.stage is None
        assert hand.participant.recruitment == "patient" and hand.participant.enrolled_on > latest_retrospective
        assert hand.csa_measurements.exists()
        clip = hand.clips.get()
        assert clip.extraction_status == "done" and clip.site_id is not None
        assert RoiAnnotation.objects.filter(frame__clip=clip, status="confirmed").count() == 6
    # Their truth is in the demo's own file, outside the database: both groups, hidden from the study.
    truth = json.loads((tmp_path / "demo" / "prospective-truth.json").read_text())["prospective"]
    assert sorted(truth) == sorted(f"{h.participant.study_code}:{h.side}" for h in prospective)
    assert {item["group"] for item in truth.values()} == {"control", "cts"}

    # The demo script enters their EPS later, as a coordinator would; the staging then agrees with the truth.
    [first] = demo_prospective_eps_enter(limit=1)
    assert first.eps_exams.count() == 1
    assert first.group == truth[f"{first.participant.study_code}:{first.side}"]["group"]
    call_command("demo_enter_eps")
    for hand in Hand.objects.filter(pk__in=[h.pk for h in prospective]):
        assert hand.group == truth[f"{hand.participant.study_code}:{hand.side}"]["group"]
        assert hand.eps_exams.count() == 1
    assert demo_prospective_eps_enter() == []  # each EPS is entered once
