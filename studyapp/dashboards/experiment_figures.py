"""The experiment dashboard's figures as plain plotly dicts: training curves, ROC, confusion, hands, stages,
calibration and AUC differences.

No Django here. Built on figures.py's palette, layout and Panel, so a model keeps its colour on every
figure of the page and of the report: the n-th model of the experiment takes the n-th series colour, and
truth is always blue (control) and vermillion (CTS).
"""

from __future__ import annotations

from .figures import GROUP_COLOURS, OKABE_ITO, SERIES, DataTable, Panel, layout

CSA_COLOUR = OKABE_ITO["black"]
TRUTH = {0: ("Control", GROUP_COLOURS["control"]), 1: ("CTS", GROUP_COLOURS["cts"])}
LEVEL_WORDS = {"frame": "frame level", "hand": "hand level (mean of a hand's frames)"}


def model_colour(index: int) -> str:
    return SERIES[index % len(SERIES)]


def _r(value, digits: int = 4):
    return None if value is None else round(float(value), digits)


def _ci_text(ci) -> str:
    return f"{ci[0]:.3f}–{ci[1]:.3f}" if ci and None not in ci else "n/a"


# --- training -------------------------------------------------------------------------------------------

LOSS_SERIES = (("train_loss", "solid", "training loss"), ("val_loss", "dash", "validation loss"))
METRIC_SERIES = (("val_auc", "solid", "validation AUC"), ("val_accuracy", "dot", "validation accuracy"))

def training_curves(runs: list[dict]) -> list[Panel]:
    """Loss, then validation AUC and accuracy, per epoch; `runs` is [{label, colour, history}].

    Training series are solid, validation dashed (loss); AUC solid, accuracy dotted (validation metrics).
    """
    loss, metrics, loss_rows, metric_rows = [], [], [], []
    for run in runs:
        history = run["history"] or []
        epochs = [h["epoch"] for h in history]
        # One legend entry per model (its first series); the line style's meaning is in the title.
        for traces, series in ((loss, LOSS_SERIES), (metrics, METRIC_SERIES)):
            for i, (key, dash, words) in enumerate(series):
                name = f"{run['label']} {words}" if i else run["label"]
                traces.append({"type": "scatter", "mode": "lines+markers", "x": epochs, "name": name,
                               "y": [h.get(key) for h in history],
                               "line": {"color": run["colour"], "dash": dash},
                               "marker": {"color": run["colour"], "size": 5}, "legendgroup": run["label"],
                               "showlegend": i == 0})
        for h in history:
            loss_rows.append([run["label"], h["epoch"], _r(h.get("train_loss")), _r(h.get("val_loss"))])
            metric_rows.append([run["label"], h["epoch"], _r(h.get("val_auc")), _r(h.get("val_accuracy"))])
    xaxis = {"dtick": 1, "rangemode": "tozero"}
    return [
        Panel(key="training-loss", title="Loss per epoch",
              figure={"data": loss, "layout": layout(title="Loss per epoch (solid: training, dashed: validation)",
                                                     x_title="Epoch", y_title="Cross-entropy loss", xaxis=xaxis)},
              table=DataTable(["model", "epoch", "training loss", "validation loss"], loss_rows),
              caption="Validation: training hands held out from fitting (20%); the epoch with the lowest "
                      "validation loss gives the kept weights."),
        Panel(key="training-metrics", title="Validation metrics per epoch",
              figure={"data": metrics, "layout": layout(
                  title="Validation AUC (solid) and accuracy (dotted) per epoch", x_title="Epoch",
                  y_title="AUC / accuracy (0–1)", xaxis=xaxis, yaxis={"range": [0, 1.02]})},
              table=DataTable(["model", "epoch", "validation AUC", "validation accuracy"], metric_rows)),
    ]


# --- ROC ------------------------------------------------------------------------------------------------

def _operating_point(metrics: dict) -> tuple[float, float] | None:
    """(FPR, TPR) of the confusion counts at the evaluation's threshold."""
    try:
        tn, fp, fn, tp = (metrics[k] for k in ("tn", "fp", "fn", "tp"))
    except (KeyError, TypeError):
        return None
    if not (tn + fp) or not (tp + fn):
        return None
    return fp / (tn + fp), tp / (tp + fn)


