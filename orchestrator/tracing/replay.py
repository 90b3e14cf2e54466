"""Replay: run a recorded model call, or every model call of a recorded run, again on the same
GGUF and say whether the output is identical, token for token (``orchestrator replay``).

A run's model calls are replayed in order, each on its recorded input: the recorded prompts
already hold the retrieval results and tool results that were fed in, so those are fed back
as recorded and no retriever or tool runs again. Greedy calls and sampled calls with a
recorded seed replay byte-identical on the same llama.cpp build and model file; the report
names a model file whose SHA-256 is not the recorded one, a build other than the recorded one,
and whatever the record lacks that replay had to assume. While tracing is on in this process,
the replayed calls are recorded too, as runs of their own (``orchestrator replay`` records
nothing).

    from orchestrator.tracing import TraceStore
    from orchestrator.tracing.replay import replay_run

    with TraceStore() as store:
        report = replay_run(store, "4b59005d")
    print(report.identical, report.first_difference)
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from orchestrator.errors import DataError
from orchestrator.tracing import names
from orchestrator.tracing import replay_call as calls
from orchestrator.tracing.store import RunFilter, SpanView, TraceStore

Verdict = Literal["identical", "different", "fed back", "not replayed"]
#: Span kinds shown as steps: model calls are replayed, the others fed back as recorded.
FED_BACK = ("tool", "retriever")


@dataclass(frozen=True)
class Difference:
    """Where a replayed call first differs from the record: ``what`` (``output``,
    ``output_tokens``, ``finish_reason``, ``input_tokens`` or ``error``), the token index and
    tokens of the first differing output token (model's tokenizer), and both values."""

    step: int
    span_id: str
    name: str
    what: str
    token_index: int | None
    expected_token: str | None
    got_token: str | None
    expected: Any
    got: Any


@dataclass(frozen=True)
class Step:
    """One span of the run as replay saw it."""

    step: int
    span_id: str
    name: str
    kind: str
    verdict: Verdict
    note: str | None = None
    difference: Difference | None = None


@dataclass
class ReplayReport:
    """What a replay found. ``identical``: every model call replayed, with the recorded
    output; ``model_changes`` / ``build_change`` name a model file or llama.cpp build other
    than the recorded one; ``missing``: what the record lacked (and what replay assumed)."""

    run_id: str
    span_id: str | None
    build: str
    steps: list[Step] = field(default_factory=list)
    model_files: list[str] = field(default_factory=list)
    model_changes: list[str] = field(default_factory=list)
    build_change: str | None = None
    missing: list[str] = field(default_factory=list)

    @property
    def replayed(self) -> list[Step]:
        return [s for s in self.steps if s.verdict in ("identical", "different")]

    @property
    def identical(self) -> bool:
        return bool(self.replayed) and all(
            s.verdict in ("identical", "fed back") for s in self.steps
        )

    @property
    def first_difference(self) -> Difference | None:
        return next((s.difference for s in self.steps if s.difference is not None), None)

    @property
    def verdict(self) -> str:
        """``identical``, ``different`` or ``incomplete`` (some call could not be replayed)."""
        if self.first_difference is not None:
            return "different"
        return "identical" if self.identical else "incomplete"

    def to_dict(self) -> dict[str, Any]:
        first = self.first_difference
        return {**asdict(self), "identical": self.identical, "verdict": self.verdict,
                "first_difference": asdict(first) if first is not None else None}  # fmt: skip

    def note_missing(self, lines: list[str]) -> None:
        self.missing.extend(m for m in lines if m not in self.missing)


def _model_file(report: ReplayReport, span: SpanView, path: str) -> None:
    """Compare the model file replay uses with the recorded one (by SHA-256, as recorded)."""
    recorded = span.attributes.get(names.MODEL_SHA256)
    current = calls.file_sha256(path)
    if recorded is None:
        state = "no hash in the record"
        report.note_missing([f"the model file's SHA-256: {path} is assumed to be the file used"])
    else:
        state = "as recorded" if recorded == current else f"the record has {recorded[:16]}…"
    line = f"{path} (sha256 {current[:16]}…, {state})"
    if line not in report.model_files:
        report.model_files.append(line)
    if recorded is not None and recorded != current:
        change = (
            f"model file changed: {path} has sha256 {current[:16]}…, the record {recorded[:16]}…"
        )
        if span.attributes.get(names.MODEL_PATH) != path:
            change += f" (recorded from {span.attributes.get(names.MODEL_PATH)})"
        if change not in report.model_changes:
            report.model_changes.append(change)


def _build(report: ReplayReport, span: SpanView) -> None:
    recorded = span.attributes.get(calls.BUILD)
    if recorded is None:
        report.note_missing(["the llama.cpp build (outputs may differ on another build; this "
                             "replay ran on the build shown)"])  # fmt: skip
    elif recorded != report.build and report.build_change is None:
        report.build_change = f"llama.cpp build changed: recorded {recorded}; now {report.build}"


def _difference(
    step: int, span: SpanView, what: str, expected: Any, got: Any,
    token: tuple[int, str, str] | None = None,
) -> Difference:  # fmt: skip
    index, was, now = token if token is not None else (None, None, None)
    return Difference(step, span.span_id, span.name, what, index, was, now, expected, got)


def _step(
    number: int, span: SpanView, verdict: Verdict, note: str | None = None,
    difference: Difference | None = None,
) -> Step:  # fmt: skip
    return Step(number, span.span_id, span.name, span.kind, verdict, note, difference)


def _compare(
    step: int, span: SpanView, model: Any, expected: dict[str, Any], got: dict[str, Any]
) -> Difference | None:
    """The first recorded fact the replay does not reproduce (output text first)."""
    if expected.get(names.ERROR_TYPE) or got.get(names.ERROR_TYPE):
        keys = (names.ERROR_TYPE, names.ERROR_MESSAGE)
        was, now = (": ".join(str(d[k]) for k in keys if d.get(k)) for d in (expected, got))
        return None if was == now else _difference(step, span, "error", was, now)
    old, new = (calls.normalized(d.get(names.OUTPUT_MESSAGES)) for d in (expected, got))
    if names.OUTPUT_MESSAGES in expected and old != new:
        was, now = calls.output_text(old), calls.output_text(new)
        token = calls.first_token_difference(model, was, now)
        return _difference(step, span, "output", was, now, token)
    labels = {names.OUTPUT_TOKENS: "output_tokens", names.FINISH_REASONS: "finish_reason",
              names.INPUT_TOKENS: "input_tokens"}  # fmt: skip
    for key, what in labels.items():
        if key in expected and expected[key] != got.get(key):
            return _difference(step, span, what, expected[key], got.get(key))
    return None


def _replay_model_span(
    report: ReplayReport, step: int, span: SpanView, model_path: str | None
) -> Step:
    a = span.attributes
    recorded_path = a.get(names.MODEL_PATH)
    note: str | None
    if not isinstance(recorded_path, str):
        note = f"not a local GGUF call ({a.get(names.COMPONENT) or span.name}): nothing to rerun"
        return _step(step, span, "not replayed", note)
    path = model_path or recorded_path
    if not os.path.exists(path):
        note = f"the model file {path} is gone (replay --model PATH runs it on another file)"
        return _step(step, span, "not replayed", note)
    plan = calls.plan(a, path)
    report.note_missing(plan.missing)
    _model_file(report, span, path)
    _build(report, span)
    if plan.blocker is not None:
        return _step(step, span, "not replayed", plan.blocker)
    model = calls.build_model(plan)
    got = calls.run_call(model, plan)
    expected = {k: a[k] for k in (*calls.COMPARED, names.ERROR_TYPE, names.ERROR_MESSAGE) if k in a}
    if span.status == "error" and names.ERROR_TYPE not in expected:
        expected[names.ERROR_TYPE] = "error"
    difference = _compare(step, span, model, expected, got)
    note = None
    if names.OUTPUT_MESSAGES not in a and span.status != "error":
        note = "the record holds no output (recorded with hide_outputs): only token counts compared"
    return _step(step, span, "identical" if difference is None else "different", note, difference)


def _replay_spans(
    report: ReplayReport, spans: list[SpanView], model_path: str | None
) -> ReplayReport:
    number = 0
    for span in spans:
        if span.kind == "llm":
            number += 1
            report.steps.append(_replay_model_span(report, number, span, model_path))
        elif span.kind in FED_BACK:
            number += 1
            note = "not re-run: the next model call's recorded prompt holds its result"
            report.steps.append(_step(number, span, "fed back", note))
    return report


def replay_run(store: TraceStore, run_id: str, *, model_path: str | None = None) -> ReplayReport:
    """Replay every model call of the run ``run_id`` (or an id prefix), in start order, each on
    its recorded input; ``model_path``: run them on this GGUF instead of the recorded one."""
    run = store.run(run_id)
    spans = store.spans(run.run_id)
    if not any(s.kind == "llm" for s in spans):
        raise DataError(
            f"run {run.run_id} recorded no model call, so there is nothing to replay",
            fix="orchestrator logs show RUN_ID lists its spans; pick a run with a model call",
        )
    report = ReplayReport(run.run_id, None, calls.current_build())
    return _replay_spans(report, spans, model_path)


def replay_span(
    store: TraceStore, span_id: str, *, run_id: str | None = None, model_path: str | None = None
) -> ReplayReport:
    """Replay the one recorded model call ``span_id`` (or an id prefix) of ``run_id`` (any
    run when not given)."""
    span = find_span(store, span_id, run_id)
    if span.kind != "llm":
        raise DataError(
            f"span {span.span_id} is a {span.kind} span ({span.name}); replay reruns model calls",
            fix="give a model call's span id (orchestrator logs show RUN_ID --json lists them), "
            "or replay the whole run",
        )
    report = ReplayReport(span.run_id, span.span_id, calls.current_build())
    return _replay_spans(report, [span], model_path)


def find_span(store: TraceStore, span_id: str, run_id: str | None = None) -> SpanView:
    """The span whose id is or starts with ``span_id``, in ``run_id`` or in any run."""
    prefix = span_id.strip().lower()
    runs = [store.run(run_id)] if run_id else store.runs(RunFilter(limit=None))
    found = [s for r in runs for s in store.spans(r.run_id) if s.span_id.startswith(prefix)]
    if len(found) != 1 or not prefix:
        problem = "several spans start with" if found else "no span has the id"
        raise DataError(
            f"{problem} {span_id!r} in {store.path}",
            fix="orchestrator logs show RUN_ID --json lists a run's spans; give more of the id",
        )
    return found[0]
