"""Internal versus external test performance of an experiment's runs, side by side, with the shift between them.

No Django here. From each run's stored evaluation (training.py writes evaluation["external"] for a run on an
external split): the hand-level metrics of the internal and the external test hands with their bootstrap
95% CIs over hands, and internal − external with the interval of mlworker.stats.performance_shift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mlworker.stats import aggregate_by_cluster, evaluate_predictions, performance_shift
from mlworker.stats.prospective import prospective_summary

from .experiment_summary import evaluation_summary
from .figures import OKABE_ITO, DataTable, Panel, layout

# (metric key in the evaluation, the word a reader expects)
SHIFT_METRICS = (("auc", "AUC"), ("recall", "sensitivity"), ("specificity", "specificity"), ("accuracy", "accuracy"))
SETS = (("internal", "Internal test", OKABE_ITO["blue"], "circle"),
        ("external", "External test", OKABE_ITO["vermillion"], "diamond"))


def external_evaluation(labels: Sequence[int], probabilities: Sequence[float], hand_ids: Sequence[int], *,
                        internal: dict, entries: Sequence[dict], stages: Mapping[int, int | None],
                        seed: int, domain: str) -> dict:
    """evaluation["external"] of a run: the external test frames evaluated as the internal ones, at the internal
    evaluation's threshold (never tuned on external hands), its dashboard summary, the sites and scanners
    tested on, the internal − external shift at hand level, and (`domain`: the split's "site" or "scanner")
    each external site's or scanner's hands alone when there are several."""
    threshold = internal["threshold"]
    external = evaluate_predictions(labels, probabilities, hand_ids, threshold=threshold, seed=seed)
    external["dashboard"] = evaluation_summary(labels, probabilities, hand_ids, stages=stages, threshold=threshold)
    external["domains"] = sorted({e.get("site", "") for e in entries} - {""})
    external["scanners"] = sorted({e.get("scanner", "") for e in entries} - {""})
    external["shift"] = performance_shift(internal["hand"]["labels"], internal["hand"]["probabilities"],
                                          external["hand"]["labels"], external["hand"]["probabilities"],
                                          threshold=threshold, seed=seed)
    external["by_domain"] = domain_breakdown(labels, probabilities, entries, domain=domain, threshold=threshold)
    return external


DOMAIN_SUMMARY_KEYS = ("n", "n_pos", "n_neg", "n_clusters", "counts", "auc", "sensitivity", "specificity")


def domain_breakdown(labels: Sequence[int], probabilities: Sequence[float], entries: Sequence[dict], *, domain: str,
                     threshold: float) -> dict | None:
    """Each external site's (or scanner's) hands on their own, when the external test spans two or more (with
    one, the pooled result is its own): {domain, groups: [{name, n, n_pos, n_neg, n_clusters, counts, auc,
    sensitivity, specificity}]}. Hand level (a hand's probability is the mean of all its frames, as pooled),
    at the internal threshold; AUC intervals DeLong with participants as clusters, proportions Wilson on
    n / design effect (mlworker.stats.prospective_summary). A hand scanned at two sites (or on two scanners)
    is one hand of the group named by both ("B + C"), so every hand counts once. A site's few hands give
    wide intervals, and the table says how few."""
    if domain not in ("site", "scanner"):
        raise ValueError(f"domain is 'site' or 'scanner', got {domain!r}")
    hands = np.array([e["hand"] for e in entries])
    domains_of: dict[int, set[str]] = {}
    for entry in entries:
        domains_of.setdefault(entry["hand"], set()).add(entry.get(domain) or "")
    group_of = {hand: " + ".join(sorted(names - {""})) for hand, names in domains_of.items()}
    names = np.array([group_of[hand] for hand in hands.tolist()], dtype=object)
    present = sorted(set(group_of.values()) - {""})
    if len(present) < 2:
        return None
    y, p = np.asarray(labels), np.asarray(probabilities, dtype=float)
    participant_of = {e["hand"]: e["participant"] for e in entries}
    groups = []
    for name in present:
        inside = names == name
        ids, hand_labels, hand_means = aggregate_by_cluster(y[inside], p[inside], hands[inside])
        summary = prospective_summary(hand_labels, hand_means, threshold=threshold,
                                      clusters=[participant_of[h] for h in ids.tolist()])
        groups.append({"name": name, **{key: summary[key] for key in DOMAIN_SUMMARY_KEYS}})
    return {"domain": domain, "groups": groups}


def _interval(level: dict, metric: str) -> dict:
    ci = ((level.get("ci") or {}).get("resampling_hands") or {}).get(metric) or {}
    return {"estimate": (level.get("metrics") or {}).get(metric), "low": ci.get("low"), "high": ci.get("high")}


def external_rows(models: list[dict], *, domain: str = "site") -> list[dict]:
    """One row per (model, metric) of the runs evaluated externally: internal, external and their difference.

    `models`: [{label, evaluation}] as experiment_views.results builds them; runs without an external
    evaluation are skipped. `domain` (the split's: "site" or "scanner") decides what `domains` lists.
    """
    rows = []
    for m in models:
        evaluation = m["evaluation"] or {}
        external = evaluation.get("external")
        if not external:
            continue
        shift = external.get("shift") or {}
        for metric, word in SHIFT_METRICS:
            difference = shift.get(metric) or {}
            rows.append({"model": m["label"], "metric": word,
                         "internal": _interval(evaluation.get("hand") or {}, metric),
                         "external": _interval(external.get("hand") or {}, metric),
                         "difference": {"estimate": difference.get("difference"), "low": difference.get("low"),
                                        "high": difference.get("high")},
                         "n_internal": (evaluation.get("hand") or {}).get("n"),
                         "n_external": (external.get("hand") or {}).get("n"),
                         "domains": external.get("scanners" if domain == "scanner" else "domains") or []})
    return rows


def _r(value, digits: int = 4):
    return None if value is None else round(float(value), digits)


def _interval_trace(name: str, y: list[str], values: list[dict], colour: str, symbol: str, *, size: int,
                    **extra) -> dict:
    """Markers at each {estimate, low, high} with horizontal error bars to its interval (none where undefined)."""
    return {"type": "scatter", "mode": "markers", "name": name, "y": y, "x": [v["estimate"] for v in values],
            "marker": {"color": colour, "size": size, "symbol": symbol}, **extra,
            "error_x": {"type": "data", "symmetric": False, "color": colour, "thickness": 2,
                        "array": [None if v["high"] is None or v["estimate"] is None else v["high"] - v["estimate"]
                                  for v in values],
                        "arrayminus": [None if v["low"] is None or v["estimate"] is None else v["estimate"] - v["low"]
                                       for v in values]}}


def external_figure(rows: list[dict]) -> Panel:
    """Each model's hand-level metrics on the internal and the external test hands with their 95% CIs."""
    names = [f"{row['model']} · {row['metric']}" for row in rows]
    traces = [_interval_trace(words, names, [row[key] for row in rows], colour, symbol, size=10)
              for key, words, colour, symbol in SETS]
    title = "Internal vs external test hands (95% CIs)"
    figure = {"data": traces, "layout": layout(title=title, x_title="Hand-level value", showlegend=True,
                                               height=max(260, 40 * len(rows) + 160),
                                               xaxis={"range": [-0.02, 1.02]},
                                               yaxis={"type": "category", "autorange": "reversed"},
                                               margin={"l": 24})}
    table = DataTable(
        ["model", "metric", "internal", "internal CI low", "internal CI high", "external", "external CI low",
         "external CI high", "internal − external", "difference CI low", "difference CI high", "internal hands",
         "external hands"],
        [[row["model"], row["metric"], *(_r(row[key][part]) for key in ("internal", "external", "difference")
                                         for part in ("estimate", "low", "high")),
          row["n_internal"], row["n_external"]] for row in rows])
    return Panel(key="external", title=title, figure=figure, table=table,
                 caption="Hand level at the internal evaluation's threshold (never tuned on external hands). "
                         "Intervals: stratified bootstrap over hands; the difference's resamples the hands of each "
                         "set independently, the sets being independent samples.")


DOMAIN_SERIES = (("auc", "AUC", OKABE_ITO["vermillion"], "diamond"),
                 ("sensitivity", "Sensitivity", OKABE_ITO["blue"], "circle"),
                 ("specificity", "Specificity", OKABE_ITO["bluish_green"], "square"))


def _estimate(cell: dict | None) -> dict:
    cell = cell or {}
    return {"estimate": cell.get("estimate"), "low": cell.get("low"), "high": cell.get("high")}


def external_domain_rows(models: list[dict]) -> list[dict]:
    """One row per (model, external site or scanner) of the runs whose external test spans several
    (evaluation["external"]["by_domain"]); `models` as for external_rows."""
    rows = []
    for m in models:
        breakdown = ((m["evaluation"] or {}).get("external") or {}).get("by_domain")
        for group in (breakdown or {}).get("groups", []):
            rows.append({"model": m["label"], "domain": breakdown["domain"], "name": group["name"],
                         "n": group["n"], "n_pos": group["n_pos"], "n_neg": group["n_neg"],
                         "participants": group["n_clusters"],
                         **{key: _estimate(group.get(key)) for key, *_ in DOMAIN_SERIES}})
    return rows


def external_domain_figure(rows: list[dict]) -> Panel:
    """Each model's hand-level AUC, sensitivity and specificity on each external site's (or scanner's) hands."""
    domain = rows[0]["domain"]
    names = [f"{row['model']} · {row['name']} ({row['n']} hands)" for row in rows]
    # orientation h: grouped along y, the three metrics of a row side by side rather than on top of each other
    traces = [_interval_trace(words, names, [row[key] for row in rows], colour, symbol, size=9, orientation="h")
              for key, words, colour, symbol in DOMAIN_SERIES]
    title = f"External test hands by {domain} (95% CIs)"
    figure = {"data": traces, "layout": layout(title=title, x_title="Hand-level value", showlegend=True,
                                               height=max(260, 60 * len(rows) + 160),
                                               xaxis={"range": [-0.02, 1.02]}, scattermode="group",
                                               scattergap=0.35,
                                               yaxis={"type": "category", "autorange": "reversed"},
                                               margin={"l": 24})}
    table = DataTable(
        ["model", domain, "hands", "CTS hands", "control hands", "participants",
         *(f"{words}{part}" for _, words, *_ in DOMAIN_SERIES for part in ("", " CI low", " CI high"))],
        [[row["model"], row["name"], row["n"], row["n_pos"], row["n_neg"], row["participants"],
          *(_r(row[key][part]) for key, *_ in DOMAIN_SERIES for part in ("estimate", "low", "high"))]
         for row in rows])
    return Panel(key="external-domains", title=title, figure=figure, table=table,
                 caption=f"Each external {domain}'s hands alone, at the internal threshold. AUC: DeLong interval "
                         "with participants as clusters (none with one class, or with fewer than two hands or "
                         "participants of a class); "
                         "sensitivity and specificity: Wilson intervals on hands over the design effect of "
                         f"participants. A {domain} with few hands has wide intervals: read them before the "
                         "estimates.")
