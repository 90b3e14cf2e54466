"""Reports of a suite run: ``results.json``, a Markdown report and an HTML report with plots.

Figures: the per-query (per-sample) distribution of each metric, the per-configuration
comparison of means, and, for retrieval, the 11-point precision-recall curve. They are drawn
with matplotlib's object API (``Figure`` on an Agg canvas), which needs no backend: importing
or using this module never switches the process's matplotlib backend or loads ``pyplot``.

The HTML report is rendered from the Jinja2 template ``templates/report.html.j2`` (package
data) with autoescaping on, so text from datasets and model answers (``<script>`` in a
question, say) is shown as text, never run. The Markdown links the PNG files.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.evals import report_extra as extra

if TYPE_CHECKING:
    from jinja2 import Environment
    from matplotlib.figure import Figure

JUDGE_NOTE = (
    "LLM-judged scores are only as good as the judge. The embedded SmolLM2-135M judge wires "
    "the path but its verdicts mean little; the non-LLM metrics are the trustworthy baseline. "
    "For meaningful judgements use a larger GGUF: set `judge: {model: PATH.gguf}` in the suite "
    "or pass `--judge-model PATH.gguf`."
)

TEMPLATE = "report.html.j2"

#: What each of the book's answer metrics (issue 13) means, listed under a report's table.
ANSWER_METRIC_NOTES = {
    "citation_recall": "share of answer statements whose cited passages entail them (ALCE, "
    "Gao et al. 2023); entailment judged by the local judge, where ALCE used an NLI model",
    "citation_precision": "share of citations that are needed: the passage alone entails its "
    "statement, or the other cited passages do not without it (ALCE); judged locally",
    "citation_recall_lexical": "citation recall with a lexical entailment proxy (ROUGE-1 "
    "recall of the statement in its passages >= 0.7): the non-LLM baseline",
    "citation_precision_lexical": "citation precision with the same lexical proxy",
    "fluency": "judged 1-5 agreement that the answer is fluent and cohesive (Liu et al. "
    "2023), normalised (rating - 1) / 4",
    "fluency_perplexity": "non-LLM fluency baseline: 1 - ln(perplexity) / ln(vocabulary) of "
    "the answer under the local model",
    "perceived_utility": "judged 1-5 agreement that the answer helps with the question (Liu "
    "et al. 2023), normalised; no non-LLM baseline exists",
}
#: Pairs drawn as recall-vs-precision scatter plots, one point per sample.
CITATION_PAIRS = (
    ("citation_recall", "citation_precision"),
    ("citation_recall_lexical", "citation_precision_lexical"),
)


def _gated(metrics: Sequence[str]) -> list[str]:
    return [m for m in metrics if not m.startswith("num_")]


def _values(config: Mapping[str, Any], metric: str) -> list[float]:
    if config["kind"] == "retrieval":
        return [q[metric] for q in config["per_query"].values() if metric in q]
    return [s["scores"][metric] for s in config["samples"] if metric in s["scores"]]


def new_figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas: no pyplot, no global backend, no figure registry."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _comparison(results: Mapping[str, Any], metrics: list[str]) -> bytes:
    configs = results["configurations"]
    fig = new_figure(min(12.0, max(6.0, 0.9 * len(metrics) * len(configs))), 4)
    ax = fig.subplots()
    width = 0.8 / max(len(configs), 1)
    for i, config in enumerate(configs):
        means = [config["mean"].get(m) or 0.0 for m in metrics]
        ax.bar([x + i * width for x in range(len(metrics))], means, width, label=config["name"])
    ax.set_xticks([x + width * (len(configs) - 1) / 2 for x in range(len(metrics))], metrics)
    ax.set_ylabel("mean")
    ax.set_title("per-configuration comparison")
    ax.legend(fontsize="small")
    return figure_png(fig)


def _distribution(results: Mapping[str, Any], metrics: list[str]) -> bytes:
    configs = results["configurations"]
    cols = max(1, min(3, len(metrics)))
    rows = max(1, (len(metrics) + cols - 1) // cols)
    fig = new_figure(4.2 * cols, 3.2 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        data = [_values(c, metric) or [0.0] for c in configs]
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(range(1, len(configs) + 1), [c["name"] for c in configs], fontsize="small")
        ax.set_title(metric)
        ax.set_ylim(-0.05, 1.05)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    unit = "query" if results["kind"] == "retrieval" else "sample"
    fig.suptitle(f"per-{unit} distribution")
    return figure_png(fig)


def _pr_curve(results: Mapping[str, Any]) -> bytes:
    fig = new_figure(5.5, 4)
    ax = fig.subplots()
    for config in results["configurations"]:
        recall, precision = zip(*config["pr_curve"], strict=True)
        ax.plot(recall, precision, marker="o", label=config["name"])
    ax.set_xlabel("recall")
    ax.set_ylabel("interpolated precision")
    ax.set_title("precision-recall (11-point, trec_eval)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize="small")
    return figure_png(fig)


def _pairs(config: Mapping[str, Any], x: str, y: str) -> list[tuple[float, float]]:
    scored = (s["scores"] for s in config["samples"])
    return [(s[x], s[y]) for s in scored if x in s and y in s]


def _citations(results: Mapping[str, Any], pairs: list[tuple[str, str]]) -> bytes:
    """Citation recall against precision, one point per sample, a panel per entailment."""
    fig = new_figure(4.6 * len(pairs), 4)
    axes = fig.subplots(1, len(pairs), squeeze=False)[0]
    for ax, (x, y) in zip(axes, pairs, strict=True):
        for config in results["configurations"]:
            points = _pairs(config, x, y)
            if points:
                xs, ys = zip(*points, strict=True)
                ax.scatter(xs, ys, alpha=0.6, label=config["name"])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.05, 1.05)
        ax.legend(fontsize="small")
    fig.suptitle("citations per sample (ALCE)")
    return figure_png(fig)


def figures(results: Mapping[str, Any]) -> dict[str, bytes]:
    """The report's plots as PNG bytes, by file name."""
    metrics = _gated(results["metrics"])
    out = {
        "comparison.png": _comparison(results, metrics),
        "distribution.png": _distribution(results, metrics),
    }
    if results["kind"] == "retrieval":
        out["pr_curve.png"] = _pr_curve(results)
    pairs = [p for p in CITATION_PAIRS if set(p) <= set(metrics)]
    if results["kind"] == "rag" and pairs:
        out["citations.png"] = _citations(results, pairs)
    return out


