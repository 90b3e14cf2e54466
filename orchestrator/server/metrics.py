"""Prometheus metrics of one server (its own registry, so two apps in one process, as in tests,
never share counters)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: Paths reported by name; anything else is ``other`` (no label per probed URL).
KNOWN_PATHS = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
    "/v1/embeddings",
    "/v1/models",
    "/health",
    "/metrics",
)
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


def endpoint_of(path: str) -> str:
    if path.startswith("/v1/models/"):
        return "/v1/models"
    if path.startswith("/v1/responses/"):
        return "/v1/responses"
    return path if path in KNOWN_PATHS else "other"


@dataclass
class Metrics:
    """The server's counters and histograms."""

    registry: CollectorRegistry
    requests: Counter
    errors: Counter
    in_progress: Gauge
    latency: Histogram
    ttft: Histogram
    prompt_tokens: Counter
    completion_tokens: Counter
    generations: Counter
    disconnects: Counter

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "orchestrator_requests",
                "HTTP requests answered, by endpoint and status code.",
                ["endpoint", "status"],
                registry=registry,
            ),
            errors=Counter(
                "orchestrator_errors",
                "Requests answered with an error object, by endpoint and error code.",
                ["endpoint", "code"],
                registry=registry,
            ),
            in_progress=Gauge(
                "orchestrator_requests_in_progress",
                "Requests being answered now.",
                registry=registry,
            ),
            latency=Histogram(
                "orchestrator_request_duration_seconds",
                "Time from request to the last byte of the answer.",
                ["endpoint"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            ttft=Histogram(
                "orchestrator_time_to_first_token_seconds",
                "Time from request to the first generated text (queueing included).",
                ["model"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            prompt_tokens=Counter(
                "orchestrator_prompt_tokens", "Tokens read (prompts).", ["model"], registry=registry
            ),
            completion_tokens=Counter(
                "orchestrator_completion_tokens", "Tokens generated.", ["model"], registry=registry
            ),
            generations=Counter(
                "orchestrator_generations",
                "Generations, by how they ended: completed (the work was done), cancelled "
                "(stopped early because the client went away), error.",
                ["model", "outcome"],
                registry=registry,
            ),
            disconnects=Counter(
                "orchestrator_client_disconnects",
                "Requests whose client went away before the answer was complete.",
                ["endpoint"],
                registry=registry,
            ),
        )

    def watch_model(self, engine: Callable[[], Any]) -> None:
        """Also report what a local GGUF model itself is doing (``engine``: its llama.cpp
        engine). A served model's work is its server's to report: not watched."""
        self.registry.register(_ModelCollector(engine))

    def tokens(self, model: str, prompt: int, completion: int) -> None:
        self.prompt_tokens.labels(model).inc(prompt)
        self.completion_tokens.labels(model).inc(completion)

    def exposition(self) -> tuple[bytes, str]:
        """The text format body and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _ModelCollector(Collector):
    """The model's own state, read when /metrics is: whether it is busy, and every token it
    generated. Requests report what they generated; tokens beyond their sum are work no request
    accounts for (a generation left running after its client went away)."""

    def __init__(self, engine: Callable[[], Any]) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        engine = self._engine()
        running, waiting = engine.scheduler.occupancy()
        yield GaugeMetricFamily(
            "orchestrator_model_busy",
            "1 while the GGUF model is in use (reading a prompt or generating), else 0.",
            value=int(running > 0),
        )
        yield GaugeMetricFamily(
            "orchestrator_requests_running",
            "Generations holding one of the model's slots (serve --parallel), as vLLM's "
            "num_requests_running.",
            value=running,
        )
        yield GaugeMetricFamily(
            "orchestrator_requests_waiting",
            "Generations queued for a free slot, as vLLM's num_requests_waiting.",
            value=waiting,
        )
        yield GaugeMetricFamily(
            "orchestrator_slots", "Sequences the model decodes together.", value=engine.key.n_seq
        )
        stats = engine.scheduler.stats
        yield CounterMetricFamily(
            "orchestrator_decode_steps",
            "llama_decode calls that generated tokens (one per step, for every running request).",
            value=stats["decode_steps"],
        )
        yield CounterMetricFamily(
            "orchestrator_decoded_tokens",
            "Tokens those steps decoded: over decode_steps, the mean batch.",
            value=stats["decoded_tokens"],
        )
        yield CounterMetricFamily(
            "orchestrator_model_generated_tokens",
            "Tokens the GGUF model generated, for whichever request (or none).",
            value=engine.generated_tokens,
        )
        yield CounterMetricFamily(
            "orchestrator_model_evaluated_tokens",
            "Tokens llama.cpp evaluated (prompt and generated), by its own counters: prompt "
            "tokens served from a cached or a resumed session's saved KV state are not in it.",
            value=engine.evaluated_tokens,
        )