def roc_vertices(fpr: list[float], tpr: list[float]) -> list[int]:
    """Indices of the ROC points where the curve turns (and both ends): the same curve, drawn with fewer points.

    A frame-level ROC has a point per distinct score (thousands), most on straight vertical or horizontal
    stretches; a point collinear with the last kept one and the next adds nothing to the drawn line.
    """
    if len(fpr) <= 2:
        return list(range(len(fpr)))
    keep = [0]
    for i in range(1, len(fpr) - 1):
        ax, ay = fpr[i] - fpr[keep[-1]], tpr[i] - tpr[keep[-1]]
        bx, by = fpr[i + 1] - fpr[i], tpr[i + 1] - tpr[i]
        if abs(ax * by - ay * bx) > 1e-12:
            keep.append(i)
    keep.append(len(fpr) - 1)
    return keep


def roc_figure(*, level: str, models: list[dict], baseline: dict | None = None) -> Panel:
    """ROC curves of the models at one level, AUC and its CI in the legend, the operating point marked.

    `models`: [{label, colour, result}] where result is evaluation[level] (roc, metrics, auc_delong_ci,
    auc_ci_method, ci). `baseline` (hand level only): the manual-CSA result on the same test hands,
    comparison["csa_baseline"], with its Youden cut-off from training as operating point.
    """
    traces = [{"type": "scatter", "mode": "lines", "name": "chance", "x": [0, 1], "y": [0, 1],
               "line": {"color": "#9a9a9a", "dash": "dot", "width": 1}, "hoverinfo": "skip", "showlegend": False}]
    rows = []
    series = [(m["label"], m["colour"], m["result"], "solid") for m in models]
    if baseline and baseline.get("roc"):
        series.append(("Manual CSA", CSA_COLOUR, baseline, "dash"))
    for label, colour, result, dash in series:
        roc = result["roc"]
        metrics = result.get("metrics", {})
        ci, method = _auc_ci(result, level)
        name = f"{label}: AUC {metrics.get('auc', float('nan')):.3f} (95% CI {_ci_text(ci)}, {method})"
        vertices = roc_vertices(roc["fpr"], roc["tpr"])
        fpr, tpr = [roc["fpr"][i] for i in vertices], [roc["tpr"][i] for i in vertices]
        thresholds = [(roc.get("thresholds") or [None] * len(roc["fpr"]))[i] for i in vertices]
        traces.append({"type": "scatter", "mode": "lines", "name": name, "x": fpr,
                       "y": tpr, "line": {"color": colour, "dash": dash, "width": 2, "shape": "linear"},
                       "customdata": thresholds, "legendgroup": label,
                       "hovertemplate": f"{label}<br>FPR %{{x:.3f}}, TPR %{{y:.3f}}<br>"
                                        "positive when score ≥ %{customdata:.3f}<extra></extra>"})
        rows += [[label, _r(f), _r(t), _r(th, 6)] for f, t, th in zip(fpr, tpr, thresholds)]
        point = _operating_point(metrics)
        if point:
            cut = metrics.get("threshold")
            unit = " mm²" if label == "Manual CSA" else ""
            traces.append({"type": "scatter", "mode": "markers", "name": f"{label} at threshold {cut:.3g}{unit}",
                           "x": [point[0]], "y": [point[1]], "legendgroup": label, "showlegend": False,
                           "marker": {"color": colour, "size": 12, "symbol": "diamond",
                                      "line": {"color": "white", "width": 1.5}},
                           "hovertemplate": f"{label} at threshold {cut:.3g}{unit}<br>1 − specificity %{{x:.3f}}, "
                                            "sensitivity %{y:.3f}<extra></extra>"})
    title = f"ROC curves, {LEVEL_WORDS[level]}"
    figure = {"data": traces, "layout": layout(
        title=title, x_title="1 − specificity (false-positive rate)", y_title="Sensitivity (true-positive rate)",
        height=560 + 22 * len(series), xaxis={"range": [-0.01, 1.01], "constrain": "domain"},
        yaxis={"range": [-0.01, 1.01], "scaleanchor": "x", "scaleratio": 1},
        # Under the plot: the legend's long AUC texts never cover a curve.
        legend={"orientation": "v", "x": 0, "xanchor": "left", "y": -0.16, "yanchor": "top", "font": {"size": 12}},
        margin={"b": 40 + 24 * len(series)})}
    caption = ("Diamonds: the operating point at the evaluation threshold (models) and at the manual-CSA cut-off "
               "chosen by Youden's J on the training hands.") if level == "hand" else \
        "Diamonds: the operating point at the evaluation threshold."
    caption += (" Curves are drawn through their corners (points on a straight stretch add nothing to the line); "
                "every threshold's point is in the API's results and the report's bundle.")
    return Panel(key=f"roc-{level}", title=title, figure=figure,
                 table=DataTable(["series", "false-positive rate", "true-positive rate", "threshold"], rows),
                 caption=caption)


