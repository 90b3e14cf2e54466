"""The HTML report: rendered from the shipped Jinja2 template, everything from data escaped."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import Any

from orchestrator.evals.report import TEMPLATE, write_reports

ATTACK = "<script>alert('x')</script>"


def _rag_results() -> dict[str, Any]:
    samples = [
        {
            "id": "s1",
            "user_input": f"What is {ATTACK}?",
            "response": "It is <b>bold</b> & brave.",
            "reference": "r",
            "retrieved_contexts": ["c"],
            "scores": {"rouge": 0.25, "bleu": 0.5},
        },
        {
            "id": "s2",
            "user_input": "Plain question?",
            "response": "Plain answer.",
            "reference": "r",
            "retrieved_contexts": ["c"],
            "scores": {"rouge": 0.75},
        },
    ]
    config = {
        "name": "hybrid",
        "kind": "rag",
        "mean": {"rouge": 0.5, "bleu": 0.5},
        "samples": samples,
        "failed": [{"id": "s2", "metric": "bleu", "reason": "the score is <undefined>"}],
        "seconds": 2.0,
    }
    return {
        "suite": "rag <suite>",
        "kind": "rag",
        "dataset": "qa.jsonl",
        "created": "2025-01-01T00:00:00+00:00",
        "machine": "x86_64",
        "metrics": ["rouge", "bleu"],
        "configurations": [config],
    }


def test_the_template_is_package_data() -> None:
    template = importlib.resources.files("orchestrator.evals") / "templates" / TEMPLATE
    assert template.is_file()
    assert "{{ results.suite }}" in template.read_text(encoding="utf-8")


def test_html_escapes_dataset_text_and_renders_every_section(tmp_path: Path) -> None:
    paths = write_reports(_rag_results(), tmp_path, ["hybrid: rouge = 0.5000 is below <1>"])
    html = paths["html"].read_text(encoding="utf-8")
    assert "<script>" not in html
    assert "What is &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;?" in html
    assert "It is &lt;b&gt;bold&lt;/b&gt; &amp; brave." in html
    assert "<title>Evaluation: rag &lt;suite&gt;</title>" in html
    assert "the score is &lt;undefined&gt;" in html
    assert '<li class="fail">hybrid: rouge = 0.5000 is below &lt;1&gt;</li>' in html
    for heading in (
        "Means",
        "Scores that could not be computed",
        "Gate",
        "Figures",
        "Per sample",
    ):
        assert f"<h2>{heading}</h2>" in html
    assert "mean little" in html  # the judge caveat on RAG reports
    assert html.count("data:image/png;base64,") == 2
    for name in ("comparison", "distribution"):
        assert f"<figcaption>{name}</figcaption>" in html
    # per-sample scores, with n/a where a metric could not be scored
    assert "<summary>hybrid (2 samples)</summary>" in html
    assert "<td>0.2500</td><td>0.5000</td>" in html and "<td>0.7500</td><td>n/a</td>" in html
    saved = json.loads(paths["results"].read_text())
    assert saved["gate"]["passed"] is False


def test_a_passing_gate_reads_pass(tmp_path: Path) -> None:
    html = write_reports(_rag_results(), tmp_path)["html"].read_text(encoding="utf-8")
    assert "<li>pass</li>" in html and 'class="fail"' not in html
