"""Server-rendered clip pages: upload, clip status and calibration, assignment and the annotator's worklist,
the annotation canvas, agreement.

Each view checks the role permission, validates the form, calls one service and redirects; a refused
form is shown again with the service's message next to its field and everything typed kept.
"""

from __future__ import annotations

from collections import Counter

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from studyapp.annotations import selectors as annotation_selectors
from studyapp.annotations.models import NerveOutline, RoiAnnotation
from studyapp.annotations.services import roi_propagation_active
from studyapp.cohort.models import Hand
from studyapp.common.forms import add_service_errors
from studyapp.dashboards.panels import bland_altman_panels
from studyapp.ops.api import BackgroundJobSerializer
from studyapp.protocol.models import StudySettings

from . import selectors, services
from .forms import AssignForm, ClipUploadForm, SiteCorrectionForm, SpacingForm
from .models import Clip

# (keys, what they do): shown on the annotation page and in its help dialog; annotate.js implements them.
SHORTCUTS = [
    ("→ or D", "Next frame"),
    ("← or A", "Previous frame"),
    ("Home / End", "First / last frame"),
    ("N", "Next frame that is not confirmed yet"),
    ("Click", "Place the ROI centre on the nerve (saved as a keyframe)"),
    ("Drag the box", "Move the ROI (saved as a keyframe)"),
    ("Enter or C", "Confirm this frame's ROI"),
    ("P", "Propagate: propose the ROI on every frame from your keyframes"),
    ("Shift+C", "Confirm all proposed ROIs"),
    ("Delete or X", "Delete this frame's ROI"),
    ("O", "Outline mode on/off: click points around the nerve, Enter or double-click closes, "
          "Backspace removes the last point, Esc cancels"),
    ("?", "Show / hide this help"),
]


def _clip(pk) -> Clip:
    return get_object_or_404(Clip.objects.select_related("hand__participant", "uploaded_by", "assigned_to", "site"),
                             pk=pk)


@login_required
@permission_required("clips.add_clip", raise_exception=True)
def clip_upload(request, hand_pk):
    hand = get_object_or_404(Hand.objects.select_related("participant"), pk=hand_pk)
    context = {"hand": hand, "frames_per_clip": StudySettings.current().frames_per_clip}
    if request.method != "POST":
        return render(request, "clips/upload.html", {**context, "form": ClipUploadForm()})
    form = ClipUploadForm(request.POST, request.FILES)
    if form.is_valid():
        data = dict(form.cleaned_data)
        try:
            clip = services.clip_upload(hand=hand, upload=data.pop("file"), uploaded_by=request.user, **data)
        except services.DuplicateClip as duplicate:
            add_service_errors(form, duplicate)
            context["duplicate_of"] = duplicate.existing
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Uploaded {clip.original_filename}: {clip.frame_count} frames; "
                                      f"extracting {clip.extraction_total} of them.")
            return redirect("clips:detail", pk=clip.pk)
    return render(request, "clips/upload.html", {**context, "form": form}, status=400)


def _detail_context(request, clip: Clip, **extra) -> dict:
    def visible(model):
        return annotation_selectors.visible_annotations(model.objects.filter(frame__clip=clip), user=request.user)

    rois = visible(RoiAnnotation).values("annotator__username", "status").annotate(n=Count("id"))
    per_annotator: dict[str, Counter] = {}
    for row in rois:
        per_annotator.setdefault(row["annotator__username"], Counter())[row["status"]] += row["n"]
    outlines = Counter(visible(NerveOutline).values_list("annotator__username", flat=True))
    annotators = [{"name": name, "keyframe": per_annotator.get(name, {}).get("keyframe", 0),
                   "confirmed": per_annotator.get(name, {}).get("confirmed", 0),
                   "proposed": per_annotator.get(name, {}).get("proposed", 0), "outlines": outlines.get(name, 0)}
                  for name in sorted(set(per_annotator) | set(outlines))]
    can_calibrate = request.user.has_perm("clips.change_clip") and clip.spacing_mm is None
    can_assign = request.user.has_perm(services.ASSIGN_PERM)
    can_correct_site = request.user.has_perm(services.CORRECT_PERM)
    context = {
        "clip": clip, "hand": clip.hand, "participant": clip.hand.participant,
        "frames_stored": clip.frames.count(), "annotators": annotators, "can_calibrate": can_calibrate,
        "spacing_form": SpacingForm() if can_calibrate else None,
        "crop_size_mm": StudySettings.current().crop_size_mm,
        "assign_form": AssignForm(clip=clip) if can_assign else None,
        "locked_splits": selectors.clip_locked_splits(clip),
        "site_form": SiteCorrectionForm(clip=clip) if can_correct_site else None,
        "site_corrections": selectors.clip_site_corrections(clip),
    }
    context.update(extra)
    return context