def _auc_ci(result: dict, level: str) -> tuple[list | None, str]:
    """The AUC interval the legend states: frames, clustered by hand (Obuchowski); hands, bootstrap over hands."""
    if level == "frame":
        return result.get("auc_delong_ci"), result.get("auc_ci_method") or "DeLong"
    boot = (result.get("ci") or {}).get("resampling_hands", {}).get("auc")
    if boot and boot.get("low") is not None:
        return [boot["low"], boot["high"]], "bootstrap over hands"
    return result.get("auc_delong_ci"), result.get("auc_ci_method") or "DeLong"


# --- confusion ------------------------------------------------------------------------------------------

CONFUSION_AXES = (["control", "CTS"], ["control", "CTS"])  # (prediction, truth)


def _heatmap(matrix: list[list[int]], *, axis_suffix: str, colour: str) -> dict:
    totals = [sum(row) or 1 for row in matrix]
    text = [[f"<b>{n}</b><br>({n / totals[i]:.0%})" for n in row] for i, row in enumerate(matrix)]
    return {"type": "heatmap", "z": [list(row) for row in matrix], "x": CONFUSION_AXES[0], "y": CONFUSION_AXES[1],
            "text": text, "texttemplate": "%{text}", "textfont": {"size": 14}, "showscale": False,
            "colorscale": [[0, "#ffffff"], [1, colour]], "xaxis": f"x{axis_suffix}", "yaxis": f"y{axis_suffix}",
            "hovertemplate": "truth %{y}, predicted %{x}: %{z}<extra></extra>"}


def confusion_figure(*, key: str, label: str, frame: list[list[int]] | None, hand: list[list[int]] | None,
                     threshold: float) -> Panel:
    """The frame and hand confusion matrices of one model side by side, counts and row shares written in."""
    traces, rows, annotations = [], [], []
    extra: dict = {}
    present = [(lvl, m) for lvl, m in (("frame", frame), ("hand", hand)) if m]
    for i, (level, matrix) in enumerate(present):
        suffix = "" if i == 0 else str(i + 1)
        traces.append(_heatmap(matrix, axis_suffix=suffix, colour=OKABE_ITO["blue"]))
        lo, hi = (0.0, 0.44) if i == 0 else (0.56, 1.0)
        if len(present) == 1:
            lo, hi = 0.0, 1.0
        extra[f"xaxis{suffix}"] = {"domain": [lo, hi], "anchor": f"y{suffix}", "showline": False,
                                   "title": {"text": "Prediction"}, "side": "bottom"}
        extra[f"yaxis{suffix}"] = {"anchor": f"x{suffix}", "autorange": "reversed", "showline": False,
                                   "title": {"text": "Truth" if i == 0 else ""}}
        annotations.append({"xref": "paper", "yref": "paper", "x": (lo + hi) / 2, "y": 1.02, "xanchor": "center",
                            "yanchor": "bottom", "showarrow": False, "font": {"size": 13},
                            "text": "<b>Frames</b>" if level == "frame" else "<b>Hands</b>"})
        for t, truth in enumerate(CONFUSION_AXES[1]):
            for p, predicted in enumerate(CONFUSION_AXES[0]):
                rows.append([level, truth, predicted, matrix[t][p]])
    title = f"{label}: confusion at threshold {threshold:g}"
    figure = {"data": traces, "layout": layout(title=title, height=360, annotations=annotations,
                                               margin={"t": 90}, **extra)}
    return Panel(key=key, title=title, figure=figure, table=DataTable(["level", "truth", "prediction", "count"], rows),
                 caption="Counts, with the share of the truth's row in brackets; rows: truth, columns: prediction.")


