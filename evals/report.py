"""Reports of a suite run: ``results.json``, a Markdown report and an HTML report with plots.

Figures (matplotlib, rendered headless): the per-query (per-sample) distribution of each
metric, the per-configuration comparison of means, and, for retrieval, the 11-point
precision-recall curve. The HTML embeds them as PNG; the Markdown links the PNG files.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

JUDGE_NOTE = (
    "LLM-judged scores are only as good as the judge. The embedded SmolLM2-135M judge wires "
    "the path but its verdicts mean little; the non-LLM metrics are the trustworthy baseline. "
    "For meaningful judgements use a larger GGUF: set `judge: {model: PATH.gguf}` in the suite "
    "or pass `--judge-model PATH.gguf`."
)


def _gated(metrics: Sequence[str]) -> list[str]:
    return [m for m in metrics if not m.startswith("num_")]


def _values(config: Mapping[str, Any], metric: str) -> list[float]:
    if config["kind"] == "retrieval":
        return [q[metric] for q in config["per_query"].values() if metric in q]
    return [s["scores"][metric] for s in config["samples"] if metric in s["scores"]]


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buffer.getvalue()


def figures(results: Mapping[str, Any]) -> dict[str, bytes]:
    """The report's plots as PNG bytes, by file name."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    configs = results["configurations"]
    metrics = _gated(results["metrics"])
    out: dict[str, bytes] = {}

    fig, ax = plt.subplots(figsize=(min(12.0, max(6.0, 0.9 * len(metrics) * len(configs))), 4))
    width = 0.8 / max(len(configs), 1)
    for i, config in enumerate(configs):
        means = [config["mean"].get(m) or 0.0 for m in metrics]
        ax.bar([x + i * width for x in range(len(metrics))], means, width, label=config["name"])
    ax.set_xticks([x + width * (len(configs) - 1) / 2 for x in range(len(metrics))], metrics)
    ax.set_ylabel("mean")
    ax.set_title("per-configuration comparison")
    ax.legend(fontsize="small")
    out["comparison.png"] = _png(fig)

    cols = min(3, len(metrics))
    rows = (len(metrics) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
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
    out["distribution.png"] = _png(fig)

    if results["kind"] == "retrieval":
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for config in configs:
            recall, precision = zip(*config["pr_curve"], strict=True)
            ax.plot(recall, precision, marker="o", label=config["name"])
        ax.set_xlabel("recall")
        ax.set_ylabel("interpolated precision")
        ax.set_title("precision-recall (11-point, trec_eval)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize="small")
        out["pr_curve.png"] = _png(fig)
    return out


def _table(results: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    metrics = list(results["metrics"])
    header = ["configuration", *metrics, "seconds"]
    rows = []
    for config in results["configurations"]:
        cells = [config["name"]]
        for metric in metrics:
            value = config["mean"].get(metric)
            cells.append("n/a" if value is None else f"{value:.4f}")
        rows.append([*cells, f"{config['seconds']:.1f}"])
    return header, rows


def _failures(results: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    return [
        (c["name"], f["id"], f["metric"], f["reason"])
        for c in results["configurations"]
        for f in c.get("failed", [])
    ]


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
    lines += ["## Gate", ""]
    lines += [f"- FAIL: {f}" for f in gate_failures] or ["- pass"]
    lines += ["", "## Figures", ""]
    lines += [f"![{Path(i).stem}]({i})" for i in images]
    return "\n".join(lines) + "\n"


def html_report(
    results: Mapping[str, Any], gate_failures: Sequence[str], images: Mapping[str, bytes]
) -> str:
    """A self-contained HTML report (figures embedded as base64 PNG)."""
    esc = html.escape
    header, rows = _table(results)
    table = "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"
    table += (
        "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
        + "</table>"
    )
    parts = [
        f"<h1>Evaluation: {esc(results['suite'])}</h1>",
        f"<p>dataset <code>{esc(str(results['dataset']))}</code> ({esc(results['kind'])}); "
        f"run {esc(results['created'])} on {esc(results['machine'])}</p>",
        table,
    ]
    if results["kind"] == "rag":
        parts.append(f"<p class='note'>{esc(JUDGE_NOTE)}</p>")
        fails = _failures(results)
        if fails:
            parts.append(
                "<h2>Scores that could not be computed</h2><table><tr><th>"
                "configuration</th><th>sample</th><th>metric</th><th>reason</th></tr>"
            )
            parts += ["<tr>" + "".join(f"<td>{esc(x)}</td>" for x in f) + "</tr>" for f in fails]
            parts.append("</table>")
    gate_items = [f"<li class='fail'>{esc(f)}</li>" for f in gate_failures] or ["<li>pass</li>"]
    parts.append("<h2>Gate</h2><ul>" + "".join(gate_items) + "</ul><h2>Figures</h2>")
    for name, png in images.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f"<figure><img alt='{esc(name)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{esc(Path(name).stem)}</figcaption></figure>"
        )
    style = (
        "body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:"
        "collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}"
        ".fail{color:#b00}.note{background:#ffd;padding:.5em}img{max-width:100%}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(results['suite'])}"
        f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>\n"
    )


def write_reports(
    results: Mapping[str, Any], out_dir: str | Path, gate_failures: Sequence[str] = ()
) -> dict[str, Path]:
    """Write ``results.json``, ``report.md`` (+ ``figures/*.png``) and ``report.html``."""
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    payload = {**results, "gate": {"passed": not gate_failures, "failures": list(gate_failures)}}
    paths = {
        "results": out / "results.json",
        "markdown": out / "report.md",
        "html": out / "report.html",
    }
    paths["results"].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    images = figures(results)
    for name, png in images.items():
        (out / "figures" / name).write_bytes(png)
    names = [f"figures/{n}" for n in images]
    paths["markdown"].write_text(markdown(results, gate_failures, names), encoding="utf-8")
    paths["html"].write_text(html_report(results, gate_failures, images), encoding="utf-8")
    return paths
