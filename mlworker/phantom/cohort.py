"""Synthetic clinical values consistent with a phantom hand's group (used by the demo seeder).

Electrophysiology (EPS) follows the study's staging rules:
  stage 1: DML < 4.5 ms and SNCV >= 40 m/s            (normal; the control group)
  stage 2: DML >= 4.5 ms and SNCV >= 40 m/s
  stage 3: DML >= 4.5 ms and SNCV < 40 m/s
  stage 4: DML >= 4.5 ms and sensory response absent (SNCV None)
  stage 5: motor and sensory responses absent (DML and SNCV None)
CTS hands are drawn as stage 2-5 with more mild/moderate than severe cases (35/35/20/10 %).
Demographics mimic clinical series: CTS patients are older (~58 y) and mostly women (~75 %),
healthy volunteers younger (~42 y) and balanced.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlworker.phantom.clip import GROUPS, truncated_normal

DML_THRESHOLD_MS = 4.5
SNCV_THRESHOLD_M_S = 40.0
CTS_STAGE_PROBS = {2: 0.35, 3: 0.35, 4: 0.20, 5: 0.10}


def _check_group(group: str) -> None:
    if group not in GROUPS:
        raise ValueError(f"group must be 'control' or 'cts', got {group!r}")


def sample_eps(group: str, rng: np.random.Generator) -> dict[str, Any]:
    """Distal motor latency (ms), sensory conduction velocity (m/s) and absent-response flags for a hand."""
    _check_group(group)
    if group == "control":
        stage = 1
    else:
        stages = list(CTS_STAGE_PROBS)
        stage = int(rng.choice(stages, p=[CTS_STAGE_PROBS[s] for s in stages]))
    # Bounds keep values on the right side of the thresholds after rounding.
    dml: float | None
    sncv: float | None
    if stage == 1:
        dml = truncated_normal(rng, 3.6, 0.35, 2.8, 4.4)
        sncv = truncated_normal(rng, 52.0, 5.0, 42.0, 68.0)
    elif stage == 2:
        dml = truncated_normal(rng, 5.2, 0.6, 4.5, 7.5)
        sncv = truncated_normal(rng, 45.0, 4.0, 40.0, 58.0)
    elif stage == 3:
        dml = truncated_normal(rng, 6.0, 1.0, 4.5, 10.0)
        sncv = truncated_normal(rng, 33.0, 4.0, 20.0, 39.5)
    elif stage == 4:
        dml = truncated_normal(rng, 7.5, 1.5, 4.6, 14.0)
        sncv = None
    else:
        dml = sncv = None
    return {
        "dml_ms": None if dml is None else round(dml, 2),
        "sncv_m_s": None if sncv is None else round(sncv, 1),
        "motor_response_absent": stage == 5,
        "sensory_response_absent": stage >= 4,
    }


def sample_manual_csa(true_csa_mm2: float, rng: np.random.Generator) -> float:
    """A coordinator's manual tracing of the CSA: truth plus ~0.7 mm2 SD measurement noise, to 0.1 mm2."""
    if not true_csa_mm2 > 0:
        raise ValueError(f"true_csa_mm2 must be positive, got {true_csa_mm2}")
    return round(max(float(true_csa_mm2) + float(rng.normal(0.0, 0.7)), 0.1), 1)


def sample_participant(group: str, rng: np.random.Generator) -> dict[str, Any]:
    """Sex, age and recruitment route of a participant in the group."""
    _check_group(group)
    if group == "cts":
        female, age = rng.random() < 0.75, truncated_normal(rng, 58.0, 12.0, 25.0, 90.0)
        recruitment = "patient"
    else:
        female, age = rng.random() < 0.5, truncated_normal(rng, 42.0, 14.0, 20.0, 80.0)
        recruitment = "healthy_volunteer"
    return {"sex": "female" if female else "male", "age": int(round(age)), "recruitment": recruitment}
