import datetime as dt

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from studyapp.cohort import services
from studyapp.cohort.models import Participant


TEST_PASSWORD = "pw-for-tests-1"  # every UserFactory user's: browser tests log in with it


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password(TEST_PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            self.groups.add(Group.objects.get(name=extracted))


class ParticipantFactory(factory.django.DjangoModelFactory):
    """Participants through the service, as the app creates them."""

    class Meta:
        model = Participant

    study_code = factory.Sequence(lambda n: f"CTS-{n:04d}")
    sex = "female"
    age = 52
    recruitment = "patient"
    enrolled_on = dt.date(2026, 1, 15)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return services.participant_create(**kwargs)


def make_hand(*, side="right", recruitment="patient", eps=None, exclusion_reason="", **participant):
    """A participant with one hand, and optionally an EPS exam (dict of EPS fields)."""
    person = ParticipantFactory(recruitment=recruitment, **participant)
    hand = services.hand_create(participant=person, side=side, exclusion_reason=exclusion_reason,
                                exclusion_detail="detail" if exclusion_reason == "other" else "")
    if eps is not None:
        services.eps_exam_create(hand=hand, exam_date=eps.pop("exam_date", dt.date(2026, 2, 1)), **eps)
        hand.refresh_from_db()
    return hand


# The study settings form's rater fields at their defaults, for tests that post the whole form.
RATER_FORM = {"primary_rater_rule": "most_confirmed", "primary_rater": "", "raters_blinded": "on",
              "adjudication_iou_threshold": "0.5", "adjudication_csa_difference_mm2": "2.0"}

SMALL_PHANTOM = dict(width=160, height=120, n_frames=12, pixel_spacing_mm=0.25)


def phantom_file(directory, name="clip.mp4", *, group="control", seed=1, **config):
    """Write a small phantom clip (.mp4, .avi or .dcm) and return (path, PhantomClip)."""
    from mlworker.phantom import PhantomConfig, generate_clip, write_dicom, write_video

    clip = generate_clip(group, seed, PhantomConfig(**{**SMALL_PHANTOM, **config}))
    path = directory / name
    (write_dicom if path.suffix == ".dcm" else write_video)(clip, path)
    return path, clip


def upload_file(path, name=None):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name or path.name, path.read_bytes())


def make_clip(directory, *, hand=None, name="clip.mp4", extract=True, spacing=0.25, **kwargs):
    """A hand's uploaded phantom clip, with frames extracted synchronously; returns (Clip, PhantomClip)."""
    from studyapp.clips import services as clip_services

    hand = hand or make_hand()
    path, phantom = phantom_file(directory, name, **kwargs)
    clip = clip_services.clip_upload(hand=hand, upload=upload_file(path), queue_extraction=False,
                                     pixel_spacing_mm=None if name.endswith(".dcm") else spacing)
    if extract:
        clip_services.clip_extract_frames(clip_id=clip.pk)
        clip.refresh_from_db()
    return clip, phantom


