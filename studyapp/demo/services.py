"""Seed a demo study from the synthetic phantom: cohort, EPS, CSA, clips, frames, confirmed ROIs, outlines.

Everything goes through the same services as real data (validation, staging, audit), so the demo shows
exactly what a coordinator and annotators would have produced.

The cohort is scanned at two simulated sites (DEMO_SITES), each with its own scanner profile, so that an
external split (train on one site, test on the other) meets a real domain shift. A few "prospective" hands,
enrolled last, have clips and confirmed ROIs but no EPS yet: their true group and EPS stay out of the
database, in the demo's own truth file (`demo_truth_path`), until `demo_prospective_eps_enter` records them
as a coordinator would, so blinded predictions can be made on them first.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from mlworker.phantom import SITE_A_LOGIQ, SITE_B_CX50, PhantomConfig, ScannerProfile, generate_clip
from mlworker.phantom import sample_eps, sample_manual_csa, sample_participant, write_dicom, write_video
from studyapp.accounts.roles import ANNOTATOR
from studyapp.annotations import services as annotation_services
from studyapp.annotations.models import RoiAnnotation
from studyapp.clips import services as clip_services
from studyapp.cohort import services as cohort_services
from studyapp.cohort.models import Hand, Participant
from studyapp.sites.models import Site

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
# Hands enrolled last, with clips and confirmed ROIs but no EPS: what the blinded prospective prediction runs on.
DEMO_PROSPECTIVE = 6
TRUTH_FORMAT = "cts-study-demo-truth/1"


@dataclass(frozen=True)
class DemoSite:
    code: str
    name: str
    profile: ScannerProfile


DEMO_SITES = (DemoSite("site-a", "Phantom University Hospital", SITE_A_LOGIQ),
              DemoSite("site-b", "Phantom District Clinic", SITE_B_CX50))
# Participants of each group go to the sites in this cycle: 60/40, and both groups at both sites.
DEMO_SITE_CYCLE = (0, 1, 0, 1, 0)


@dataclass(frozen=True)
class _Entry:
    """One demo participant to create: group, sides, kind (annotated, awaiting, prospective) and site."""

    group: str
    sides: list[str] | None  # None: one hand, its side drawn when seeded
    kind: str
    site: DemoSite


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


def demo_truth_path() -> Path:
    """The demo's ground truth of its prospective hands: outside the database, unseen by the study's users."""
    return Path(settings.VAR_DIR) / "demo" / "prospective-truth.json"


def _entries(plan: list[tuple[str, list[str]]], awaiting: int, prospective: int) -> list[_Entry]:
    """Every participant in seeding order, each with its site (the cycle runs per group)."""
    taken = {"control": 0, "cts": 0}

    def site(group: str) -> DemoSite:
        taken[group] += 1
        return DEMO_SITES[DEMO_SITE_CYCLE[(taken[group] - 1) % len(DEMO_SITE_CYCLE)]]

    entries = [_Entry(group, sides, "annotated", site(group)) for group, sides in plan]
    for kind, count in (("awaiting", awaiting), ("prospective", prospective)):
        groups = [("control", "cts")[k % 2] for k in range(count)]
        entries += [_Entry(group, None, kind, site(group)) for group in groups]
    return entries


def demo_seed(*, n_hands: int = 100, seed: int = 2022, config: PhantomConfig = PhantomConfig(),
              second_rater_every: int = 4, awaiting_annotation: int = 0, prospective: int = 0,
              explain_sample: bool = False, progress: Callable[[int, int], None] | None = None,
              resume_from: dict | None = None, checkpoint: Callable[[dict], None] | None = None,
              truth_path: Path | None = None) -> int:
    """Create the demo study; returns the number of hands it holds. Refuses to run twice, unless resuming.

    `n_hands` are fully annotated; `awaiting_annotation` more have extracted clips and no ROI yet;
    `prospective` more, enrolled last, have clips and confirmed ROIs but no EPS (their truth goes to
    `truth_path`, by default `demo_truth_path()`); `explain_sample` sets the explained frames per hand to
    DEMO_EXPLAIN_FRAMES (the demo on a CPU). Participants are split over DEMO_SITES, and each clip is
    rendered by its site's scanner profile. Each participant is created whole in one transaction, which also
    calls `checkpoint` with where the seeding stands (next participant, hands done, random state);
    `resume_from` such a checkpoint goes on from there, so a seeding cut short (a dead worker) ends as if it
    had never stopped.
    """
    if demo_seeded() and resume_from is None:
        raise ValueError("The demo study is already seeded (participants DEMO-…); nothing was added.")
    rng = np.random.default_rng(seed)
    if explain_sample:
        cohort_services.study_settings_update(**DEMO_EXPLAIN_FRAMES)  # audited like any settings change
    rater, second = _user("annotator"), _user(SECOND_RATER)
    sites = _sites()
    total = n_hands + awaiting_annotation + prospective
    plan = _plan(n_hands, rng)
    entries = _entries(plan, awaiting_annotation, prospective)
    truth_path = truth_path or demo_truth_path()
    start, done = 1, 0
    if resume_from:
        start, done = resume_from["next"], resume_from["done"]
        rng.bit_generator.state = resume_from["rng"]
    elif truth_path.exists():
        truth_path.unlink()  # a fresh demo: no truth left over from an earlier one
    today = timezone.localdate()
    with tempfile.TemporaryDirectory(prefix="cts-demo-") as tmp:
        for number, entry in enumerate(entries, start=1):
            if number < start:
                continue
            with transaction.atomic():
                if entry.kind == "prospective":
                    # Enrolled over the last days, most recent last.
                    enrolled = today - dt.timedelta(days=len(entries) - number + 1)
                    done += _seed_prospective(number, entry, sites[entry.site.code], enrolled, rng, config,
                                              Path(tmp), rater, truth_path)
                else:
                    done += _seed_participant(number, entry, sites[entry.site.code], rng, config, Path(tmp),
                                              rater, second, second_rater_every, done,
                                              first_awaiting=number == len(plan) + 1)
                if checkpoint:
                    checkpoint({"next": number + 1, "done": done, "rng": rng.bit_generator.state})
            if progress:
                progress(done, total)
    return done


def _sites() -> dict[str, Site]:
    """The demo's sites as Site rows (created once; the DICOM InstitutionName of each names it)."""
    rows = {}
    for demo_site in DEMO_SITES:
        rows[demo_site.code], _ = Site.objects.get_or_create(
            code=demo_site.code, defaults={"name": demo_site.name,
                                           "institution_names": [demo_site.profile.institution_name],
                                           "notes": f"Simulated site of the demo study ({demo_site.profile.name})."})
    return rows