@login_required
@permission_required("clips.view_clip", raise_exception=True)
def clip_detail(request, pk):
    clip = _clip(pk)
    return render(request, "clips/detail.html", _detail_context(request, clip))


@login_required
@permission_required("clips.view_clip", raise_exception=True)
def clip_progress(request, pk):
    """The extraction status partial; it polls itself (htmx) while queued or running."""
    clip = _clip(pk)
    return render(request, "clips/_progress.html", {"clip": clip, "compact": request.GET.get("compact") == "1"})


@login_required
@require_POST
@permission_required(services.CORRECT_PERM, raise_exception=True)
def clip_site(request, pk):
    """The audited correction of a clip's site and scanner, with a reason."""
    clip = _clip(pk)
    form = SiteCorrectionForm(request.POST, clip=clip)
    if form.is_valid():
        try:
            services.clip_site_correct(clip=clip, corrected_by=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
            # What the person typed stays; a second save applies it over the values now shown.
            form.data = form.data.copy()
            form.data["expected_token"] = services.acquisition_token(_clip(pk))
        else:
            messages.success(request, "Site and scanner corrected; the reason is kept in the clip's history.")
            return redirect("clips:detail", pk=clip.pk)
    return render(request, "clips/detail.html", _detail_context(request, _clip(pk), site_form=form), status=400)


@login_required
@require_POST
@permission_required("clips.change_clip", raise_exception=True)
def clip_spacing(request, pk):
    clip = _clip(pk)
    form = SpacingForm(request.POST)
    if form.is_valid():
        try:
            services.clip_set_spacing(clip=clip, spacing_mm=form.cleaned_data["pixel_spacing_mm"])
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Pixel spacing set to {form.cleaned_data['pixel_spacing_mm']:g} mm/px.")
            return redirect("clips:detail", pk=clip.pk)
    clip = _clip(pk)  # as stored: a refused value must not show as if saved
    return render(request, "clips/detail.html",
                  _detail_context(request, clip, spacing_form=form, can_calibrate=True), status=400)


@login_required
@require_POST
@permission_required("clips.change_clip", raise_exception=True)
def clip_retry(request, pk):
    clip = _clip(pk)
    try:
        services.clip_retry_extraction(clip=clip)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Frame extraction queued again.")
    return redirect("clips:detail", pk=clip.pk)


@login_required
@permission_required(services.ANNOTATE_PERM, raise_exception=True)
def worklist(request):
    """The signed-in annotator's clips and the open ones; no group, stage, EPS or demographics on it."""
    work = selectors.annotator_worklist(annotator=request.user)
    return render(request, "clips/worklist.html", {
        "work": work, "show_done": request.GET.get("done") == "1", "show_second": request.GET.get("second") == "1"})


def _back(request, clip: Clip):
    """Back to the page the button was on (the worklist or the clip), never to another site."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return redirect(target)
    return redirect("clips:detail", pk=clip.pk)


@login_required
@require_POST
@permission_required(services.ASSIGN_PERM, raise_exception=True)
def clip_assign(request, pk):
    clip = _clip(pk)
    form = AssignForm(request.POST, clip=clip)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("annotator", ["Choose an annotator."])))
        return _back(request, clip)
    annotator = form.cleaned_data["annotator"]
    try:
        services.clip_assign(clip=clip, annotator=annotator, assigned_by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Clip {clip.pk} assigned to {annotator.get_username()}." if annotator
                         else f"Clip {clip.pk} is open to any annotator.")
    return _back(request, clip)


@login_required
@require_POST
@permission_required(services.ANNOTATE_PERM, raise_exception=True)
def clip_take(request, pk):
    clip = _clip(pk)
    try:
        services.clip_take(clip=clip, annotator=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Clip {clip.pk} is on your worklist now.")
    return _back(request, clip)


@login_required
@require_POST
def clip_release(request, pk):
    """The assignee gives the clip back, or a coordinator opens it; the service says who may."""
    if not (request.user.has_perm(services.ANNOTATE_PERM) or request.user.has_perm(services.ASSIGN_PERM)):
        raise PermissionDenied
    clip = _clip(pk)
    try:
        services.clip_release(clip=clip, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Clip {clip.pk} is open to any annotator again.")
    return _back(request, clip)


def _active_propagation(clip: Clip, user) -> dict | None:
    job = roi_propagation_active(clip=clip, annotator=user)
    return {**BackgroundJobSerializer(job).data, "url": reverse("backgroundjob-detail", args=[job.pk])} if job else None


def _annotate_config(request, clip: Clip, frames) -> dict:
    return {
        "clipId": clip.pk,
        "label": f"{clip.hand.participant.study_code} {clip.hand.side}",
        "frames": [{"id": f.pk, "index": f.index, "timestamp_s": f.timestamp_s, "width": f.width,
                    "height": f.height, "image_url": reverse("clips:frame-image", args=[f.pk])} for f in frames],
        "cropSizeMm": StudySettings.current().crop_size_mm,
        "spacing": list(clip.spacing_mm) if clip.spacing_mm else None,
        "spacingSource": clip.get_spacing_source_display(),
        "canCalibrate": request.user.has_perm("clips.change_clip") and clip.spacing_source != Clip.SpacingSource.DICOM,
        "user": request.user.get_username(),
        # Blinded raters trace without seeing anyone else's work, whatever their other permissions.
        "blinded": StudySettings.current().raters_blinded,
        "csrf": get_token(request),
        "propagation": _active_propagation(clip, request.user),
        "api": {
            "annotations": reverse("roiannotation-list"),
            "outlines": reverse("nerveoutline-list"),
            "propagate": reverse("clip-propagate", args=[clip.pk]),
            "confirmAll": reverse("clip-confirm-all", args=[clip.pk]),
            "calibrate": reverse("clip-calibrate", args=[clip.pk]),
        },
    }


@login_required
@permission_required("annotations.add_roiannotation", raise_exception=True)
def clip_annotate(request, pk):
    clip = _clip(pk)
    frames = list(clip.frames.all()) if clip.extraction_status == Clip.Extraction.DONE else []
    return render(request, "clips/annotate.html", {
        "clip": clip, "hand": clip.hand, "participant": clip.hand.participant, "frames": frames,
        "config": _annotate_config(request, clip, frames) if frames else None, "shortcuts": SHORTCUTS,
        "crop_size_mm": StudySettings.current().crop_size_mm, "locked_splits": selectors.clip_locked_splits(clip),
    })


def _icc_label(value: float | None) -> str:
    """Koo & Li (2016) bands for an ICC point estimate."""
    if value is None:
        return ""
    if value < 0.5:
        return "poor"
    if value < 0.75:
        return "moderate"
    if value < 0.9:
        return "good"
    return "excellent"


@login_required
@permission_required(("annotations.view_roiannotation", annotation_selectors.ALL_RATERS_PERM), raise_exception=True)
def agreement(request):
    roi = annotation_selectors.roi_agreement()
    csa = annotation_selectors.csa_agreement()
    clips = Clip.objects.select_related("hand__participant").in_bulk([row["clip"] for row in roi["per_clip"]])
    per_clip = [{**row, "clip_obj": clips.get(row["clip"])} for row in roi["per_clip"]]
    icc = csa.get("icc")
    ba = csa.get("bland_altman")
    return render(request, "clips/agreement.html", {
        "roi": roi, "per_clip": per_clip, "csa": csa, "icc": icc, "ba": ba,
        "icc_label": _icc_label(icc["icc"]) if icc else "",
        "ba_panels": bland_altman_panels(csa),
        "ba_pairs": csa.get("bland_altman_pairs") or [],
        "crop_size_mm": StudySettings.current().crop_size_mm,
        "blinding": annotation_selectors.blinding_statement(),
    })
