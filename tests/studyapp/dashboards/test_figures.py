"""Figure builders as pure functions on fixed data: valid plotly, the inputs drawn as given, one palette."""

import csv
import io
import json
import re
from urllib.parse import unquote

import plotly.graph_objects as go
import pytest

from studyapp.cohort.selectors import cohort_flow
from studyapp.dashboards import figures
from tests.factories import make_hand

FLOW = {
    "screened": {"participants": 9, "hands": 12},
    "excluded": {"total": 2, "by_reason": {"prior_wrist_surgery": 1, "prior_carpal_tunnel_release": 0, "other": 1}},
    "included": {"total": 10, "by_group": {"control": 4, "cts": 5, "needs_review": 1}},
    "stages": {"1": 4, "2": 2, "3": 1, "4": 1, "5": 1},
    "unstaged_included": 1,
    "split": {"name": "main", "version": 2, "groups": {"control": {"train": 3, "test": 1},
                                                       "cts": {"train": 3, "test": 2}}},
    "analysed": {"experiment": "first", "groups": {"control": 1, "cts": 2}},
}
BA = {"raters": ["ann", "bob"], "bias": -0.5, "sd": 1.0, "loa_low": -2.46, "loa_high": 1.46,
      "means": [8.0, 9.5, 11.0], "differences": [-1.0, 0.5, -1.0]}


def _colours(value) -> set[str]:
    return {c.upper() for c in re.findall(r"#[0-9A-Fa-f]{6}", json.dumps(value))}


def _panels():
    return [
        figures.flow_figure(FLOW),
        figures.box_strip_figure(key="b", title="t", groups=[("Control", figures.GROUP_COLOURS["control"], [1.0, 2.0])],
                                 y_title="CSA (mm²)", threshold=1.5, threshold_label="cut"),
        figures.cumulative_figure(key="c", title="t", series=[("CTS", figures.GROUP_COLOURS["cts"], ["2026-01-01"])],
                                  y_title="Hands", x_title="Date"),
        figures.grouped_bar_figure(key="g", title="t", categories=["a", "b"], x_title="x", y_title="y",
                                   series=[("s", figures.SERIES[0], [1, 2])], horizontal=True, stacked=True),
        figures.bland_altman_figure(BA),
        figures.interval_figure(key="i", title="t", rows=[("ICC", 0.8, 0.6, 0.9)], x_title="ICC"),
    ]


@pytest.mark.parametrize("panel", _panels(), ids=lambda p: p.key)
def test_every_figure_is_valid_plotly_in_the_palette_with_titled_axes(panel):
    go.Figure(panel.figure)  # raises on anything plotly.js would not understand
    assert _colours(panel.figure["data"]) <= {c.upper() for c in figures.OKABE_ITO.values()} | {"#7F7F7F"}
    assert panel.figure["layout"]["title"]["text"]
    if panel.figure["data"]:
        assert panel.figure["layout"]["xaxis"]["title"]["text"] or panel.figure["layout"]["yaxis"]["title"]["text"]


def test_the_csv_download_holds_the_data_table():
    panel = _panels()[1]
    text = unquote(panel.table.csv_data_url().split(",", 1)[1])
    assert list(csv.reader(io.StringIO(text))) == [["group", "CSA (mm²)"], ["Control", "1.0"], ["Control", "2.0"]]


def test_the_box_plot_draws_the_inputs_and_the_threshold():
    values = {"Control": [8.1, 9.4, 7.7], "CTS": [12.0, 15.5]}
    panel = figures.box_strip_figure(key="csa", title="CSA", y_title="CSA (mm²)", threshold=10.25,
                                     threshold_label="training Youden cut-off 10.2 mm²",
                                     groups=[(k, figures.SERIES[i], v) for i, (k, v) in enumerate(values.items())])
    assert {trace["name"]: trace["y"] for trace in panel.figure["data"]} == values
    assert all(trace["boxpoints"] == "all" for trace in panel.figure["data"])  # the strip: every hand shown
    (line,) = panel.figure["layout"]["shapes"]
    assert line["y0"] == line["y1"] == 10.25
    assert panel.table.rows == [["Control", 8.1], ["Control", 9.4], ["Control", 7.7], ["CTS", 12.0], ["CTS", 15.5]]


def test_the_bland_altman_figure_draws_the_pairs_and_its_lines():
    panel = figures.bland_altman_figure(BA)
    (trace,) = panel.figure["data"]
    assert trace["x"] == BA["means"] and trace["y"] == BA["differences"]
    levels = sorted(shape["y0"] for shape in panel.figure["layout"]["shapes"])
    assert levels == [-2.46, -0.5, 0, 1.46]


def test_the_cumulative_figure_counts_up():
    panel = figures.cumulative_figure(key="e", title="t", y_title="Hands", x_title="Date",
                                      series=[("CTS", "#D55E00", ["2026-01-01", "2026-01-01", "2026-01-03"])])
    (trace,) = panel.figure["data"]
    assert trace["x"] == ["2026-01-01", "2026-01-03"] and trace["y"] == [2, 3]


@pytest.mark.django_db
def test_the_flow_diagram_shows_the_selectors_counts():
    for eps in ({"dml_ms": 3.5, "sncv_m_s": 50.0}, {"dml_ms": 5.0, "sncv_m_s": 45.0}, {"dml_ms": 5.0, "sncv_m_s": 35.0},
                {"dml_ms": 3.6, "sncv_m_s": 35.0}):  # control, CTS 2, CTS 3, not a stage (to review)
        make_hand(eps=eps)
    make_hand(exclusion_reason="prior_wrist_surgery")
    make_hand(recruitment="healthy_volunteer")
    flow = cohort_flow()
    panel = figures.flow_figure({**flow, "split": None, "analysed": None})
    counts = {(step, what): n for step, what, n in panel.table.rows}
    assert counts[("screened", "hands")] == flow["screened"]["hands"] == 6
    assert counts[("excluded", "prior_wrist_surgery")] == 1
    assert counts[("group", "control")] == flow["included"]["by_group"]["control"] == 2
    assert counts[("group", "cts")] == 2 and counts[("included", "needs_review")] == 1
    texts = " ".join(note["text"] for note in panel.figure["layout"]["annotations"])
    assert "6 participants, 6 hands" in texts and "<b>Excluded</b>: 1 hands" in texts
    assert "stage 2: 1, stage 3: 1" in texts and "No locked split yet" in texts
