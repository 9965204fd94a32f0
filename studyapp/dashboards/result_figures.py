"""Figures of an experiment's results as plain plotly dicts: training curves, ROC, confusion, hands, calibration.

No Django here; the palette, layout and Panel come from `figures`.
"""

from __future__ import annotations

from .figures import GROUP_COLOURS, GROUP_LABELS, OKABE_ITO, DataTable, Panel, layout

def line_figure(*, key: str, title: str, series: list[dict], x_title: str, y_title: str,
                y_range: tuple[float, float] | None = None) -> Panel:
    """Lines over a shared x; `series` is [{label, colour, x, y, dash?}] (dash tells train from validation)."""
    traces = [{"type": "scatter", "mode": "lines+markers", "name": s["label"], "x": list(s["x"]), "y": list(s["y"]),
               "line": {"color": s["colour"], "dash": s.get("dash", "solid")},
               "marker": {"color": s["colour"], "size": 5}}
              for s in series]
    yaxis = {"range": list(y_range)} if y_range else {}
    figure = {"data": traces, "layout": layout(title=title, x_title=x_title, y_title=y_title, yaxis=yaxis,
                                               xaxis={"dtick": 1} if len({x for s in series for x in s["x"]}) <= 20
                                               else {})}
    rows = [[s["label"], x, y] for s in series for x, y in zip(s["x"], s["y"])]
    return Panel(key=key, title=title, figure=figure, table=DataTable(["series", x_title, y_title], rows))


def roc_figure(*, key: str, title: str, curves: list[dict]) -> Panel:
    """ROC curves; each curve is {label, colour, fpr, tpr, auc, ci: (low, high) | None, point: (fpr, tpr) | None,
    point_label, dash?}. The legend carries the AUC with its CI; the marker is the operating point."""
    traces = [{"type": "scatter", "mode": "lines", "name": "chance", "x": [0, 1], "y": [0, 1],
               "line": {"color": "#999999", "dash": "dot", "width": 1}, "hoverinfo": "skip", "showlegend": False}]
    rows = []
    for curve in curves:
        ci = f" [{curve['ci'][0]:.3f}, {curve['ci'][1]:.3f}]" if curve.get("ci") else ""
        name = f"{curve['label']}: AUC {curve['auc']:.3f}{ci}"
        traces.append({"type": "scatter", "mode": "lines", "name": name, "x": list(curve["fpr"]),
                       "y": list(curve["tpr"]), "line": {"color": curve["colour"], "dash": curve.get("dash", "solid"),
                                                         "shape": "hv"},
                       "hovertemplate": "1 − specificity %{x:.3f}<br>sensitivity %{y:.3f}<extra>" + curve["label"]
                                        + "</extra>"})
        if curve.get("point"):
            traces.append({"type": "scatter", "mode": "markers", "name": f"{curve['label']}: {curve['point_label']}",
                           "x": [curve["point"][0]], "y": [curve["point"][1]], "showlegend": False,
                           "marker": {"color": curve["colour"], "size": 11, "symbol": "diamond",
                                      "line": {"color": "white", "width": 1}},
                           "hovertemplate": curve["point_label"] + "<br>1 − specificity %{x:.3f}<br>sensitivity "
                                                                   "%{y:.3f}<extra></extra>"})
        rows += [[curve["label"], f, t] for f, t in zip(curve["fpr"], curve["tpr"])]
    figure = {"data": traces, "layout": layout(
        title=title, x_title="1 − specificity (false-positive rate)", y_title="Sensitivity (true-positive rate)",
        height=460, xaxis={"range": [-0.01, 1.01], "constrain": "domain"},
        yaxis={"range": [-0.01, 1.01], "scaleanchor": "x", "scaleratio": 1},
        legend={"orientation": "v", "x": 0.98, "xanchor": "right", "y": 0.02, "yanchor": "bottom",
                "bgcolor": "rgba(255,255,255,0.85)"})}
    return Panel(key=key, title=title, figure=figure,
                 table=DataTable(["curve", "1 − specificity", "sensitivity"], rows))


CONFUSION_SCALE = [[0.0, "#ffffff"], [1.0, OKABE_ITO["blue"]]]


def confusion_figure(*, key: str, title: str, matrix: list[list[int]], unit: str) -> Panel:
    """A 2×2 confusion matrix [[tn, fp], [fn, tp]] as an annotated heatmap (truth in rows, prediction in columns)."""
    truth, predicted = ["control", "CTS"], ["predicted control", "predicted CTS"]
    total = sum(map(sum, matrix)) or 1
    peak = max(max(row) for row in matrix) or 1
    annotations = [{"x": predicted[j], "y": truth[i], "showarrow": False,
                    "text": f"<b>{matrix[i][j]}</b><br>{100 * matrix[i][j] / total:.0f}%",
                    "font": {"size": 15, "color": "white" if matrix[i][j] > peak / 2 else "#1b1b1b"}}
                   for i in range(2) for j in range(2)]
    figure = {"data": [{"type": "heatmap", "z": matrix, "x": predicted, "y": truth, "colorscale": CONFUSION_SCALE,
                        "zmin": 0, "showscale": False, "hovertemplate": "%{y}, %{x}: %{z}<extra></extra>"}],
              "layout": layout(title=title, x_title="Prediction", y_title=f"Truth ({unit})", height=320,
                               annotations=annotations, yaxis={"autorange": "reversed"},
                               margin={"l": 90, "r": 16, "t": 60, "b": 56})}
    return Panel(key=key, title=title, figure=figure,
                 table=DataTable(["truth", "predicted control", "predicted CTS"],
                                 [[truth[i], matrix[i][0], matrix[i][1]] for i in range(2)]))


