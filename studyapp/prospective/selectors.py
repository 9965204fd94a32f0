"""Reads of the prospective study: the blinded predictions a user may see, and the accrual dashboard.

Blinding: a prediction's probability and label are shown to nobody until the hand's EPS has been entered (its
first EpsExam history record exists). Then those who may read predictions (the PI, the coordinator) see them;
annotators never do (they lack the permission everywhere). Before that only its existence is known.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef

from studyapp.cohort.models import EpsExam, Hand

from .models import ProspectiveModel, ProspectiveOutcome, ProspectivePrediction

# Dashboard name → the key mlworker.stats.metrics gives it in a run's evaluation (sensitivity is "recall" there).
RETROSPECTIVE_METRICS = {"sensitivity": "recall", "specificity": "specificity", "accuracy": "accuracy"}


def eps_entered_subquery():
    return Exists(EpsExam.history.filter(hand_id=OuterRef("hand_id")))


def predictions_for(*, user, model: ProspectiveModel | None = None) -> list[dict]:
    """Every prospective prediction as the user may see it: sealed (no probability, no label) until its EPS."""
    if not user.has_perm("prospective.view_prospectiveprediction"):
        return []
    predictions = (ProspectivePrediction.objects.annotate(eps_entered=eps_entered_subquery())
                   .select_related("hand__participant", "model__run", "outcome"))
    if model is not None:
        predictions = predictions.filter(model=model)
    return [prediction_row(p, revealed=p.eps_entered) for p in predictions]


def prediction_row(prediction: ProspectivePrediction, *, revealed: bool) -> dict:
    outcome = getattr(prediction, "outcome", None) if revealed else None
    return {
        "id": prediction.pk, "model": prediction.model_id, "model_name": prediction.model.run.model_name,
        "hand": prediction.hand_id, "study_code": prediction.hand.participant.study_code,
        "side": prediction.hand.side, "created_at": prediction.created_at, "sealed": not revealed,
        "input_sha256": prediction.input_sha256, "weights_sha256": prediction.weights_sha256,
        "probability": prediction.probability if revealed else None,
        "predicted_label": prediction.predicted_label if revealed else None,
        "outcome": None if outcome is None else {
            "label": outcome.label, "group": outcome.group, "eps_exam": outcome.eps_exam_id,
            "scored_at": outcome.scored_at, "eps_first_entered_at": outcome.eps_first_entered_at,
            "included": outcome.included, "exclusion": outcome.exclusion},
    }


def models_frozen() -> list[ProspectiveModel]:
    """Every frozen model, newest first, with the one it retired."""
    return list(ProspectiveModel.objects.select_related("run__experiment", "frozen_by", "supersedes__run"))


def retrospective_results(model: ProspectiveModel) -> dict:
    """The run's hand-level test results (its evaluation at the same threshold), to set beside the accrual."""
    hand = (model.run.evaluation or {}).get("hand") or {}
    cis = hand.get("ci", {}).get("resampling_hands", {})
    metrics = hand.get("metrics", {})
    result = {name: {"estimate": metrics.get(key), "low": cis.get(key, {}).get("low"),
                     "high": cis.get(key, {}).get("high")} for name, key in RETROSPECTIVE_METRICS.items()}
    low, high = hand.get("auc_delong_ci") or (None, None)
    result["auc"] = {"estimate": metrics.get("auc"), "low": low, "high": high}
    result.update(n=hand.get("n"), n_pos=hand.get("n_positive"))
    return result


def exclusions(model: ProspectiveModel) -> dict:
    """Hands left out of the analysis, by reason, with the hands: the audit trail could not prove the order."""
    reasons: dict[str, dict] = {}
    for outcome in (ProspectiveOutcome.objects.filter(prediction__model=model).exclude(exclusion="")
                    .select_related("prediction__hand__participant")):
        entry = reasons.setdefault(outcome.exclusion, {"label": outcome.get_exclusion_display(), "hands": []})
        entry["hands"].append(str(outcome.prediction.hand))
    # Included hands with a clip whose first EPS came after the freeze but before any prediction of them (their
    # ROIs were confirmed too late, or the worker had not stored it yet).
    first_eps = EpsExam.history.filter(hand_id=OuterRef("pk")).order_by("history_date").values("history_date")[:1]
    late = (Hand.objects.filter(exclusion_reason="", clips__isnull=False).annotate(first_eps=first_eps)
            .filter(first_eps__gt=model.frozen_at).exclude(prospective_predictions__model=model)
            .select_related("participant").distinct())
    if late:
        reasons["eps_without_prediction"] = {"label": "EPS entered before the hand was predicted",
                                             "hands": [str(hand) for hand in late]}
    return reasons


def scored_cases(model: ProspectiveModel) -> tuple[list[int], list[float], list[float]]:
    """Labels, probabilities and scoring times (s since the freeze) of the included cases, in accrual order."""
    outcomes = (ProspectiveOutcome.objects.filter(prediction__model=model, exclusion="")
                .select_related("prediction").order_by("scored_at", "pk"))
    return ([o.label for o in outcomes], [o.prediction.probability for o in outcomes],
            [(o.scored_at - model.frozen_at).total_seconds() for o in outcomes])


def prospective_dashboard(*, model: ProspectiveModel, target_width: float, level: float = 0.95) -> dict:
    """The accrual so far beside the retrospective results, and the cases a CI of `target_width` needs."""
    predictions = ProspectivePrediction.objects.filter(model=model).annotate(eps_entered=eps_entered_subquery())
    y_true, y_prob, times = scored_cases(model)
    retrospective = retrospective_results(model)
    dashboard = {
        "model": model, "retrospective": retrospective, "target_width": target_width, "level": level,
        "n_predicted": predictions.count(), "n_sealed": predictions.filter(eps_entered=False).count(),
        "n_scored": ProspectiveOutcome.objects.filter(prediction__model=model).count(), "n_included": len(y_true),
        "exclusions": exclusions(model), "summary": None, "accrual": None, "needed": None,
        "n_relabelled": ProspectiveOutcome.objects.filter(prediction__model=model, eps_changes__isnull=False)
        .distinct().count(),
    }
    if y_true:
        # The statistics module (mlworker.stats.prospective) is pure numpy; imported here, when there is data.
        from mlworker.stats.prospective import accrual_curve, cases_needed, prospective_summary

        summary = prospective_summary(y_true, y_prob, threshold=model.threshold, level=level)
        # Planning values: the accrual's own once it has both classes, the retrospective test's before, else 0.5
        # (the proportion whose interval is widest, so the count is never too small).
        planning = {}
        for name in ("sensitivity", "specificity"):
            candidates = ((summary[name] or {}).get("estimate"), retrospective[name]["estimate"], 0.5)
            planning[name] = next(value for value in candidates if value is not None)
        prevalence = sum(y_true) / len(y_true)
        if prevalence in (0, 1) and retrospective["n"]:
            prevalence = retrospective["n_pos"] / retrospective["n"]
        needed = cases_needed(target_width=target_width, prevalence=prevalence, level=level, **planning)
        dashboard.update(summary=summary, accrual=accrual_curve(y_true, y_prob, times, threshold=model.threshold,
                                                                level=level),
                         needed={**needed, "still": max(0, needed["total"] - len(y_true)),
                                 "positives_still": max(0, needed["positives"] - sum(y_true)),
                                 "negatives_still": max(0, needed["negatives"] - (len(y_true) - sum(y_true)))})
    return dashboard
