"""Server-rendered cohort pages. Each view checks the role permission, validates, calls a service."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from studyapp.common.concurrency import StaleVersion
from studyapp.common.forms import add_service_errors
from studyapp.demo.jobs import demo_job_restartable
from studyapp.ops.models import BackgroundJob
from studyapp.protocol.models import StudySettings

from . import audit, csvio, selectors, services, staging
from .forms import (CsaMeasurementForm, CsvImportForm, EpsExamForm, HandExclusionForm, ParticipantForm,
                    StudySettingsForm)
from .models import CsaMeasurement, EpsExam, Hand, Participant


@login_required
@permission_required("cohort.view_hand", raise_exception=True)
def hand_list(request):
    params = request.GET
    show_diagnosis = selectors.sees_diagnosis(request.user)
    if show_diagnosis:
        included = {"yes": True, "no": False}.get(params.get("included", ""))
        stage = params.get("stage")
        hands = selectors.hand_list(
            group=params.get("group") or None,
            stage=int(stage) if stage and stage.isdigit() else None,
            included=included,
            search=params.get("q") or None,
            needs_restaging=True if params.get("restaging") == "yes" else None,
        )
    else:  # a blinded rater's filters on diagnostic fields are ignored, never allowed to narrow the list
        hands = selectors.hand_list(search=params.get("q") or None)
    page = Paginator(hands, 50).get_page(params.get("page"))
    query = params.copy()
    query.pop("page", None)
    demo_job = BackgroundJob.objects.filter(kind="seed_demo").first()
    context = {"page": page, "params": params, "querystring": query.urlencode(), "show_diagnosis": show_diagnosis,
               "demo_job": demo_job, "demo_restartable": demo_job_restartable(demo_job)}
    if show_diagnosis:
        context.update(groups=Hand.GroupChoice.choices, stages=range(1, 6), flow=selectors.cohort_flow(),
                       outdated_count=selectors.hand_list(needs_restaging=True).count())
    else:
        context.update(hand_count=hands.count())
    return render(request, "cohort/hand_list.html", context)


@login_required
@permission_required("cohort.add_participant", raise_exception=True)
def participant_create(request):
    form = ParticipantForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data.pop("version")
        sides = [side for side in ("left", "right") if data.pop(f"enroll_{side}")]
        try:
            with transaction.atomic():
                participant = services.participant_create(**data)
                hands = [services.hand_create(participant=participant, side=side) for side in sides]
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Enrolled {participant.study_code} ({', '.join(sides)} hand).")
            return redirect("cohort:hand-detail", pk=hands[0].pk)
    return render(request, "cohort/participant_form.html", {"form": form, "title": "Enroll a participant"})


@login_required
@permission_required("cohort.change_participant", raise_exception=True)
def participant_edit(request, pk):
    participant = get_object_or_404(Participant, pk=pk)
    # The form validates its own copy, so a refused edit never shows as if saved.
    form = ParticipantForm(request.POST or None, instance=Participant.objects.get(pk=pk))
    for name in ("enroll_left", "enroll_right"):
        del form.fields[name]
    if request.method == "POST" and form.is_valid():
        try:
            services.participant_update(participant=participant, expected_version=form.cleaned_data["version"],
                                        **form.edited())
        except StaleVersion as error:
            form.show_stale(error)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Saved {participant.study_code}.")
            return redirect("cohort:hand-detail", pk=participant.hands.first().pk)
    return render(request, "cohort/participant_form.html",
                  {"form": form, "title": f"Edit participant {participant.study_code}"},
                  status=400 if form.errors else 200)


@login_required
@require_POST
@permission_required("cohort.add_hand", raise_exception=True)
def hand_add(request, participant_pk):
    participant = get_object_or_404(Participant, pk=participant_pk)
    side = request.POST.get("side", "")
    try:
        hand = services.hand_create(participant=participant, side=side)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("cohort:hand-list")
    messages.success(request, f"Enrolled the {side} hand of {participant.study_code}.")
    return redirect("cohort:hand-detail", pk=hand.pk)


def _hand_context(request, hand, **forms):
    show_diagnosis = selectors.sees_diagnosis(request.user)
    exams = list(hand.eps_exams.all()) if show_diagnosis else []
    other_side = "right" if hand.side == "left" else "left"
    context = {
        "hand": hand,
        "participant": hand.participant,
        "show_demographics": request.user.has_perm("cohort.view_demographics"),
        "show_diagnosis": show_diagnosis,
        "exams": exams,
        "current_exam": exams[0] if exams else None,
        "csa_measurements": selectors.csa_measurements_visible(hand.csa_measurements.select_related("measured_by"),
                                                               user=request.user),
        "needs_restaging": show_diagnosis and selectors.hand_needs_restaging(hand),
        "can_add_other_hand": not hand.participant.hands.filter(side=other_side).exists(),
        "other_side": other_side,
        "eps_form": EpsExamForm(initial={"exam_date": timezone.localdate()}),
        "csa_form": CsaMeasurementForm(),
        "exclusion_form": HandExclusionForm(instance=hand),
    }
    context.update(forms)
    return context


@login_required
@permission_required("cohort.view_hand", raise_exception=True)
def hand_detail(request, pk):
    hand = get_object_or_404(Hand.objects.select_related("participant"), pk=pk)
    return render(request, "cohort/hand_detail.html", _hand_context(request, hand))


def _post_form(request, pk, form_key, make_form, save):
    """Validate a hand-page form and save it; on errors re-render the page with what was typed."""
    hand = get_object_or_404(Hand.objects.select_related("participant"), pk=pk)
    form = make_form(hand)
    if form.is_valid():
        try:
            save(hand, form)
        except StaleVersion as error:
            form.show_stale(error)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            return redirect("cohort:hand-detail", pk=hand.pk)
    return render(request, "cohort/hand_detail.html", _hand_context(request, hand, **{form_key: form}), status=400)


@login_required
@require_POST
@permission_required("cohort.add_epsexam", raise_exception=True)
def eps_exam_add(request, pk):
    def save(hand, form):
        data = dict(form.cleaned_data)
        data.pop("version")
        services.eps_exam_create(hand=hand, **data)
        messages.success(request, "EPS exam saved; stage and group re-derived.")
    return _post_form(request, pk, "eps_form", lambda hand: EpsExamForm(request.POST, instance=EpsExam(hand=hand)),
                      save)


def _hand_exam(pk, exam_pk) -> EpsExam:
    return get_object_or_404(EpsExam.objects.select_related("hand__participant"), pk=exam_pk, hand_id=pk)


@login_required
@permission_required("cohort.change_epsexam", raise_exception=True)
def eps_exam_edit(request, pk, exam_pk):
    """Correct a typed exam; the hand is re-staged from its (possibly new) current exam."""
    exam = _hand_exam(pk, exam_pk)
    # The form validates its own copy, so a refused edit never shows as if saved.
    form = EpsExamForm(request.POST or None, instance=EpsExam.objects.get(pk=exam.pk))
    if request.method == "POST" and form.is_valid():
        try:
            services.eps_exam_update(exam=exam, expected_version=form.cleaned_data["version"], **form.edited())
        except StaleVersion as error:
            form.show_stale(error)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"EPS exam of {exam.exam_date} corrected; stage and group re-derived.")
            return redirect("cohort:hand-detail", pk=pk)
    return render(request, "cohort/eps_exam_form.html", {"form": form, "exam": exam, "hand": exam.hand},
                  status=400 if form.errors else 200)


@login_required
@permission_required("cohort.delete_epsexam", raise_exception=True)
def eps_exam_delete(request, pk, exam_pk):
    """Ask, then remove an exam; the hand is re-staged from the exams that remain."""
    exam = _hand_exam(pk, exam_pk)
    if request.method == "POST":
        services.eps_exam_delete(exam=exam)
        messages.success(request, f"EPS exam of {exam.exam_date} removed; stage and group re-derived. "
                                  "The removal is kept in the audit history.")
        return redirect("cohort:hand-detail", pk=pk)
    after = services.hand_assessment(hand=exam.hand, thresholds=StudySettings.current().thresholds,
                                     without_exam=exam)
    return render(request, "cohort/eps_exam_confirm_delete.html",
                  {"exam": exam, "hand": exam.hand, "after": after,
                   "remaining": exam.hand.eps_exams.exclude(pk=exam.pk).first()})


@login_required
@require_POST
@permission_required("cohort.add_csameasurement", raise_exception=True)
def csa_add(request, pk):
    def save(hand, form):
        services.csa_measurement_create(hand=hand, measured_by=request.user, **form.cleaned_data)
        messages.success(request, "CSA measurement saved.")
    return _post_form(request, pk, "csa_form",
                      lambda hand: CsaMeasurementForm(request.POST, instance=CsaMeasurement(hand=hand)), save)


@login_required
@require_POST
@permission_required("cohort.change_hand", raise_exception=True)
def hand_exclusion(request, pk):
    def save(hand, form):
        services.hand_update(hand=hand, expected_version=form.cleaned_data["version"], **form.edited())
        messages.success(request, "Eligibility saved.")
    # A separate instance, so a refused edit doesn't show on the page as if saved.
    return _post_form(request, pk, "exclusion_form",
                      lambda hand: HandExclusionForm(request.POST, instance=Hand.objects.get(pk=hand.pk)), save)


@login_required
@require_POST
@permission_required(selectors.DIAGNOSIS_PERM, raise_exception=True)
def eps_preview(request, pk):
    """The stage, group and reason the typed EPS values would give (same function as on save)."""
    hand = get_object_or_404(Hand.objects.select_related("participant"), pk=pk)
    form = EpsExamForm(request.POST)
    form.is_valid()  # populates cleaned_data for the fields that parse
    data = form.cleaned_data
    findings = staging.EpsFindings(dml_ms=data.get("dml_ms"), sncv_m_s=data.get("sncv_m_s"),
                                   motor_response_absent=bool(data.get("motor_response_absent")),
                                   sensory_response_absent=bool(data.get("sensory_response_absent")))
    errors = [f"{form.fields[e.field].label}: {e.message}" if e.field else e.message
              for e in staging.eps_errors(findings)]
    errors += [f"{form.fields[name].label}: {' '.join(errs)}" for name, errs in form.errors.items()
               if name in ("dml_ms", "sncv_m_s")]
    assessment = None
    if not errors:
        assessment = staging.assess_hand(recruitment=hand.participant.recruitment,
                                         exclusion_reason=hand.exclusion_reason, eps=findings,
                                         thresholds=StudySettings.current().thresholds)
    return render(request, "cohort/_stage_preview.html", {"assessment": assessment, "errors": errors})


@login_required
@permission_required("cohort.view_hand", raise_exception=True)
def hand_history(request, pk):
    hand = get_object_or_404(Hand.objects.select_related("participant"), pk=pk)
    entries = audit.hand_audit_trail(hand, include_demographics=request.user.has_perm("cohort.view_demographics"),
                                     blinded_rater=None if selectors.sees_diagnosis(request.user) else request.user)
    return render(request, "cohort/hand_history.html", {"hand": hand, "entries": entries})


@login_required
@require_POST
def hands_restage(request):
    if not (request.user.has_perm("cohort.change_hand") or request.user.has_perm("protocol.change_studysettings")):
        raise PermissionDenied
    changed = services.hands_restage(hands=selectors.hand_list(needs_restaging=True))
    messages.success(request, f"Re-staged with the current thresholds: {changed} hand(s) changed.")
    return redirect("cohort:hand-list")


@login_required
@permission_required("cohort.add_participant", raise_exception=True)
def cohort_import(request):
    form = CsvImportForm(request.POST or None, request.FILES or None)
    result = None
    if request.method == "POST" and form.is_valid():
        result = csvio.import_cohort(form.cleaned_data["file"].read(), history_user=request.user)
        if result.ok:
            messages.success(request, f"Imported {result.participants} participant(s), {result.hands} hand(s), "
                                      f"{result.eps_exams} EPS exam(s), {result.csa_measurements} CSA value(s).")
            return redirect("cohort:hand-list")
    return render(request, "cohort/import.html", {"form": form, "result": result,
                                                   "columns": csvio.IMPORT_COLUMNS}, status=400 if result else 200)


@login_required
@permission_required("cohort.view_demographics", raise_exception=True)
def cohort_export(request):
    response = HttpResponse(csvio.export_cohort().export("csv"), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="cts-cohort-{timezone.localdate()}.csv"'
    return response


@login_required
@permission_required("protocol.view_studysettings", raise_exception=True)
def study_settings(request):
    can_edit = request.user.has_perm("protocol.change_studysettings")
    current = StudySettings.current()
    form = StudySettingsForm(request.POST or None, instance=current)
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied
        if form.is_valid():
            services.study_settings_update(**form.cleaned_data)
            outdated = selectors.hand_list(needs_restaging=True).count()
            messages.success(request, f"Settings saved. {outdated} hand(s) were staged with other thresholds "
                                      "and are flagged for re-staging." if outdated else "Settings saved.")
            return redirect(reverse("cohort:study-settings"))
    return render(request, "cohort/study_settings.html", {"form": form, "can_edit": can_edit,
                                                           "history": current.history.all()[:20]})
