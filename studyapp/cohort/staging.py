"""Severity staging of carpal tunnel syndrome from electrophysiology, and the hand's study group.

Plain functions with no Django imports: the web form's live preview, the services that store a
hand's derived stage, and the CSV importer all call `assess_hand`, so every path stages alike.

Protocol (Shinohara et al. 2022, after Padua's grading as used there):
    stage 1: DML < 4.5 ms and SNCV >= 40 m/s            (normal)
    stage 2: DML >= 4.5 ms and SNCV >= 40 m/s
    stage 3: DML >= 4.5 ms and SNCV < 40 m/s
    stage 4: DML >= 4.5 ms and sensory response absent
    stage 5: motor and sensory responses both absent
Any other combination is never forced into a stage: it is left for a person to review.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

# Physiological plausibility limits; values outside are typing errors, not findings.
DML_RANGE_MS = (0.0, 20.0)
SNCV_RANGE_M_S = (0.0, 100.0)
CSA_RANGE_MM2 = (0.0, 100.0)


class Group(StrEnum):
    CONTROL = "control"
    CTS = "cts"
    EXCLUDED = "excluded"
    NEEDS_REVIEW = "needs_review"


class Recruitment(StrEnum):
    HEALTHY_VOLUNTEER = "healthy_volunteer"
    PATIENT = "patient"


@dataclass(frozen=True)
class Thresholds:
    """The study's cut-offs; stored beside every derived stage so a later change is detectable."""

    dml_ms: float = 4.5
    sncv_m_s: float = 40.0


@dataclass(frozen=True)
class EpsFindings:
    dml_ms: float | None
    sncv_m_s: float | None
    motor_response_absent: bool = False
    sensory_response_absent: bool = False


@dataclass(frozen=True)
class Assessment:
    stage: int | None
    group: Group
    reason: str
    thresholds: Thresholds


class FindingError(ValueError):
    """An input value that is refused outright; `field` names the offending input (None: the exam as a whole)."""

    def __init__(self, field: str | None, message: str, code: str):
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code


def _check_range(field: str, value: float | None, bounds: tuple[float, float], unit: str) -> list[FindingError]:
    if value is None:
        return []
    low, high = bounds
    if not isinstance(value, (int, float)) or math.isnan(value) or not low <= value <= high:
        return [FindingError(field, f"must be between {low:g} and {high:g} {unit}; got {value}.", "out_of_range")]
    return []


def has_finding(findings: EpsFindings) -> bool:
    return (findings.dml_ms is not None or findings.sncv_m_s is not None
            or findings.motor_response_absent or findings.sensory_response_absent)


def eps_errors(findings: EpsFindings) -> list[FindingError]:
    """Every reason these findings cannot be recorded at all (empty when they can)."""
    errors = _value_errors(findings)
    if not has_finding(findings):
        errors.append(FindingError(
            None, "Enter the DML or the SNCV, or mark a response absent: an exam with only a date has no finding.",
            "no_finding"))
    return errors


def _value_errors(findings: EpsFindings) -> list[FindingError]:
    errors = _check_range("dml_ms", findings.dml_ms, DML_RANGE_MS, "ms")
    errors += _check_range("sncv_m_s", findings.sncv_m_s, SNCV_RANGE_M_S, "m/s")
    if findings.motor_response_absent and findings.dml_ms is not None:
        errors.append(FindingError(
            "dml_ms", "leave DML empty when the motor response is absent.", "value_with_absent_response"))
    if findings.sensory_response_absent and findings.sncv_m_s is not None:
        errors.append(FindingError(
            "sncv_m_s", "leave SNCV empty when the sensory response is absent.", "value_with_absent_response"))
    return errors


def csa_errors(csa_mm2: float | None) -> list[FindingError]:
    if csa_mm2 is None:
        return [FindingError("csa_mm2", "is required.", "required")]
    low, high = CSA_RANGE_MM2
    if math.isnan(csa_mm2) or not low < csa_mm2 <= high:
        return [FindingError("csa_mm2", f"must be above {low:g} and at most {high:g} mm²; got {csa_mm2}.",
                             "out_of_range")]
    return []


def stage_from_eps(findings: EpsFindings, thresholds: Thresholds) -> tuple[int | None, str]:
    """The stage (1-5) these findings define, or None with the reason a person must review them.

    Raises FindingError for values that cannot be recorded (see `eps_errors`); an exam without any finding,
    refused since but possibly stored before, is left for review rather than failing its hand's staging.
    """
    errors = _value_errors(findings)
    if errors:
        raise errors[0]
    if not has_finding(findings):
        return None, "The current EPS exam has no finding (only a date): correct or remove it."
    dml, sncv = findings.dml_ms, findings.sncv_m_s
    t_dml, t_sncv = thresholds.dml_ms, thresholds.sncv_m_s
    if findings.motor_response_absent:
        if findings.sensory_response_absent:
            return 5, "Motor and sensory responses both absent."
        return None, "Motor response absent while a sensory response is present: not a stage of the protocol."
    if dml is None:
        return None, "DML is missing and the motor response is not marked absent."
    prolonged = dml >= t_dml
    dml_text = f"DML {dml:g} ms {'≥' if prolonged else '<'} {t_dml:g} ms"
    if findings.sensory_response_absent:
        if prolonged:
            return 4, f"{dml_text} and sensory response absent."
        return None, f"{dml_text} (normal) with an absent sensory response: not a stage of the protocol."
    if sncv is None:
        return None, "SNCV is missing and the sensory response is not marked absent."
    slowed = sncv < t_sncv
    sncv_text = f"SNCV {sncv:g} m/s {'<' if slowed else '≥'} {t_sncv:g} m/s"
    if not prolonged and not slowed:
        return 1, f"{dml_text} and {sncv_text}."
    if prolonged and not slowed:
        return 2, f"{dml_text} and {sncv_text}."
    if prolonged and slowed:
        return 3, f"{dml_text} and {sncv_text}."
    return None, f"{dml_text} (normal) with {sncv_text} (slowed): not a stage of the protocol."


def assess_hand(
    *,
    recruitment: Recruitment | str,
    exclusion_reason: str,
    eps: EpsFindings | None,
    thresholds: Thresholds,
) -> Assessment:
    """Stage and study group of one hand; the group is never typed, always derived here."""
    recruitment = Recruitment(recruitment)
    stage, stage_reason = (None, "No EPS exam recorded.") if eps is None else stage_from_eps(eps, thresholds)

    def result(group: Group, reason: str) -> Assessment:
        return Assessment(stage=stage, group=group, reason=reason, thresholds=thresholds)

    if exclusion_reason:
        return result(Group.EXCLUDED, f"Excluded ({exclusion_reason.replace('_', ' ')}).")
    if eps is None:
        if recruitment is Recruitment.HEALTHY_VOLUNTEER:
            return result(Group.CONTROL, "Healthy volunteer without EPS.")
        return result(Group.NEEDS_REVIEW, "Patient without an EPS exam: enter EPS to stage this hand.")
    if stage is None:
        return result(Group.NEEDS_REVIEW, stage_reason)
    if stage == 1:
        return result(Group.CONTROL, f"Stage 1: {stage_reason}")
    if recruitment is Recruitment.HEALTHY_VOLUNTEER:
        return result(Group.NEEDS_REVIEW,
                      f"Conflicting evidence: healthy volunteer whose EPS gives stage {stage} ({stage_reason})")
    return result(Group.CTS, f"Stage {stage}: {stage_reason}")
