"""The PI's review of rater disagreements: frames whose ROIs overlap too little, hands whose CSA differ too much.

Each decision is an audited adjudication; the dataset's crops (and the CSA the PI kept) follow it.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from studyapp.clips.models import Clip, Frame
from studyapp.cohort.models import Hand
from studyapp.common.forms import add_service_errors
from studyapp.protocol.models import StudySettings

from . import selectors, services
from .forms import THIRD, CsaAdjudicationForm, RoiAdjudicationForm
from .models import NerveOutline

ADJUDICATE = "annotations.adjudicate"
_COLOURS = ["#1e88e5", "#e53935", "#8e24aa", "#fb8c00"]


def _user(username: str):
    return get_user_model().objects.get(username=username)


@login_required
@permission_required(ADJUDICATE, raise_exception=True)
def review(request):
    settings = StudySettings.current()
    rois = selectors.roi_disagreements(threshold=settings.adjudication_iou_threshold)
    csa = selectors.csa_disagreements(threshold=settings.adjudication_csa_difference_mm2)
    clips = Clip.objects.select_related("hand__participant").in_bulk({d.clip_id for d in rois})
    hands = Hand.objects.select_related("participant").in_bulk([d.hand_id for d in csa])
    return render(request, "clips/review.html", {
        "settings": settings, "show_done": request.GET.get("done") == "1",
        "rois": [(d, clips[d.clip_id]) for d in rois], "csa": [(d, hands[d.hand_id]) for d in csa],
        "open_rois": sum(d.adjudication is None for d in rois), "open_csa": sum(d.adjudication is None for d in csa)})


@login_required
@permission_required(ADJUDICATE, raise_exception=True)
def review_frame(request, pk):
    frame = get_object_or_404(Frame.objects.select_related("clip__hand__participant"), pk=pk)
    found = selectors.roi_disagreements(threshold=1.01, frame_id=frame.pk)  # every frame two raters marked
    if not found:
        raise Http404("Fewer than two raters confirmed a ROI on this frame: nothing to adjudicate.")
    disagreement = found[0]
    decision = disagreement.adjudication
    initial = {}
    if decision is not None:
        initial = ({"keep": decision.chosen_annotator.get_username(), "note": decision.note}
                   if decision.chosen_annotator_id else
                   {"keep": THIRD, "center_x": decision.x + decision.w / 2, "center_y": decision.y + decision.h / 2,
                    "note": decision.note})
    form = RoiAdjudicationForm(request.POST or None, raters=list(disagreement.boxes), initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        third = data["keep"] == THIRD
        try:
            services.roi_adjudicate(frame=frame, decided_by=request.user,
                                    chosen_annotator=None if third else _user(data["keep"]),
                                    center=(data["center_x"], data["center_y"]) if third else None,
                                    note=data["note"])
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Frame {frame.index + 1} of clip {frame.clip_id} adjudicated.")
            return redirect(reverse("clips:review"))
    boxes = [{"name": name, "x": b[0], "y": b[1], "w": b[2], "h": b[3], "colour": _COLOURS[i % len(_COLOURS)]}
             for i, (name, b) in enumerate(disagreement.boxes.items())]
    return render(request, "clips/review_frame.html", {
        "frame": frame, "clip": frame.clip, "hand": frame.clip.hand, "disagreement": disagreement, "boxes": boxes,
        "decision": decision, "form": form, "history": decision.history.select_related("history_user")
        if decision else []}, status=400 if form.errors else 200)


@login_required
@permission_required(ADJUDICATE, raise_exception=True)
def review_hand(request, pk):
    hand = get_object_or_404(Hand.objects.select_related("participant"), pk=pk)
    outlines = list(NerveOutline.objects.filter(frame__clip__hand=hand).select_related("frame", "annotator")
                    .order_by("annotator__username", "frame__clip", "frame__index"))
    values: dict[str, list[float]] = {}
    for outline in outlines:
        values.setdefault(outline.annotator.get_username(), []).append(outline.area_mm2)
    if len(values) < 2:
        raise Http404("Fewer than two raters outlined this hand: nothing to adjudicate.")
    means = {name: sum(v) / len(v) for name, v in values.items()}
    decision = getattr(hand, "csa_adjudication", None)
    initial = {}
    if decision is not None:
        initial = {"keep": decision.chosen_annotator.get_username() if decision.chosen_annotator_id else THIRD,
                   "csa_mm2": decision.csa_mm2, "note": decision.note}
    form = CsaAdjudicationForm(request.POST or None, values=means, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        third = data["keep"] == THIRD
        try:
            services.csa_adjudicate(hand=hand, decided_by=request.user,
                                    chosen_annotator=None if third else _user(data["keep"]),
                                    csa_mm2=data["csa_mm2"] if third else None, note=data["note"])
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"CSA of {hand} adjudicated.")
            return redirect(reverse("clips:review"))
    colours = {name: _COLOURS[i % len(_COLOURS)] for i, name in enumerate(values)}
    frames: dict[int, dict] = {}
    for outline in outlines:
        entry = frames.setdefault(outline.frame_id, {"frame": outline.frame, "outlines": []})
        entry["outlines"].append({"name": outline.annotator.get_username(), "area": outline.area_mm2,
                                  "colour": colours[outline.annotator.get_username()],
                                  "points": " ".join(f"{x},{y}" for x, y in outline.points)})
    return render(request, "clips/review_hand.html", {
        "hand": hand, "means": means, "colours": colours, "frames": list(frames.values()), "form": form,
        "decision": decision, "history": decision.history.select_related("history_user") if decision else []},
        status=400 if form.errors else 200)