def _code(number: int) -> str:
    return f"{DEMO_PREFIX}{number:03d}"


def _seed_participant(number, entry: _Entry, site: Site, rng, config, tmp, rater, second, second_rater_every,
                      done, *, first_awaiting: bool) -> int:
    """One demo participant whole: enrolled, each hand examined and (unless awaiting ROIs: no sides) annotated."""
    group, profile = entry.group, entry.site.profile
    if entry.sides is None:
        [hand] = _enroll(number, group, [str(rng.choice(["right", "left"]))], rng)
        clip = _seed_clip(hand, group, int(rng.integers(2**31)), config, tmp, rng, site, profile)[0]
        if first_awaiting:
            clip_services.clip_take(clip=clip, annotator=rater)
        return 1
    for offset, hand in enumerate(_enroll(number, group, entry.sides, rng)):
        clip, phantom = _seed_clip(hand, group, int(rng.integers(2**31)), config, tmp, rng, site, profile)
        with transaction.atomic():
            _annotate_from_truth(clip, phantom, rng, rater,
                                 second if (done + offset) % second_rater_every == 0 else None)
    return len(entry.sides)


def _seed_prospective(number, entry: _Entry, site: Site, enrolled: dt.date, rng, config, tmp, rater,
                      truth_path: Path) -> int:
    """A newly enrolled patient's hand: a clip with confirmed ROIs and a manual CSA, its EPS only in the truth file.

    Referred patients of both groups look alike on enrolment (recruited as patients, demographics of the
    referred population), so nothing in the study's data gives the group away before the EPS.
    """
    person = {**sample_participant("cts", rng), "recruitment": "patient"}
    side = str(rng.choice(["right", "left"]))
    participant = cohort_services.participant_create(study_code=_code(number), enrolled_on=enrolled, **person)
    hand = cohort_services.hand_create(participant=participant, side=side)
    clip, phantom = _seed_clip(hand, entry.group, int(rng.integers(2**31)), config, tmp, rng, site,
                               entry.site.profile, eps=False)
    _annotate_from_truth(clip, phantom, rng, rater, None)
    truth = _truth_read(truth_path)
    truth[f"{participant.study_code}:{side}"] = {
        "study_code": participant.study_code, "side": side, "group": entry.group, "site": entry.site.code,
        "eps": sample_eps(entry.group, rng), "csa_mm2": float(np.mean(phantom.csa_mm2))}
    _truth_write(truth_path, truth)
    return 1


