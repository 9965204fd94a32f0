"""Seed a demo study from the synthetic phantom: cohort, EPS, CSA, clips, frames, confirmed ROIs, outlines.

Everything goes through the same services as real data (validation, staging, audit), so the demo shows
exactly what a coordinator and annotators would have produced.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files import File
from django.db import transaction

from mlworker.phantom import PhantomConfig, generate_clip, sample_eps, sample_manual_csa, sample_participant
from mlworker.phantom import write_dicom, write_video
from studyapp.accounts.roles import ANNOTATOR
from studyapp.annotations import services as annotation_services
from studyapp.annotations.models import RoiAnnotation
from studyapp.clips import services as clip_services
from studyapp.cohort import services as cohort_services
from studyapp.cohort.models import Participant

DEMO_PREFIX = "DEMO-"
SECOND_RATER = "annotator-b"
BILATERAL_SHARE = 0.3  # about a third of participants contribute both hands, as in clinical series
# Newly enrolled hands whose clips wait for ROIs, so the annotator's worklist has work on the demo; the first
# is assigned to the demo's annotator. They stay out of splits until annotated.
DEMO_AWAITING = 4
DEMO_ENROLLED = dt.date(2026, 1, 5)
# Test frames per hand explained after training (occlusion, LIME, Grad-CAM): a sample, so that on a CPU the
# demo's explanations finish in minutes and don't hold the training worker for hours (see bench_explain).
DEMO_EXPLAIN_FRAMES = {"explain_frames_occlusion": 2, "explain_frames_lime": 1, "explain_frames_gradcam": 5}


def _user(username: str):
    users = get_user_model().objects
    user, created = users.get_or_create(username=username)
    if created:
        user.set_unusable_password()  # a demo rater only; nobody logs in as it
        user.save()
        user.groups.add(Group.objects.get_or_create(name=ANNOTATOR)[0])
    return user


def _plan(n_hands: int, rng: np.random.Generator) -> list[tuple[str, list[str]]]:
    """Participants as (group, sides): half the hands control, half CTS, some participants bilateral."""
    plan = []
    for group, hands in (("control", n_hands // 2), ("cts", n_hands - n_hands // 2)):
        while hands > 0:
            both = hands >= 2 and rng.random() < BILATERAL_SHARE
            sides = ["right", "left"] if both else [str(rng.choice(["right", "left"]))]
            plan.append((group, sides))
            hands -= len(sides)
    # Interleave the groups, so a study that is still seeding already shows both.
    return [plan[i] for i in rng.permutation(len(plan))]


def demo_seeded() -> bool:
    return Participant.objects.filter(study_code__startswith=DEMO_PREFIX).exists()


def demo_seed(*, n_hands: int = 100, seed: int = 2022, config: PhantomConfig = PhantomConfig(),
              second_rater_every: int = 4, awaiting_annotation: int = 0, explain_sample: bool = False,
              progress: Callable[[int, int], None] | None = None, resume_from: dict | None = None,
              checkpoint: Callable[[dict], None] | None = None) -> int:
    """Create the demo study; returns the number of hands it holds. Refuses to run twice, unless resuming.

    `n_hands` are fully annotated; `awaiting_annotation` more have extracted clips and no ROI yet;
    `explain_sample` sets the explained frames per hand to DEMO_EXPLAIN_FRAMES (the demo on a CPU).
    Each participant is created whole in one transaction, which also calls `checkpoint` with where the
    seeding stands (next participant, hands done, random state); `resume_from` such a checkpoint goes on
    from there, so a seeding cut short (a dead worker) ends as if it had never stopped.
    """
    if demo_seeded() and resume_from is None:
        raise ValueError("The demo study is already seeded (participants DEMO-…); nothing was added.")
    rng = np.random.default_rng(seed)
    if explain_sample:
        cohort_services.study_settings_update(**DEMO_EXPLAIN_FRAMES)  # audited like any settings change
    rater, second = _user("annotator"), _user(SECOND_RATER)
    total = n_hands + awaiting_annotation
    plan = _plan(n_hands, rng)
    extras = [(("control", "cts")[extra % 2], None) for extra in range(awaiting_annotation)]
    start, done = 1, 0
    if resume_from:
        start, done = resume_from["next"], resume_from["done"]
        rng.bit_generator.state = resume_from["rng"]
    with tempfile.TemporaryDirectory(prefix="cts-demo-") as tmp:
        for number, (group, sides) in enumerate(plan + extras, start=1):
            if number < start:
                continue
            with transaction.atomic():
                done += _seed_participant(number, group, sides, rng, config, Path(tmp), rater, second,
                                          second_rater_every, done, first_awaiting=number == len(plan) + 1)
                if checkpoint:
                    checkpoint({"next": number + 1, "done": done, "rng": rng.bit_generator.state})
            if progress:
                progress(done, total)
    return done


def _code(number: int) -> str:
    return f"{DEMO_PREFIX}{number:03d}"


def _seed_participant(number, group, sides, rng, config, tmp, rater, second, second_rater_every, done, *,
                      first_awaiting: bool) -> int:
    """One demo participant whole: enrolled, each hand examined and (unless awaiting ROIs: no sides) annotated."""
    if sides is None:
        [hand] = _enroll(number, group, [str(rng.choice(["right", "left"]))], rng)
        clip = _seed_clip(hand, group, int(rng.integers(2**31)), config, tmp, rng)[0]
        if first_awaiting:
            clip_services.clip_take(clip=clip, annotator=rater)
        return 1
    for offset, hand in enumerate(_enroll(number, group, sides, rng)):
        _seed_hand(hand, group, int(rng.integers(2**31)), config, tmp, rng, rater,
                   second if (done + offset) % second_rater_every == 0 else None)
    return len(sides)


def _enroll(number: int, group: str, sides: list[str], rng) -> list:
    """A demo participant DEMO-<number> and their hands."""
    person = sample_participant(group, rng)
    with transaction.atomic():
        participant = cohort_services.participant_create(
            study_code=_code(number), enrolled_on=DEMO_ENROLLED + dt.timedelta(days=number), **person)
        return [cohort_services.hand_create(participant=participant, side=side) for side in sides]


def _seed_hand(hand, group, clip_seed, config, tmp: Path, rng, rater, second_rater) -> None:
    clip, phantom = _seed_clip(hand, group, clip_seed, config, tmp, rng)
    with transaction.atomic():
        _annotate_from_truth(clip, phantom, rng, rater, second_rater)


def _seed_clip(hand, group, clip_seed, config, tmp: Path, rng):
    """EPS, a manual CSA and an uploaded, extracted phantom clip for a hand: (clip, phantom)."""
    phantom = generate_clip(group, clip_seed, config)
    exam_date = hand.participant.enrolled_on + dt.timedelta(days=7)
    cohort_services.eps_exam_create(hand=hand, exam_date=exam_date, **sample_eps(group, rng))
    cohort_services.csa_measurement_create(
        hand=hand, csa_mm2=sample_manual_csa(float(np.mean(phantom.csa_mm2)), rng), measured_on=exam_date)
    # Half DICOM (spacing from the file), half mp4 (spacing entered at upload), as sites export both.
    if hand.pk % 2:
        path = write_dicom(phantom, tmp / f"hand{hand.pk}.dcm", patient_id=hand.participant.study_code)
        spacing = None
    else:
        path = write_video(phantom, tmp / f"hand{hand.pk}.mp4")
        spacing = phantom.pixel_spacing_mm[1]
    with path.open("rb") as handle:
        clip = clip_services.clip_upload(hand=hand, upload=File(handle, name=path.name), pixel_spacing_mm=spacing,
                                         scanner_model="Phantom US", probe="L18-4", frequency_mhz=18.0,
                                         notes="Synthetic phantom clip (demo study).", queue_extraction=False)
    path.unlink()
    clip_services.clip_extract_frames(clip_id=clip.pk)
    return clip, phantom


def _annotate_from_truth(clip, phantom, rng, rater, second_rater) -> None:
    frames = list(clip.frames.all())
    for frame in frames:
        cx, cy = phantom.centers[frame.index]
        annotation_services.roi_save(frame=frame, annotator=rater, center_x=float(cx), center_y=float(cy),
                                     status=RoiAnnotation.Status.CONFIRMED,
                                     method=RoiAnnotation.Method.GROUND_TRUTH)
    outline_frame = frames[0]
    annotation_services.outline_create(frame=outline_frame, annotator=rater,
                                       points=phantom.outlines[outline_frame.index].tolist())
    if second_rater is not None:
        # A second reader: ROIs a little off the truth and an outline traced slightly larger or smaller.
        for frame in frames:
            cx, cy = phantom.centers[frame.index] + rng.normal(0, 4, 2)
            annotation_services.roi_save(frame=frame, annotator=second_rater, center_x=float(cx), center_y=float(cy),
                                         status=RoiAnnotation.Status.CONFIRMED)
        outline = phantom.outlines[outline_frame.index]
        centre = outline.mean(axis=0)
        scaled = centre + (outline - centre) * rng.normal(1.0, 0.06)
        annotation_services.outline_create(frame=outline_frame, annotator=second_rater, points=scaled.tolist())
