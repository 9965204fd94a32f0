"""Reads behind the dashboards: a fixed number of queries whatever the number of hands, clips or frames."""

from __future__ import annotations

from django.db.models import Count, F, OuterRef, Q, Subquery

from studyapp.annotations import selectors as annotation_selectors
from studyapp.annotations.models import NerveOutline, RoiAnnotation
from studyapp.annotations.services import ANCHORS
from studyapp.clips.models import Clip, Frame
from studyapp.cohort.models import EpsExam, Hand
from studyapp.cohort.selectors import cohort_flow, latest_inlet_csa
from studyapp.experiments.models import Experiment, Split, SplitMember, TrainingRun
from studyapp.protocol.models import StudySettings

LABEL_GROUP = {0: "control", 1: "cts"}  # SplitMember.label


def _latest_exam(field: str) -> Subquery:
    return Subquery(EpsExam.objects.filter(hand=OuterRef("pk")).order_by("-exam_date", "-id").values(field)[:1])


def cohort_hands() -> list[dict]:
    """Every hand with its participant's demographics and its latest EPS values, in one query."""
    return list(Hand.objects.order_by("participant__study_code", "side").values(
        "pk", "group", "side", "stage", "exclusion_reason", "staging_reason", "staged_dml_threshold_ms",
        "staged_sncv_threshold_m_s", study_code=F("participant__study_code"), age=F("participant__age"),
        sex=F("participant__sex"), enrolled_on=F("participant__enrolled_on"),
    ).annotate(dml_ms=_latest_exam("dml_ms"), sncv_m_s=_latest_exam("sncv_m_s")))


def latest_locked_split() -> dict | None:
    """The latest locked split with its train/test hands per group (as labelled when it was made)."""
    split = (Split.objects.filter(status=Split.Status.LOCKED).order_by("-locked_at", "-pk")
             .values("pk", "name", "version").first())
    if split is None:
        return None
    groups = {group: {"train": 0, "test": 0} for group in LABEL_GROUP.values()}
    for subset, label, n in (SplitMember.objects.filter(split_id=split["pk"]).values_list("subset", "label")
                             .annotate(n=Count("pk")).values_list("subset", "label", "n")):
        # An external split's "external" hands are counted too, beside train and test.
        groups[LABEL_GROUP[label]][subset] = groups[LABEL_GROUP[label]].get(subset, 0) + n
    return {**split, "groups": groups}


def analysed_hands(*, split_id: int) -> dict | None:
    """Test hands per group evaluated by the latest finished run on the split (only the labels are read)."""
    run = (TrainingRun.objects.filter(experiment__split_id=split_id, status=TrainingRun.Status.DONE,
                                      evaluation__hand__has_key="labels")
           .order_by("-finished_at", "-pk").values_list("experiment__name", "evaluation__hand__labels").first())
    if run is None:
        return None
    name, labels = run
    return {"experiment": name, "groups": {group: sum(1 for label in labels if int(label) == value)
                                           for value, group in LABEL_GROUP.items()}}


def training_csa_threshold() -> dict | None:
    """The manual-CSA cut-off chosen by Youden's J on the training hands of the latest compared experiment."""
    row = (Experiment.objects.filter(comparison__csa_baseline__youden_on_training__has_key="threshold")
           .order_by("-created_at", "-pk")
           .values_list("name", "comparison__csa_baseline__youden_on_training").first())
    if row is None:
        return None
    name, youden = row
    return {"experiment": name, **youden}


def cohort_dashboard_data() -> dict:
    """Everything the cohort dashboard draws; its number of queries does not depend on the cohort's size."""
    settings = StudySettings.current()
    hands = cohort_hands()
    csa = latest_inlet_csa(hand_ids=[h["pk"] for h in hands if not h["exclusion_reason"]],
                           method=settings.csa_baseline_method)
    for hand in hands:
        hand["csa_mm2"] = csa.get(hand["pk"])
    flow = cohort_flow()
    split = latest_locked_split()
    flow["split"] = split
    flow["analysed"] = analysed_hands(split_id=split["pk"]) if split else None
    return {"hands": hands, "flow": flow, "threshold": training_csa_threshold(), "settings": settings}


def clip_progress() -> list[dict]:
    """Per clip: frames stored, frames with a confirmed ROI by anyone, annotators who confirmed some.

    Nothing about the hand's group, stage or participant beyond its pseudonymous code and side. Three
    grouped queries rather than correlated subqueries: one pass over the frames and ROIs each.
    """
    frames = dict(Frame.objects.order_by().values_list("clip").annotate(n=Count("pk")).values_list("clip", "n"))
    confirmed = {row["frame__clip"]: row for row in RoiAnnotation.objects.filter(status__in=ANCHORS).order_by()
                 .values("frame__clip").annotate(frames=Count("frame", distinct=True),
                                                 annotators=Count("annotator", distinct=True))}
    clips = list(Clip.objects.order_by("pk").values(
        "pk", "extraction_status", "hand_id", study_code=F("hand__participant__study_code"), side=F("hand__side"),
        excluded=~Q(hand__exclusion_reason=""), assignee=F("assigned_to__username")))
    for clip in clips:
        done = confirmed.get(clip["pk"], {})
        clip.update(frames=frames.get(clip["pk"], 0), confirmed=done.get("frames", 0),
                    annotators=done.get("annotators", 0))
    return clips


def annotator_progress() -> list[dict]:
    """Per annotator: frames with a confirmed (or keyframe) ROI, clips touched, outlines traced."""
    rois = {row["annotator__username"]: row for row in
            RoiAnnotation.objects.filter(status__in=ANCHORS).values("annotator__username")
            .annotate(frames=Count("pk"), clips=Count("frame__clip", distinct=True))}
    outlines = dict(NerveOutline.objects.values_list("annotator__username").annotate(n=Count("pk"))
                    .values_list("annotator__username", "n"))
    return [{"annotator": name, "frames": rois.get(name, {}).get("frames", 0),
             "clips": rois.get(name, {}).get("clips", 0), "outlines": outlines.get(name, 0)}
            for name in sorted(set(rois) | set(outlines))]


def annotation_dashboard_data() -> dict:
    """Progress and agreement, free of group, stage and demographics (shown to those who do not rate blind)."""
    return {"clips": clip_progress(), "annotators": annotator_progress(),
            "roi": annotation_selectors.roi_agreement(), "csa": annotation_selectors.csa_agreement()}