def _enroll(number: int, group: str, sides: list[str], rng) -> list:
    """A demo participant DEMO-<number> and their hands."""
    person = sample_participant(group, rng)
    with transaction.atomic():
        participant = cohort_services.participant_create(
            study_code=_code(number), enrolled_on=DEMO_ENROLLED + dt.timedelta(days=number), **person)
        return [cohort_services.hand_create(participant=participant, side=side) for side in sides]


def _seed_clip(hand, group, clip_seed, config, tmp: Path, rng, site: Site, profile: ScannerProfile, *,
               eps: bool = True):
    """EPS (unless not yet), a manual CSA and an uploaded, extracted phantom clip for a hand: (clip, phantom)."""
    phantom = generate_clip(group, clip_seed, config, profile=profile)
    exam_date = hand.participant.enrolled_on + dt.timedelta(days=7)
    if eps:
        cohort_services.eps_exam_create(hand=hand, exam_date=exam_date, **sample_eps(group, rng))
    else:
        exam_date = hand.participant.enrolled_on  # scanned on enrolment; the EPS comes later
    cohort_services.csa_measurement_create(
        hand=hand, csa_mm2=sample_manual_csa(float(np.mean(phantom.csa_mm2)), rng), measured_on=exam_date)
    # Half DICOM (spacing and scanner from the file), half mp4 (entered at upload), as sites export both.
    dicom = bool(hand.pk % 2)
    if dicom:  # the upload reads site (by InstitutionName) and scanner from the header
        path = write_dicom(phantom, tmp / f"hand{hand.pk}.dcm", patient_id=hand.participant.study_code)
        entered = {"pixel_spacing_mm": None}
    else:
        path = write_video(phantom, tmp / f"hand{hand.pk}.mp4")
        entered = {"pixel_spacing_mm": phantom.pixel_spacing_mm[1], "site": site,
                   "scanner_manufacturer": profile.manufacturer, "scanner_model": profile.model_name,
                   "probe": profile.transducer, "frequency_mhz": profile.frequency_mhz}
    with path.open("rb") as handle:
        clip = clip_services.clip_upload(hand=hand, upload=File(handle, name=path.name), **entered,
                                         notes="Synthetic phantom clip (demo study).", queue_extraction=False)
    path.unlink()
    if clip.site_id != site.pk:
        raise RuntimeError(f"The demo's clip {clip.pk} was not assigned to {site.code} at upload.")
    clip_services.clip_extract_frames(clip_id=clip.pk)
    return clip, phantom


def _truth_read(path: Path) -> dict:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    if data.get("format") != TRUTH_FORMAT:
        raise ValueError(f"{path} is not a demo truth file ({TRUTH_FORMAT}); remove it and seed the demo again.")
    return data["prospective"]


def _truth_write(path: Path, prospective: dict) -> None:
    """Replace the truth file whole (written aside, then renamed), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    part.write_text(json.dumps({"format": TRUTH_FORMAT, "prospective": prospective}, indent=1, sort_keys=True))
    os.chmod(part, 0o600)
    part.replace(path)


def demo_prospective_eps_enter(*, limit: int | None = None, exam_date: dt.date | None = None,
                               truth_path: Path | None = None, history_user=None) -> list[Hand]:
    """Record the EPS of prospective demo hands that still lack one, as a coordinator would; returns them.

    Hands are taken in enrolment order, `limit` at most; the values come from the demo's truth file. Each
    exam goes through the cohort service (staging, audit, and whatever the study does when an EPS arrives).
    """
    truth = _truth_read(truth_path or demo_truth_path())
    if not truth:
        raise ValueError("No prospective demo hands: seed the demo with prospective hands first.")
    exam_date = exam_date or timezone.localdate()
    entered: list[Hand] = []
    for key in sorted(truth):
        if limit is not None and len(entered) >= limit:
            break
        item = truth[key]
        hand = Hand.objects.filter(participant__study_code=item["study_code"], side=item["side"]).first()
        if hand is None or hand.eps_exams.exists():
            continue  # not seeded (a seeding cut short) or its EPS is already in
        with transaction.atomic():
            cohort_services.eps_exam_create(hand=hand, exam_date=exam_date, history_user=history_user,
                                            **item["eps"])
        hand.refresh_from_db()
        entered.append(hand)
    return entered


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