# --- hands ----------------------------------------------------------------------------------------------

def per_hand_figure(*, key: str, label: str, hands: list[dict], threshold: float) -> Panel:
    """Each test hand's mean probability (sorted) with its frames' range and quartiles, coloured by truth.

    `hands`: the summary's per-hand rows with "name" (code and side) and "url" (its frames) added; a click
    on a hand opens its url (static/js/experiment.js reads layout.meta.click_url).
    """
    ordered = sorted(hands, key=lambda h: (h["mean"], h["hand"]))
    names = [h["name"] for h in ordered]
    traces = []
    for truth in (0, 1):
        group = [h for h in ordered if h["label"] == truth]
        if not group:
            continue
        word, colour = TRUTH[truth]
        traces.append({
            "type": "scatter", "mode": "markers", "name": f"{word} (truth)", "x": [h["name"] for h in group],
            "y": [h["mean"] for h in group],
            "error_y": {"type": "data", "symmetric": False, "array": [h["max"] - h["mean"] for h in group],
                        "arrayminus": [h["mean"] - h["min"] for h in group], "color": colour, "thickness": 1,
                        "width": 2},
            "marker": {"color": colour, "size": 9, "symbol": "circle" if truth else "square",
                       "line": {"color": "white", "width": 1}},
            "customdata": [[h["url"], h["n_frames"], h["q1"], h["q3"], h["stage"] if h["stage"] is not None else "—"]
                           for h in group],
            "hovertemplate": "%{x}<br>mean %{y:.3f}; frames' quartiles %{customdata[2]:.3f}–%{customdata[3]:.3f}"
                             "<br>%{customdata[1]} frames · stage %{customdata[4]}<br>click: open its frames"
                             "<extra></extra>"})
    shapes = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": threshold, "y1": threshold,
               "line": {"color": OKABE_ITO["black"], "dash": "dash", "width": 1}}]
    title = f"Per-hand probability: {label}"
    figure = {"data": traces, "layout": layout(
        title=title, x_title="Test hand (sorted by mean probability)", y_title="CTS probability (0–1)",
        height=420, shapes=shapes, xaxis={"type": "category", "categoryorder": "array", "categoryarray": names,
                                          "tickangle": -60, "tickfont": {"size": 10}},
        yaxis={"range": [-0.03, 1.03]}, meta={"click_url": True})}
    rows = [[h["name"], TRUTH[h["label"]][0], h["stage"], h["n_frames"], _r(h["mean"]), _r(h["sd"]), _r(h["min"]),
             _r(h["max"]), "yes" if (h["mean"] >= threshold) == bool(h["label"]) else "no"] for h in ordered]
    return Panel(key=key, title=title, figure=figure,
                 table=DataTable(["hand", "truth", "EPS stage", "frames", "mean", "SD", "min", "max",
                                  f"called right at {threshold:g}"], rows),
                 caption=f"A dot is a hand's mean frame probability, its whisker the range of its frames; the dashed "
                         f"line is the threshold ({threshold:g}). Click a hand to open its frames.")


# --- errors by stage ------------------------------------------------------------------------------------

def stage_label(stage: str) -> str:
    return {"control": "controls (specificity)", "unstaged": "CTS, unstaged"}.get(stage, f"stage {stage}")


