"""One sampling-options schema: the bounds and the defaults of every generation option.

The local models (:class:`orchestrator.llama.base.CallOptions` / ``LlamaSettings``), the
served models (:class:`orchestrator.remote.RemoteOptions`) and the HTTP server's request
schema (``orchestrator.server.schemas.Sampling``) declare their fields with the bound types
below, so a value one of them refuses the others refuse too (a test asserts it). The names are
LangChain's and OpenAI's (``max_tokens``, ``temperature``, ``top_p``, ``seed``, ``stop``,
``timeout``, ``max_retries``) plus llama.cpp's (``top_k``, ``min_p``, ``repeat_penalty``).

Defaults (:data:`DEFAULT_SAMPLING`) apply to local models. A served model and a server request
leave an option unset (``None``) to mean "the server's / the model's own default", so nothing
is sent that the caller did not ask for.

``max_retries`` defaults to 2 everywhere, LangChain's default for its chat models: a served
model retries transient HTTP failures (connection, 429, 5xx) that often pass; a local model
retries a failure inside llama.cpp before the first token (``llama_decode`` finding no KV
slot while other sequences hold it), each time from an empty cache. Neither retries an error
in the input, which would fail the same way again, and neither retries after text came out.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Gt, Le
from pydantic import BaseModel, ConfigDict

#: The bounds, one type per option (used as ``field: MaxTokens | None = None`` elsewhere).
MaxTokens = Annotated[int, Ge(1)]
Temperature = Annotated[float, Ge(0.0), Le(2.0)]
TopP = Annotated[float, Gt(0.0), Le(1.0)]
TopK = Annotated[int, Ge(0)]
MinP = Annotated[float, Ge(0.0), Le(1.0)]
RepeatPenalty = Annotated[float, Gt(0.0)]
Timeout = Annotated[float, Gt(0.0)]
MaxRetries = Annotated[int, Ge(0)]


class SamplingOptions(BaseModel):
    """Every generation option with its bounds and its default (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: MaxTokens = 256
    """Longest reply, in tokens."""
    temperature: Temperature = 0.8
    """0 is greedy (repeatable with a fixed seed); OpenAI's upper bound, 2, is the limit."""
    top_p: TopP = 0.95
    top_k: TopK = 40
    """0: no top-k cut."""
    min_p: MinP = 0.05
    repeat_penalty: RepeatPenalty = 1.1
    seed: int = -1
    """-1 draws a random seed; use a fixed one with ``temperature=0`` for repeatable output."""
    stop: list[str] | None = None
    timeout: Timeout | None = None
    """Wall-clock seconds one call may take; ``None``: no limit."""
    max_retries: MaxRetries = 2
    """Retries of a call that failed before any text came out (see the module docstring)."""


#: The documented defaults, read by every model that has defaults of its own (local ones).
DEFAULT_SAMPLING = SamplingOptions()
#: The option names, in order.
SAMPLING_FIELDS = tuple(SamplingOptions.model_fields)
