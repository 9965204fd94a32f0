"""Plotly figures of the study as plain dicts: data in, `{"data": [...], "layout": {...}}` out.

No Django here. One palette and one layout for every figure of the app, so a colour means the same
thing on every page and in the report. The dicts are plotly's JSON schema; tests validate them with
`plotly.graph_objects.Figure`, the pages skip that validation (it costs milliseconds per trace).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from urllib.parse import quote

# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency, and in greyscale by order.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7",
}
# The order series take when nothing else decides (yellow last: it is faint on white).
SERIES = [OKABE_ITO[name] for name in ("blue", "vermillion", "bluish_green", "orange", "reddish_purple",
                                       "sky_blue", "black", "yellow")]
GROUP_COLOURS = {"control": OKABE_ITO["blue"], "cts": OKABE_ITO["vermillion"],
                 "needs_review": OKABE_ITO["orange"], "excluded": "#7f7f7f"}
GROUP_LABELS = {"control": "Control", "cts": "CTS", "needs_review": "Needs review", "excluded": "Excluded"}
STAGE_COLOURS = {"no_eps": OKABE_ITO["sky_blue"], "1": OKABE_ITO["blue"], "2": OKABE_ITO["orange"],
                 "3": OKABE_ITO["vermillion"], "4": OKABE_ITO["reddish_purple"], "5": OKABE_ITO["black"]}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


def layout(*, title: str, x_title: str = "", y_title: str = "", height: int = 380, **extra) -> dict:
    """The shared layout: a readable title, axis titles with their units, the palette as colourway."""
    base = {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 16}},
        "font": {"family": FONT, "size": 13, "color": "#1b1b1b"},
        "colorway": SERIES,
        "height": height,
        "margin": {"l": 64, "r": 24, "t": 56, "b": 56},
        "paper_bgcolor": "white", "plot_bgcolor": "white",
        "xaxis": {"title": {"text": x_title}, "showline": True, "linecolor": "#444", "gridcolor": "#e6e6e6",
                  "zeroline": False, "automargin": True},
        "yaxis": {"title": {"text": y_title}, "showline": True, "linecolor": "#444", "gridcolor": "#e6e6e6",
                  "zeroline": False, "automargin": True},
        # Right of the plot, where plotly makes room for it: it never covers the title or an axis title.
        "legend": {"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top"},
        "hoverlabel": {"font": {"family": FONT}},
    }
    for key, value in extra.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return base


# A page shows this many rows of a figure's data (a frame-level ROC has thousands); the CSV has them all.
TABLE_PREVIEW_ROWS = 200


@dataclass(frozen=True)
class DataTable:
    """The numbers behind a figure, shown beside it and downloadable as CSV."""

    columns: list[str]
    rows: list[list]

    @property
    def preview(self) -> list[list]:
        return self.rows[:TABLE_PREVIEW_ROWS]

    @property
    def truncated(self) -> bool:
        return len(self.rows) > TABLE_PREVIEW_ROWS

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return out.getvalue()

    def csv_data_url(self) -> str:
        return "data:text/csv;charset=utf-8," + quote(self.csv())


@dataclass(frozen=True)
class Panel:
    """One figure on a page: its plotly dict, its data table, and the words around it."""

    key: str  # unique on the page: the element ids derive from it
    title: str
    figure: dict
    table: DataTable
    caption: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def script_id(self) -> str:
        return f"figure-{self.key}"

    @property
    def csv_filename(self) -> str:
        return f"{self.key}.csv"


# --- participant flow ------------------------------------------------------------------------------------

def _box(x: float, y: float, text: str, *, width: float = 2.6, height: float = 1.0, colour: str = "#444",
         fill: str = "white") -> tuple[dict, dict]:
    shape = {"type": "rect", "xref": "x", "yref": "y", "x0": x - width / 2, "x1": x + width / 2,
             "y0": y - height / 2, "y1": y + height / 2, "line": {"color": colour, "width": 1.5}, "fillcolor": fill,
             "layer": "below"}
    label = {"x": x, "y": y, "xref": "x", "yref": "y", "text": text, "showarrow": False,
             "font": {"size": 12}, "align": "center"}
    return shape, label


def _arrow(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"x": x1, "y": y1, "ax": x0, "ay": y0, "xref": "x", "yref": "y", "axref": "x", "ayref": "y",
            "text": "", "showarrow": True, "arrowhead": 2, "arrowsize": 1, "arrowwidth": 1.5, "arrowcolor": "#444"}


def flow_figure(flow: dict) -> Panel:
    """A CONSORT-style diagram: screened → excluded with reasons → included per group → split → analysed.

    `flow` is `cohort_flow()` with "split" ({name, version, groups: {group: {train, test}}} or None) and
    "analysed" ({experiment, groups: {group: n}} or None) added.
    """
    shapes, notes, rows = [], [], []

    def add(x, y, text, **kw):
        shape, label = _box(x, y, text, **kw)
        shapes.append(shape)
        notes.append(label)

    screened = flow["screened"]
    excluded = flow["excluded"]
    included = flow["included"]
    by_group = included["by_group"]
    review = by_group.get("needs_review", 0)
    add(4, 11, f"<b>Screened</b><br>{screened['participants']} participants, {screened['hands']} hands", width=3.6)
    reasons = [f"{reason.replace('_', ' ')}: {n}" for reason, n in excluded["by_reason"].items() if n]
    add(9, 9.3, "<b>Excluded</b>: %d hands<br>%s" % (excluded["total"], "<br>".join(reasons) or "none"),
        width=3.4, height=1.4, colour="#7f7f7f")
    add(4, 7.6, f"<b>Included</b><br>{included['total']} hands", width=3.0)
    add(9, 6.2, f"<b>Needs review</b><br>{review} hands (not yet staged)", width=3.4,
        colour=GROUP_COLOURS["needs_review"])
    notes.append(_arrow(4, 10.5, 4, 8.1))
    notes.append(_arrow(4, 9.3, 7.3, 9.3))
    notes.append(_arrow(4, 6.2, 7.3, 6.2))
    shapes.append({"type": "line", "xref": "x", "yref": "y", "x0": 4, "x1": 4, "y0": 7.1, "y1": 5.8,
                   "line": {"color": "#444", "width": 1.5}})
    rows += [["screened", "participants", screened["participants"]], ["screened", "hands", screened["hands"]]]
    rows += [["excluded", reason, n] for reason, n in excluded["by_reason"].items()]
    rows += [["included", "hands", included["total"]], ["included", "needs_review", review]]
    split = flow.get("split")
    analysed = flow.get("analysed")
    stages = flow.get("stages", {})
    for x, group in ((1.8, "control"), (6.2, "cts")):
        colour = GROUP_COLOURS[group]
        detail = ""
        if group == "cts":
            detail = "<br>" + ", ".join(f"stage {s}: {stages.get(str(s), 0)}" for s in range(2, 6))
        add(x, 4.6, f"<b>{GROUP_LABELS[group]}</b><br>{by_group.get(group, 0)} hands{detail}", width=3.6,
            height=1.2, colour=colour)
        notes.append(_arrow(4, 5.8, x, 5.2))
        rows.append(["group", group, by_group.get(group, 0)])
        if split:
            counts = split["groups"].get(group, {"train": 0, "test": 0})
            add(x, 2.5, f"<b>{split['name']} v{split['version']}</b><br>train {counts['train']} · "
                        f"test {counts['test']}", width=3.6, colour=colour)
            rows += [["split train", group, counts["train"]], ["split test", group, counts["test"]]]
        else:
            add(x, 2.5, "No locked split yet", width=3.6, colour="#7f7f7f")
        notes.append(_arrow(x, 4.0, x, 3.0))
        if analysed:
            n = analysed["groups"].get(group, 0)
            add(x, 0.6, f"<b>Analysed</b><br>{n} test hands", width=3.6, colour=colour)
            rows.append(["analysed (test)", group, n])
        else:
            add(x, 0.6, "Not analysed yet", width=3.6, colour="#7f7f7f")
        notes.append(_arrow(x, 2.0, x, 1.1))
    if split:
        caption = (f"Split: the latest locked split ({split['name']} v{split['version']}); analysed: the test hands "
                   f"evaluated in {analysed['experiment']}." if analysed else
                   f"Split: the latest locked split ({split['name']} v{split['version']}).")
    else:
        caption = "No split is locked yet."
    axis = {"visible": False, "fixedrange": True}
    figure = {
        "data": [],
        "layout": layout(title="Participant flow (hands)", height=560, showlegend=False, shapes=shapes,
                         annotations=notes, xaxis={**axis, "range": [-0.3, 11]},
                         yaxis={**axis, "range": [-0.2, 11.7]}, margin={"l": 10, "r": 10, "t": 48, "b": 10}),
    }
    return Panel(key="flow", title="Participant flow", figure=figure,
                 table=DataTable(["step", "what", "hands (participants for 'screened participants')"], rows),
                 caption=caption)


# --- distributions ---------------------------------------------------------------------------------------

def box_strip_figure(*, key: str, title: str, groups: list[tuple[str, str, list[float]]], y_title: str,
                     x_title: str = "", threshold: float | None = None, threshold_label: str = "") -> Panel:
    """Box plots with every point shown beside them; `groups` is [(label, colour, values)].

    A horizontal line marks `threshold` (e.g. the training Youden cut-off of CSA) when given.
    """
    traces = [{"type": "box", "name": label, "y": list(values), "boxpoints": "all", "jitter": 0.35,
               "pointpos": 0, "marker": {"color": colour, "size": 6, "opacity": 0.75},
               "line": {"color": colour}, "fillcolor": "rgba(0,0,0,0)", "boxmean": True,
               "hovertemplate": f"{label}: %{{y:.2f}}<extra></extra>"}
              for label, colour, values in groups]
    extra: dict = {}
    notes: list[str] = []
    if threshold is not None:
        extra["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": threshold,
                            "y1": threshold, "line": {"color": OKABE_ITO["black"], "dash": "dash", "width": 1.5}}]
        extra["annotations"] = [{"xref": "paper", "x": 1, "xanchor": "right", "yref": "y", "y": threshold,
                                 "yanchor": "bottom", "showarrow": False, "text": threshold_label,
                                 "font": {"size": 12}}]
        notes.append(threshold_label)
    figure = {"data": traces, "layout": layout(title=title, x_title=x_title, y_title=y_title, showlegend=False,
                                               **extra)}
    rows = [[label, value] for label, _colour, values in groups for value in values]
    return Panel(key=key, title=title, figure=figure, table=DataTable(["group", y_title], rows), notes=notes)


def cumulative_figure(*, key: str, title: str, series: list[tuple[str, str, list[str]]], y_title: str,
                      x_title: str) -> Panel:
    """Step lines of a running count over dates; `series` is [(label, colour, sorted ISO dates)]."""
    traces, rows = [], []
    for label, colour, dates in series:
        days = sorted(set(dates))
        counts, running = [], 0
        for day in days:
            running += dates.count(day)
            counts.append(running)
            rows.append([label, day, dates.count(day), running])
        traces.append({"type": "scatter", "mode": "lines+markers", "line": {"shape": "hv", "color": colour},
                       "marker": {"color": colour}, "name": label, "x": days, "y": counts})
    figure = {"data": traces, "layout": layout(title=title, x_title=x_title, y_title=y_title,
                                               xaxis={"type": "date"})}
    return Panel(key=key, title=title, figure=figure,
                 table=DataTable(["series", "date", "new", "cumulative"], rows))


def grouped_bar_figure(*, key: str, title: str, categories: list[str], series: list[tuple[str, str, list]],
                       y_title: str, x_title: str, stacked: bool = False, horizontal: bool = False) -> Panel:
    """Bars per category, one colour per series; `series` is [(label, colour, values per category)]."""
    traces = []
    for label, colour, values in series:
        axes = {"y": categories, "x": list(values)} if horizontal else {"x": categories, "y": list(values)}
        traces.append({"type": "bar", "name": label, "marker": {"color": colour}, "orientation":
                       "h" if horizontal else "v", **axes})
    extra = {"barmode": "stack" if stacked else "group"}
    if horizontal:
        extra["yaxis"] = {"type": "category", "autorange": "reversed"}
    else:
        extra["xaxis"] = {"type": "category"}
    figure = {"data": traces, "layout": layout(title=title, x_title=y_title if horizontal else x_title,
                                               y_title=x_title if horizontal else y_title,
                                               height=max(320, 26 * len(categories) + 140) if horizontal else 380,
                                               **extra)}
    rows = [[category] + [values[i] for _label, _colour, values in series] for i, category in enumerate(categories)]
    return Panel(key=key, title=title, figure=figure,
                 table=DataTable([x_title] + [label for label, _colour, _values in series], rows))


def bland_altman_figure(ba: dict, *, unit: str = "mm²", key: str = "bland-altman") -> Panel:
    """Difference against mean of two raters, with the bias and the 95% limits of agreement."""
    raters = ba.get("raters") or ["rater A", "rater B"]
    means, diffs = list(ba["means"]), list(ba["differences"])
    trace = {"type": "scatter", "mode": "markers", "x": means, "y": diffs, "name": "hands",
             "marker": {"color": OKABE_ITO["blue"], "size": 8, "opacity": 0.8},
             "hovertemplate": f"mean %{{x:.2f}} {unit}<br>difference %{{y:+.2f}} {unit}<extra></extra>"}
    lines = [("loa_high", "+1.96 SD", OKABE_ITO["vermillion"], "dash"), ("bias", "bias", OKABE_ITO["black"], "solid"),
             ("loa_low", "−1.96 SD", OKABE_ITO["vermillion"], "dash")]
    shapes = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": 0, "y1": 0,
               "line": {"color": "#999", "width": 1, "dash": "dot"}}]
    annotations = []
    for line, label, colour, dash in lines:
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": ba[line], "y1": ba[line],
                       "line": {"color": colour, "dash": dash, "width": 1.5}})
        annotations.append({"xref": "paper", "x": 1, "xanchor": "right", "yref": "y", "y": ba[line],
                            "yanchor": "bottom", "showarrow": False, "text": f"{label} {ba[line]:+.2f}"})
    title = f"Bland–Altman: {raters[0]} − {raters[1]}"
    figure = {"data": [trace], "layout": layout(title=title, x_title=f"Mean CSA of the two raters ({unit})",
                                                y_title=f"Difference ({unit})", showlegend=False, shapes=shapes,
                                                annotations=annotations)}
    return Panel(key=key, title=title, figure=figure,
                 table=DataTable([f"mean ({unit})", f"difference {raters[0]} − {raters[1]} ({unit})"],
                                 [[m, d] for m, d in zip(means, diffs)]))


def interval_figure(*, key: str, title: str, rows: list[tuple[str, float, float, float]], x_title: str,
                    x_range: tuple[float, float] | None = None) -> Panel:
    """Point estimates with 95% CIs, one row each (a forest plot): [(label, estimate, low, high)]."""
    trace = {"type": "scatter", "mode": "markers", "name": "estimate", "y": [r[0] for r in rows],
             "x": [r[1] for r in rows], "marker": {"color": OKABE_ITO["blue"], "size": 10},
             "error_x": {"type": "data", "symmetric": False, "array": [r[3] - r[1] for r in rows],
                         "arrayminus": [r[1] - r[2] for r in rows], "color": OKABE_ITO["blue"], "thickness": 2}}
    xaxis = {"range": list(x_range)} if x_range else {}
    figure = {"data": [trace], "layout": layout(title=title, x_title=x_title, showlegend=False,
                                                height=max(220, 60 * len(rows) + 140), xaxis=xaxis,
                                                yaxis={"type": "category", "autorange": "reversed"})}
    return Panel(key=key, title=title, figure=figure,
                 table=DataTable(["what", "estimate", "95% CI low", "95% CI high"], [list(r) for r in rows]))