def stage_figure(models: list[dict]) -> Panel:
    """Hand-level sensitivity per EPS stage and specificity of controls, per model, with Wilson 95% CIs.

    `models`: [{label, colour, by_stage}] with the summary's by_stage rows.
    """
    traces, rows = [], []
    for model in models:
        stages = [row for row in model["by_stage"]]
        values = [row["value"] for row in stages]
        traces.append({
            "type": "bar", "name": model["label"], "x": [stage_label(r["stage"]) for r in stages], "y": values,
            "marker": {"color": model["colour"]},
            "error_y": {"type": "data", "symmetric": False,
                        "array": [(r["ci"][1] - r["value"]) if r["ci"] and r["value"] is not None else None
                                  for r in stages],
                        "arrayminus": [(r["value"] - r["ci"][0]) if r["ci"] and r["value"] is not None else None
                                       for r in stages], "color": "#333", "thickness": 1.2},
            "customdata": [[r["correct"], r["n"]] for r in stages],
            "hovertemplate": f"{model['label']}<br>%{{x}}: %{{y:.2f}} (%{{customdata[0]}} of %{{customdata[1]}} "
                             "hands)<extra></extra>"})
        rows += [[model["label"], stage_label(r["stage"]), r["measure"], r["correct"], r["n"], _r(r["value"]),
                  _r(r["ci"][0]) if r["ci"] else None, _r(r["ci"][1]) if r["ci"] else None] for r in stages]
    title = "Errors by EPS stage (hand level)"
    figure = {"data": traces, "layout": layout(title=title, x_title="EPS stage of the test hand",
                                               y_title="Proportion correct (0–1)", barmode="group",
                                               yaxis={"range": [0, 1.05]}, xaxis={"type": "category"})}
    return Panel(key="by-stage", title=title, figure=figure,
                 table=DataTable(["model", "hands", "measure", "correct", "n", "proportion", "95% CI low",
                                  "95% CI high"], rows),
                 caption="Sensitivity of the CTS hands of each stage and specificity of the controls, at the "
                         "evaluation threshold; whiskers: Wilson 95% intervals over hands. Stages as the cohort "
                         "recorded them when the run was evaluated.")


# --- calibration ----------------------------------------------------------------------------------------

def calibration_figure(*, level: str, models: list[dict]) -> Panel:
    """Reliability diagram: observed share of CTS against mean predicted probability per bin, Brier in legend.

    `models`: [{label, colour, calibration}] with the summary's calibration[level].
    """
    traces = [{"type": "scatter", "mode": "lines", "name": "perfect calibration", "x": [0, 1], "y": [0, 1],
               "line": {"color": "#9a9a9a", "dash": "dot", "width": 1}, "hoverinfo": "skip"}]
    rows = []
    for model in models:
        cal = model["calibration"]
        bins = cal["bins"]
        traces.append({
            "type": "scatter", "mode": "lines+markers", "name": f"{model['label']} (Brier {cal['brier']:.3f})",
            "x": [b["mean_predicted"] for b in bins], "y": [b["observed"] for b in bins],
            "line": {"color": model["colour"]},
            "marker": {"color": model["colour"], "size": [min(22, 6 + 2 * b["n"] ** 0.5) for b in bins]},
            "customdata": [[b["n"], b["low"], b["high"]] for b in bins],
            "hovertemplate": f"{model['label']}<br>bin %{{customdata[1]:.1f}}–%{{customdata[2]:.1f}}: "
                             "%{customdata[0]} · predicted %{x:.3f}, observed %{y:.3f}<extra></extra>"})
        rows += [[model["label"], b["low"], b["high"], b["n"], _r(b["mean_predicted"]), _r(b["observed"]),
                  _r(b["observed_ci"][0]) if b.get("observed_ci") else None,
                  _r(b["observed_ci"][1]) if b.get("observed_ci") else None, _r(cal["brier"])] for b in bins]
    unit = "frames" if level == "frame" else "hands"
    title = f"Calibration, {LEVEL_WORDS[level]}"
    figure = {"data": traces, "layout": layout(
        title=title, x_title="Mean predicted CTS probability in the bin", y_title=f"Observed share of CTS {unit}",
        height=460, xaxis={"range": [0, 1]}, yaxis={"range": [-0.02, 1.02]},
        legend={"orientation": "v", "x": 0.02, "xanchor": "left", "y": 0.98, "yanchor": "top",
                "bgcolor": "rgba(255,255,255,0.85)"})}
    return Panel(key=f"calibration-{level}", title=title, figure=figure,
                 table=DataTable(["model", "bin low", "bin high", unit, "mean predicted", "observed",
                                  "observed 95% CI low", "observed 95% CI high", "Brier score"], rows),
                 caption=f"Ten bins of equal width; a marker's size grows with its {unit}. Brier score: mean squared "
                         f"difference between probability and truth (0 is perfect).")


# --- comparisons ----------------------------------------------------------------------------------------