def hand_probability_figure(*, key: str, title: str, hands: list[dict], threshold: float) -> Panel:
    """Each test hand's mean probability, its frames' spread (lowest to highest) as the bar, coloured by truth.

    `hands` is [{label, mean, low, high, truth: "control"|"cts", url, correct}]; a click opens `url`.
    """
    traces = []
    ordered = sorted(hands, key=lambda h: h["mean"])
    for group in ("control", "cts"):
        chosen = [h for h in ordered if h["truth"] == group]
        if not chosen:
            continue
        traces.append({
            "type": "scatter", "mode": "markers", "name": f"truth: {GROUP_LABELS[group]}",
            "x": [h["label"] for h in chosen], "y": [h["mean"] for h in chosen],
            "error_y": {"type": "data", "symmetric": False, "array": [h["high"] - h["mean"] for h in chosen],
                        "arrayminus": [h["mean"] - h["low"] for h in chosen], "color": GROUP_COLOURS[group],
                        "thickness": 1.2, "width": 0},
            "marker": {"color": GROUP_COLOURS[group], "size": 9,
                       "symbol": ["circle" if h["correct"] else "x" for h in chosen]},
            "customdata": [h["url"] for h in chosen],
            "hovertemplate": "%{x}<br>mean probability %{y:.3f}<extra>" + GROUP_LABELS[group] + "</extra>"})
    shapes = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": threshold, "y1": threshold,
               "line": {"color": OKABE_ITO["black"], "dash": "dash", "width": 1}}]
    figure = {"data": traces, "layout": layout(
        title=title, x_title="Test hand (sorted by probability; × = misclassified; click to open)",
        y_title="CTS probability (mean of frames)", yaxis={"range": [-0.02, 1.02]},
        xaxis={"type": "category", "categoryorder": "array", "categoryarray": [h["label"] for h in ordered],
               "showticklabels": len(ordered) <= 30}, shapes=shapes)}
    rows = [[h["label"], h["truth"], round(h["mean"], 4), round(h["low"], 4), round(h["high"], 4), h["correct"]]
            for h in ordered]
    return Panel(key=key, title=title, figure=figure, table=DataTable(
        ["hand", "truth", "mean probability", "lowest frame", "highest frame", "correct"], rows))


def proportion_figure(*, key: str, title: str, categories: list[str], series: list[dict], y_title: str) -> Panel:
    """Proportions with 95% CIs per category, one colour per series: [{label, colour, values: [(p, low, high, k, n)]}]
    (None where a category has no case)."""
    traces, rows = [], []
    for s in series:
        points = [(c, v) for c, v in zip(categories, s["values"]) if v is not None]
        traces.append({"type": "scatter", "mode": "markers", "name": s["label"], "x": [c for c, _ in points],
                       "y": [v[0] for _, v in points], "marker": {"color": s["colour"], "size": 10},
                       "error_y": {"type": "data", "symmetric": False, "array": [v[2] - v[0] for _, v in points],
                                   "arrayminus": [v[0] - v[1] for _, v in points], "color": s["colour"]},
                       "customdata": [f"{v[3]}/{v[4]}" for _, v in points],
                       "hovertemplate": "%{x}: %{y:.2f} (%{customdata})<extra>" + s["label"] + "</extra>"})
        rows += [[s["label"], c, v[3], v[4], round(v[0], 4), round(v[1], 4), round(v[2], 4)] for c, v in points]
    figure = {"data": traces, "layout": layout(title=title, x_title="Truth", y_title=y_title,
                                               yaxis={"range": [-0.02, 1.02]},
                                               xaxis={"type": "category", "categoryorder": "array",
                                                      "categoryarray": categories}, scattermode="group")}
    return Panel(key=key, title=title, figure=figure, table=DataTable(
        ["series", "category", "correct", "n", "proportion", "95% CI low", "95% CI high"], rows))


def reliability_figure(*, key: str, title: str, series: list[dict]) -> Panel:
    """Reliability diagram: observed share of CTS against mean predicted probability per bin.

    `series` is [{label, colour, bins}] with bins from `mlworker.stats.reliability_bins`.
    """
    traces = [{"type": "scatter", "mode": "lines", "name": "perfect calibration", "x": [0, 1], "y": [0, 1],
               "line": {"color": "#999999", "dash": "dot", "width": 1}, "hoverinfo": "skip"}]
    rows = []
    for s in series:
        traces.append({"type": "scatter", "mode": "lines+markers", "name": s["label"],
                       "x": [b["mean_predicted"] for b in s["bins"]], "y": [b["observed"] for b in s["bins"]],
                       "line": {"color": s["colour"]},
                       "marker": {"color": s["colour"], "size": [6 + min(b["n"], 400) ** 0.5 for b in s["bins"]]},
                       "customdata": [b["n"] for b in s["bins"]],
                       "hovertemplate": "predicted %{x:.2f}<br>observed %{y:.2f}<br>n = %{customdata}<extra>"
                                        + s["label"] + "</extra>"})
        rows += [[s["label"], b["low"], b["high"], b["n"], round(b["mean_predicted"], 4), round(b["observed"], 4)]
                 for b in s["bins"]]
    figure = {"data": traces, "layout": layout(title=title, x_title="Mean predicted CTS probability",
                                               y_title="Observed share of CTS", height=440,
                                               xaxis={"range": [0, 1]}, yaxis={"range": [0, 1]})}
    return Panel(key=key, title=title, figure=figure, table=DataTable(
        ["series", "bin low", "bin high", "n", "mean predicted", "observed"], rows))