def metric_notes(metrics: Sequence[str]) -> list[str]:
    """``- name: meaning`` lines for the answer metrics among ``metrics``."""
    return [f"- `{m}`: {ANSWER_METRIC_NOTES[m]}" for m in metrics if m in ANSWER_METRIC_NOTES]


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _table(results: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    metrics = list(results["metrics"])
    header = ["configuration", *metrics, "seconds"]
    rows = []
    for config in results["configurations"]:
        cells = [config["name"], *(_number(config["mean"].get(m)) for m in metrics)]
        rows.append([*cells, f"{config['seconds']:.1f}"])
    return header, rows


def _failures(results: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    return [
        (c["name"], f["id"], f["metric"], f["reason"])
        for c in results["configurations"]
        for f in c.get("failed", [])
    ]


def _details(results: Mapping[str, Any]) -> list[list[dict[str, Any]]]:
    """Per configuration, one row per query (retrieval) or sample (RAG) with its scores."""
    metrics = list(results["metrics"])
    out = []
    for config in results["configurations"]:
        if config["kind"] == "retrieval":
            items = [
                {"id": qid, "cells": [_number(scores.get(m)) for m in metrics]}
                for qid, scores in config["per_query"].items()
            ]
        else:
            items = [
                {
                    "id": s["id"],
                    "question": s.get("user_input") or s.get("input") or "",
                    "answer": s.get("response") or s.get("output") or "",
                    "cells": [_number(s["scores"].get(m)) for m in metrics],
                }
                for s in config["samples"]
            ]
        out.append(items)
    return out


def markdown(
    results: Mapping[str, Any], gate_failures: Sequence[str], images: Sequence[str]
) -> str:
    """The Markdown report; ``images`` are file names relative to the report."""
    header, rows = _table(results)
    lines = [
        f"# Evaluation: {results['suite']}",
        "",
        f"- dataset: `{results['dataset']}` ({results['kind']})",
        f"- run: {results['created']} on {results['machine']}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]
    if results["kind"] == "rag":
        notes = metric_notes(results["metrics"])
        lines += ["## Answer metrics", "", *notes, ""] if notes else []
        lines += [f"> {JUDGE_NOTE}", ""]
        fails = _failures(results)
        if fails:
            lines += [
                "## Scores that could not be computed",
                "",
                "| configuration | sample | metric | reason |",
                "|---|---|---|---|",
            ]
            lines += [f"| {a} | {b} | {c} | {d.replace('|', '/')} |" for a, b, c, d in fails]
            lines.append("")
    lines += extra.spread_markdown(results)
    lines += extra.comparison_markdown(results.get("comparison") or [], "Against the baseline")
    lines += extra.cache_markdown(results)
    lines += ["## Gate", ""]
    lines += [f"- FAIL: {f}" for f in gate_failures] or ["- pass"]
    lines += ["", "## Figures", ""]
    lines += [f"![{Path(i).stem}]({i})" for i in images]
    return "\n".join(lines) + "\n"


@cache
def _environment() -> Environment:
    """The Jinja2 environment over the package's templates (autoescaping HTML)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=PackageLoader("orchestrator.evals", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True),
        undefined=StrictUndefined,  # a misspelt variable is an error, not an empty cell
        keep_trailing_newline=True,
    )


def html_report(
    results: Mapping[str, Any], gate_failures: Sequence[str], images: Mapping[str, bytes]
) -> str:
    """A self-contained HTML report (figures embedded as base64 PNG), escaped throughout."""
    header, rows = _table(results)
    figures_ = [
        {
            "name": name,
            "caption": Path(name).stem,
            "data": base64.b64encode(png).decode("ascii"),
        }
        for name, png in images.items()
    ]
    template = _environment().get_template(TEMPLATE)
    return template.render(
        results=results,
        header=header,
        rows=rows,
        judge_note=JUDGE_NOTE,
        failures=_failures(results),
        gate_failures=list(gate_failures),
        figures=figures_,
        unit="query" if results["kind"] == "retrieval" else "sample",
        units="queries" if results["kind"] == "retrieval" else "samples",
        details=_details(results),
        comparison=extra.comparison_rows(results.get("comparison") or []),
        spread=extra.spread_rows(results),
        cache=extra.cache_rows(results),
    )


def write_reports(
    results: Mapping[str, Any],
    out_dir: str | Path,
    gate_failures: Sequence[str] = (),
    baseline: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``results.json``, ``items.jsonl`` (:mod:`evals.items`), ``report.md`` (+
    ``figures/*.png``) and ``report.html``. ``baseline``: the run ``results["comparison"]``
    compared with, whose items the per-item plot draws."""
    from orchestrator.evals.items import results_items, write_items

    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    payload = {**results, "gate": {"passed": not gate_failures, "failures": list(gate_failures)}}
    paths = {
        "results": out / "results.json",
        "items": out / "items.jsonl",
        "markdown": out / "report.md",
        "html": out / "report.html",
    }
    paths["results"].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    write_items(results, out)
    images = figures(results)
    if results.get("comparison") and baseline is not None:
        plot = extra.item_plot(
            results["comparison"], results_items(baseline), results_items(results)
        )
        if plot is not None:
            images["per_item.png"] = plot
    for name, png in images.items():
        (out / "figures" / name).write_bytes(png)
    names = [f"figures/{n}" for n in images]
    paths["markdown"].write_text(markdown(results, gate_failures, names), encoding="utf-8")
    paths["html"].write_text(html_report(results, gate_failures, images), encoding="utf-8")
    return paths