def auc_difference_figure(rows: list[tuple[str, float, float, float]]) -> Panel:
    """Forest plot of AUC differences with their 95% CIs: [(what, difference, low, high)]; 0 marked."""
    trace = {"type": "scatter", "mode": "markers", "name": "difference", "y": [r[0] for r in rows],
             "x": [r[1] for r in rows], "marker": {"color": OKABE_ITO["blue"], "size": 10},
             "error_x": {"type": "data", "symmetric": False, "array": [r[3] - r[1] for r in rows],
                         "arrayminus": [r[1] - r[2] for r in rows], "color": OKABE_ITO["blue"], "thickness": 2}}
    zero = [{"type": "line", "xref": "x", "x0": 0, "x1": 0, "yref": "paper", "y0": 0, "y1": 1,
             "line": {"color": "#444", "dash": "dot", "width": 1}}]
    title = "AUC differences with 95% CIs"
    figure = {"data": [trace], "layout": layout(title=title, x_title="AUC difference (first − second)",
                                                showlegend=False, height=max(240, 46 * len(rows) + 150),
                                                shapes=zero, yaxis={"type": "category", "autorange": "reversed"},
                                                margin={"l": 24})}
    return Panel(key="auc-differences", title=title, figure=figure,
                 table=DataTable(["comparison", "AUC difference", "95% CI low", "95% CI high"],
                                 [[r[0], _r(r[1]), _r(r[2]), _r(r[3])] for r in rows]),
                 caption="Frames: Obuchowski's clustered test (hands as clusters); hands: DeLong. An interval that "
                         "excludes 0 marks a difference at the 5% level.")


# --- explanations ---------------------------------------------------------------------------------------

def attribution_figure(summaries: list[dict], labels: dict, methods: dict | None = None) -> Panel:
    """Share of the positive attribution in the nerve and in the perineural ring per model and method, with
    95% CIs over hands, beside the share of the crop each region covers (what a map blind to the nerve gives).

    `summaries`: studyapp.explanations.selectors.summaries(..., by=("model", "method")); `labels` and `methods`
    name the models and the methods (internal names where missing).
    """
    methods = methods or {}
    names = [f"{labels.get(s['model'], s['model'])} · {methods.get(s['method'], s['method'])}" for s in summaries]
    traces, rows = [], []
    regions = (("nerve", OKABE_ITO["vermillion"], "circle"), ("ring", OKABE_ITO["blue"], "diamond"))
    for region, colour, symbol in regions:
        stats = [s.get(region) or {} for s in summaries]
        traces.append({
            "type": "scatter", "mode": "markers", "name": f"attribution in the {region}", "y": names,
            "x": [st.get("estimate") for st in stats], "marker": {"color": colour, "size": 10, "symbol": symbol},
            "error_x": {"type": "data", "symmetric": False, "color": colour,
                        "array": [(st["high"] - st["estimate"]) if st.get("high") is not None else None
                                  for st in stats],
                        "arrayminus": [(st["estimate"] - st["low"]) if st.get("low") is not None else None
                                       for st in stats]}})
        areas = [(s.get(f"{region}_area") or {}).get("estimate") for s in summaries]
        traces.append({"type": "scatter", "mode": "markers", "name": f"{region} area (chance)", "y": names,
                       "x": areas, "marker": {"color": colour, "size": 10, "symbol": "line-ns-open",
                                              "line": {"width": 2, "color": colour}}})
    for name, s in zip(names, summaries):
        row = [name, s.get("n_frames"), s.get("n_hands")]
        for region in ("nerve", "ring"):
            st = s.get(region) or {}
            row += [_r(st.get("estimate")), _r(st.get("low")), _r(st.get("high")),
                    _r((s.get(f"{region}_area") or {}).get("estimate"))]
        rows.append(row)
    title = "Attribution in the nerve and the perineural ring"
    figure = {"data": traces, "layout": layout(title=title, x_title="Share (0–1)", xaxis={"range": [0, 1]},
                                               height=max(260, 60 * len(names) + 160),
                                               yaxis={"type": "category", "autorange": "reversed"})}
    return Panel(key="attribution", title=title, figure=figure,
                 table=DataTable(["model · method", "frames", "hands", "nerve share", "nerve 95% CI low",
                                  "nerve 95% CI high", "nerve area", "ring share", "ring 95% CI low",
                                  "ring 95% CI high", "ring area"], rows),
                 caption="Dots: mean share of each map's positive attribution in the region, 95% CI by bootstrap over "
                         "hands; bars: the share of the crop the region covers, what a map blind to the nerve would "
                         "give. The explanations' gallery shows the heatmaps themselves.")