def bulk_cohort(n_hands: int, *, annotators=(), frames_per_clip: int = 0, seed: int = 0, prefix: str = "BULK"):
    """A cohort of `n_hands` hands written with bulk_create (tests of scale and the dashboard benchmark).

    Half controls (stage 1, younger), half CTS (stages 2–5); each with an EPS exam and a manual inlet CSA;
    with `frames_per_clip`, one extracted clip per hand whose frames every annotator confirmed, and one
    outline per annotator and hand. Group and stage are set as staging would derive them for these values.
    """
    import random

    from studyapp.annotations.models import NerveOutline, RoiAnnotation
    from studyapp.clips.models import Clip, Frame
    from studyapp.cohort.models import CsaMeasurement, EpsExam, Hand
    from studyapp.protocol.models import StudySettings

    rng = random.Random(seed)
    settings = StudySettings.current()
    people = Participant.objects.bulk_create([
        Participant(study_code=f"{prefix}-{i:05d}", sex=rng.choice(["female", "male"]),
                    age=rng.randint(22, 45) if i % 2 == 0 else rng.randint(45, 80),
                    recruitment="healthy_volunteer" if i % 2 == 0 else "patient",
                    enrolled_on=dt.date(2026, 1, 1) + dt.timedelta(days=i % 200))
        for i in range(n_hands)])
    hands = Hand.objects.bulk_create([
        Hand(participant=p, side=rng.choice(["left", "right"]), group="control" if i % 2 == 0 else "cts",
             stage=1 if i % 2 == 0 else 2 + (i // 2) % 4, staging_reason="bulk",
             staged_dml_threshold_ms=settings.dml_threshold_ms, staged_sncv_threshold_m_s=settings.sncv_threshold_m_s)
        for i, p in enumerate(people)])
    EpsExam.objects.bulk_create([
        EpsExam(hand=h, exam_date=dt.date(2026, 2, 1), dml_ms=round(rng.uniform(3.0, 4.2), 2) if h.stage == 1
                else round(rng.uniform(4.6, 7.5), 2), sncv_m_s=round(rng.uniform(42, 60), 1) if h.stage in (1, 2)
                else round(rng.uniform(20, 39), 1), sensory_response_absent=h.stage in (4, 5),
                motor_response_absent=h.stage == 5) for h in hands])
    CsaMeasurement.objects.bulk_create([
        CsaMeasurement(hand=h, csa_mm2=round(rng.gauss(8.5, 1.2) if h.stage == 1 else rng.gauss(12.5, 2.5), 1),
                       measured_on=dt.date(2026, 2, 1)) for h in hands])
    if not frames_per_clip:
        return hands
    clips = Clip.objects.bulk_create([
        Clip(hand=h, file=f"clips/{prefix}-{h.pk}.mp4", original_filename=f"{h.pk}.mp4",
             sha256=f"{prefix}{h.pk:060d}"[-64:],
             size_bytes=1000, format="video", container="mp4", frame_count=frames_per_clip, width=160, height=120,
             extraction_status="done", extraction_done=frames_per_clip, extraction_total=frames_per_clip,
             extraction_frames_per_clip=frames_per_clip)
        for h in hands])
    frames = Frame.objects.bulk_create([
        Frame(clip=c, index=i, image=f"frames/{c.pk}/{i}.png", width=160, height=120, channels=1)
        for c in clips for i in range(frames_per_clip)])
    RoiAnnotation.objects.bulk_create([
        RoiAnnotation(frame=f, annotator=a, x=40 + k * 3 + rng.randint(0, 2), y=30, w=60, h=60, status="confirmed")
        for f in frames for k, a in enumerate(annotators)])
    first_frames = [f for f in frames if f.index == 0]
    measurements = CsaMeasurement.objects.bulk_create([
        CsaMeasurement(hand_id=f.clip.hand_id, csa_mm2=round(10 + rng.gauss(0, 1.5), 1), method="outline",
                       measured_on=dt.date(2026, 2, 2)) for f in first_frames for _a in annotators])
    NerveOutline.objects.bulk_create([
        NerveOutline(frame=f, annotator=a, points=[[10, 10], [50, 10], [50, 40]], area_mm2=m.csa_mm2, csa_measurement=m)
        for (f, a), m in zip(((f, a) for f in first_frames for a in annotators), measurements)])
    return hands


def locked_split_with_experiment(*, name="main", test_per_group=3, seed=0,
                                 models=("squeezenet1_1", "efficientnet_b0"), n_boot=200):
    """Lock a split of the eligible hands and record a finished experiment on it without training: each model's
    frame probabilities are drawn (seeded; the later models separate the groups better), then evaluated and
    compared by the same statistics and service a finished run goes through (mlworker.stats, the CSA baseline)."""
    from dataclasses import asdict

    import numpy as np
    from django.utils import timezone

    from mlworker.ml.train import TrainConfig
    from mlworker.stats import evaluate_predictions
    from studyapp.clips.models import Frame
    from studyapp.experiments import services as experiment_services
    from studyapp.experiments.models import Experiment, TrainingRun

    split = experiment_services.split_lock(split=experiment_services.split_create(
        name=name, seed=seed, test_per_group=test_per_group))
    labels = dict(split.members.filter(subset="test").values_list("hand_id", "label"))
    frames = list(Frame.objects.filter(clip__hand_id__in=labels).order_by("pk").values_list("pk", "clip__hand_id"))
    y = np.array([labels[hand] for _, hand in frames])
    experiment = Experiment.objects.create(name=f"{name} experiment", split=split, manifest_hash=split.manifest_hash,
                                           config={"epochs": 3})
    rng = np.random.default_rng(seed)
    for i, model in enumerate(models):
        hand_effect = {hand: rng.normal(0, 0.8) for hand in labels}
        logits = (2 * y - 1) * (1.0 + i) + np.array([hand_effect[h] for _, h in frames]) + rng.normal(0, 0.7, len(y))
        probabilities = (1 / (1 + np.exp(-logits))).round(6).tolist()
        hand_ids = [h for _, h in frames]
        history = [{"epoch": e, "train_loss": 0.7 / (e + i), "val_loss": 0.75 / (e + i) + 0.05,
                    "val_accuracy": 0.6 + 0.1 * e, "val_auc": 0.6 + 0.1 * e + 0.03 * i} for e in (1, 2, 3)]
        TrainingRun.objects.create(
            experiment=experiment, model_name=model, config=asdict(TrainConfig(model_name=model, epochs=3)),
            status="done", epochs_done=3, history=history, best_epoch=3, finished_at=timezone.now(), device="cpu",
            code_version="0" * 40, weights_sha256=f"{i:064d}", manifest_hash=split.manifest_hash,
            library_versions={"torch": "test", "numpy": np.__version__},
            evaluation=evaluate_predictions(y.tolist(), probabilities, hand_ids, n_boot=n_boot, seed=0),
            predictions={"frame_ids": [f for f, _ in frames], "hand_ids": hand_ids, "labels": y.tolist(),
                         "probabilities": probabilities})
    comparison = experiment_services.experiment_compare_if_complete(experiment_id=experiment.pk)
    return split, experiment, comparison["csa_baseline"]["youden_on_training"]
