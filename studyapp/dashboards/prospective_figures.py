"""The prospective dashboard's figures as plain plotly dicts: estimates as hands are scored, and calibration.

No Django here. Input is mlworker.stats.prospective's output; figures.py gives the palette, layout and
Panel, so sensitivity keeps the CTS colour (it is measured on CTS hands) and specificity the control
colour on every page. Undefined numbers arrive as None and stay None: plotly draws a gap, JSON has no NaN.
"""

from __future__ import annotations

import math

from .figures import GROUP_COLOURS, OKABE_ITO, DataTable, Panel, layout

# (key in a curve row, label, colour): sensitivity is measured on CTS hands, specificity on controls.
ACCRUAL_SERIES = (("sensitivity", "Sensitivity", GROUP_COLOURS["cts"]),
                  ("specificity", "Specificity", GROUP_COLOURS["control"]),
                  ("auc", "AUC", OKABE_ITO["black"]))
RECALIBRATION_POINTS = 50


def _r(value, digits: int = 4):
    return None if value is None else round(float(value), digits)


def _part(row: dict, key: str, part: str):
    cell = row.get(key)
    return None if cell is None else _r(cell.get(part))


def _rgba(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def accrual_figure(curve: list[dict], *, level: float = 0.95) -> Panel:
    """Sensitivity, specificity and AUC against hands scored, each with its CI as a band.

    `curve` is accrual_curve(...). A band is two traces (the upper bound, then the lower one filled up to
    it) in the series' legend group, so clicking the estimate in the legend hides its band too.
    """
    n = [row["n"] for row in curve]
    traces = []
    for key, label, colour in ACCRUAL_SERIES:
        low = [_part(row, key, "low") for row in curve]
        high = [_part(row, key, "high") for row in curve]
        estimate = [_part(row, key, "estimate") for row in curve]
        band = {"type": "scatter", "mode": "lines", "x": n, "line": {"width": 0, "color": colour},
                "legendgroup": key, "showlegend": False, "hoverinfo": "skip"}
        traces.append({**band, "name": f"{label} upper bound", "y": high})
        traces.append({**band, "name": f"{label} lower bound", "y": low, "fill": "tonexty",
                       "fillcolor": _rgba(colour, 0.18)})
        traces.append({"type": "scatter", "mode": "lines+markers", "name": label, "x": n, "y": estimate,
                       "legendgroup": key, "line": {"color": colour, "width": 2},
                       "marker": {"color": colour, "size": 5},
                       "customdata": [[lo, hi] for lo, hi in zip(low, high)],
                       "hovertemplate": f"{label} %{{y:.3f}} (%{{customdata[0]:.3f}}–%{{customdata[1]:.3f}})"
                                        f" after %{{x}} hands<extra></extra>"})
    percent = f"{100 * level:g}%"
    title = "Estimates as hands are scored"
    figure = {"data": traces, "layout": layout(
        title=title, x_title="Hands scored (time order)", y_title=f"Estimate with {percent} CI",
        xaxis={"rangemode": "tozero"}, yaxis={"range": [0, 1.02]}, hovermode="x unified")}
    rows = [[row["n"], row.get("time"), row["n_pos"], row["n_neg"],
             *[_part(row, key, part) for key, _label, _colour in ACCRUAL_SERIES
               for part in ("estimate", "low", "high")]]
            for row in curve]
    columns = ["hands scored", "time", "CTS hands", "control hands"] + [
        f"{label} {part}" for _key, label, _colour in ACCRUAL_SERIES
        for part in ("estimate", f"{percent} CI low", f"{percent} CI high")]
    return Panel(key="prospective-accrual", title=title, figure=figure, table=DataTable(columns, rows),
                 caption=f"Cumulative estimates after each scored hand, in the order the hands were scored; bands: "
                         f"{percent} intervals (Wilson for sensitivity and specificity, DeLong for the AUC, which "
                         f"needs two hands of each class). A line starts once its first hand is scored.")


def _recalibration_trace(recalibration: dict | None) -> dict | None:
    """The fitted curve P(CTS) = expit(a + b logit(p)) over p in (0, 1), when the fit exists."""
    if not recalibration or not recalibration.get("slope") or not recalibration.get("intercept"):
        return None
    a, b = recalibration["intercept"]["estimate"], recalibration["slope"]["estimate"]
    xs = [(i + 0.5) / RECALIBRATION_POINTS for i in range(RECALIBRATION_POINTS)]
    ys = [1 / (1 + math.exp(-(a + b * math.log(x / (1 - x))))) for x in xs]
    return {"type": "scatter", "mode": "lines", "name": f"logistic recalibration (slope {b:.2f}, intercept {a:.2f})",
            "x": [_r(x) for x in xs], "y": [_r(y) for y in ys],
            "line": {"color": OKABE_ITO["orange"], "dash": "dash", "width": 1.5}, "hoverinfo": "skip"}


def calibration_figure(summary: dict) -> Panel:
    """Reliability diagram of the scored hands: observed share of CTS per bin with Wilson whiskers and counts.

    `summary` is prospective_summary(...): its calibration bins, Brier score and recalibration fit.
    """
    bins = summary["calibration_bins"]
    level = summary.get("level", 0.95)
    percent = f"{100 * level:g}%"
    colour = OKABE_ITO["blue"]
    traces = [{"type": "scatter", "mode": "lines", "name": "perfect calibration", "x": [0, 1], "y": [0, 1],
               "line": {"color": "#9a9a9a", "dash": "dot", "width": 1}, "hoverinfo": "skip"}]
    observed = [_r(b["observed"]) for b in bins]
    ci = [b.get("observed_ci") or [None, None] for b in bins]
    brier = summary.get("brier")
    traces.append({
        "type": "scatter", "mode": "markers+text", "name": "hands per bin" + (
            f" (Brier {brier:.3f})" if brier is not None else ""),
        "x": [_r(b["mean_predicted"]) for b in bins], "y": observed,
        "text": [f"n={b['n']}" for b in bins], "textposition": "top center", "textfont": {"size": 11},
        "marker": {"color": colour, "size": [min(22, 6 + 2 * b["n"] ** 0.5) for b in bins]},
        "error_y": {"type": "data", "symmetric": False, "color": colour, "thickness": 1.5,
                    "array": [None if hi is None else _r(hi - b["observed"]) for b, (_lo, hi) in zip(bins, ci)],
                    "arrayminus": [None if lo is None else _r(b["observed"] - lo) for b, (lo, _hi) in zip(bins, ci)]},
        "customdata": [[b["n"], b["low"], b["high"]] for b in bins],
        "hovertemplate": "bin %{customdata[1]:.1f}–%{customdata[2]:.1f}: %{customdata[0]} hands · predicted "
                         "%{x:.3f}, observed %{y:.3f}<extra></extra>"})
    fitted = _recalibration_trace(summary.get("recalibration"))
    if fitted:
        traces.append(fitted)
    notes = []
    recalibration = summary.get("recalibration") or {}
    if recalibration.get("undefined"):
        notes.append(f"No recalibration slope: {recalibration['undefined']}.")
    citl = summary.get("calibration_in_the_large") or {}
    if citl.get("estimate") is not None:
        interval = (f" ({percent} CI {citl['low']:+.3f} to {citl['high']:+.3f})"
                    if citl.get("low") is not None else "")
        notes.append(f"Mean predicted minus observed share of CTS: {citl['estimate']:+.3f}{interval}.")
    title = "Calibration of the scored hands"
    figure = {"data": traces, "layout": layout(
        title=title, x_title="Mean predicted CTS probability in the bin", y_title="Observed share of CTS hands",
        height=460, xaxis={"range": [0, 1]}, yaxis={"range": [-0.02, 1.08]},
        legend={"orientation": "v", "x": 0.02, "xanchor": "left", "y": 0.98, "yanchor": "top",
                "bgcolor": "rgba(255,255,255,0.85)"})}
    rows = [[b["low"], b["high"], b["n"], _r(b["mean_predicted"]), _r(b["observed"]), _r(lo), _r(hi)]
            for b, (lo, hi) in zip(bins, ci)]
    return Panel(key="prospective-calibration", title=title, figure=figure,
                 table=DataTable(["bin low", "bin high", "hands", "mean predicted", "observed",
                                  f"observed {percent} CI low", f"observed {percent} CI high"], rows),
                 caption=f"Ten bins of equal width; whiskers: Wilson {percent} intervals of the observed share; the "
                         "dashed curve is the logistic recalibration logit P(CTS) = a + b·logit(p) (slope 1 and "
                         "intercept 0 when calibrated).", notes=notes)
