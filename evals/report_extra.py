"""The parts of a report that compare and account: the paired comparison with a baseline
(intervals, flips, a per-item plot), the spread of repeated runs and the cache's hit counts.

Shared by the suite report (:mod:`evals.report`) and ``orchestrator eval compare``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Item ids listed per flip direction before "... and N more".
MAX_FLIPS = 20
#: Metrics drawn in the per-item plot.
MAX_PLOTTED = 6


def _ids(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:MAX_FLIPS])
    more = len(ids) - MAX_FLIPS
    return shown + (f" ... and {more} more" if more > 0 else "") if ids else "-"


def comparison_rows(comparisons: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per configuration and metric, formatted for a table."""
    out = []
    for c in comparisons:
        for metric, p in c["metrics"].items():
            out.append(
                {
                    "configuration": c["b"] if c["a"] == c["b"] else f"{c['a']} -> {c['b']}",
                    "metric": metric,
                    "a": _num(p["mean_a"]),
                    "b": _num(p["mean_b"]),
                    "difference": _signed(p["difference"]),
                    "ci": f"[{_signed(p['ci_low'])}, {_signed(p['ci_high'])}]",
                    "p": _num(p["p_value"]),
                    "significant": "yes" if p["significant"] else "no",
                    "better": len(p["better"]),
                    "worse": len(p["worse"]),
                    "n": p["n"],
                    "mde": _num(p["mde"]),
                    "better_ids": _ids(p["better"]),
                    "worse_ids": _ids(p["worse"]),
                }
            )
    return out


def _num(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.4f}"


def _signed(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:+.4f}"


def comparison_markdown(comparisons: Sequence[Mapping[str, Any]], title: str) -> list[str]:
    """A Markdown section: the paired comparison table, then the items that flipped."""
    rows = comparison_rows(comparisons)
    if not rows:
        return []
    head = "| configuration | metric | A | B | B - A | 95% CI | p | significant | better | worse "
    lines = [f"## {title}", "", head + "| MDE |", "|" + "---|" * 11]
    lines += [
        f"| {r['configuration']} | {r['metric']} | {r['a']} | {r['b']} | {r['difference']} "
        f"| {r['ci']} | {r['p']} | {r['significant']} | {r['better']} | {r['worse']} "
        f"| {r['mde']} |"
        for r in rows
    ]
    lines += [
        "",
        "Paired over the items both runs scored: 95% BCa bootstrap interval of the mean "
        "difference, two-sided paired permutation test (seeded); MDE: the smallest difference "
        "this many items detect with 80% power at p < 0.05.",
        "",
        "### Items that changed",
        "",
    ]
    for r in rows:
        if r["better"] or r["worse"]:
            lines.append(f"- {r['configuration']} · {r['metric']}: worse {r['worse_ids']}")
            lines.append(f"  better {r['better_ids']}")
    return [*lines, ""]


def item_plot(
    comparisons: Sequence[Mapping[str, Any]],
    items_a: Mapping[str, Mapping[str, Mapping[str, float]]],
    items_b: Mapping[str, Mapping[str, Mapping[str, float]]],
) -> bytes | None:
    """Per metric, each item's value in run A (x) against run B (y): points under the diagonal
    got worse. None when there is nothing to draw."""
    from orchestrator.evals.report import figure_png, new_figure

    panels = [(c, m) for c in comparisons for m in c["metrics"]][:MAX_PLOTTED]
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig = new_figure(4.0 * cols, 3.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (c, metric) in zip(axes.flat, panels, strict=False):
        a, b = items_a.get(c["a"], {}), items_b.get(c["b"], {})
        ids = [i for i in a if i in b and metric in a[i] and metric in b[i]]
        xs, ys = [a[i][metric] for i in ids], [b[i][metric] for i in ids]
        worse = set(c["metrics"][metric]["worse"])
        better = set(c["metrics"][metric]["better"])
        colours = [
            "#c0392b" if i in worse else "#27ae60" if i in better else "#7f8c8d" for i in ids
        ]
        ax.scatter(xs, ys, c=colours, s=12, alpha=0.7)
        top = max([1.0, *xs, *ys])
        ax.plot([0, top], [0, top], color="#333", linewidth=0.8)
        ax.set_xlabel(f"A: {c['a']}")
        ax.set_ylabel(f"B: {c['b']}")
        p = c["metrics"][metric]
        ax.set_title(f"{metric}: {p['difference']:+.3f} (p={p['p_value']:.3f})", fontsize="small")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle("per item: A against B (red worse, green better)")
    return figure_png(fig)


def spread_rows(results: Mapping[str, Any]) -> list[dict[str, str]]:
    """The spread of repeated runs (``--repeat``), one row per configuration and metric."""
    out = []
    for config in results["configurations"]:
        for metric, s in (config.get("spread") or {}).items():
            seeds = [r.get("seed") for r in config.get("repeats", [])]
            out.append(
                {
                    "configuration": config["name"],
                    "metric": metric,
                    "runs": str(int(s["runs"])),
                    "mean": _num(s["mean"]),
                    "std": _num(s["std"]),
                    "range": f"{_num(s['min'])} - {_num(s['max'])}",
                    "seeds": ", ".join(str(x) for x in seeds),
                }
            )
    return out


def spread_markdown(results: Mapping[str, Any]) -> list[str]:
    rows = spread_rows(results)
    if not rows:
        return []
    lines = [
        "## Repeated runs",
        "",
        "| configuration | metric | runs | mean | std | range | seeds |",
    ]
    lines.append("|" + "---|" * 7)
    lines += [
        f"| {r['configuration']} | {r['metric']} | {r['runs']} | {r['mean']} | {r['std']} "
        f"| {r['range']} | {r['seeds']} |"
        for r in rows
    ]
    return [*lines, ""]


def cache_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Cache hits and misses per configuration and kind (answers, verdicts)."""
    return [
        {"configuration": c["name"], "kind": kind, "hits": t["hits"], "misses": t["misses"]}
        for c in results["configurations"]
        for kind, t in sorted((c.get("cache") or {}).items())
    ]


def cache_markdown(results: Mapping[str, Any]) -> list[str]:
    rows = cache_rows(results)
    if not rows:
        return []
    lines = ["## Cache", "", "| configuration | calls | hits | misses |", "|---|---|---|---|"]
    lines += [f"| {r['configuration']} | {r['kind']} | {r['hits']} | {r['misses']} |" for r in rows]
    return [*lines, ""]
