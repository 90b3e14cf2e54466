"""Options shared by :class:`LlamaCpp` and :class:`ChatLlamaCpp`, and the engine they resolve to.

Options are closed: an unknown or misspelled keyword (``n_gpu_layer=``) is an error with a
suggestion, never silently ignored. Construction is cheap (it validates the file header but does
not load weights); the engine is loaded on first use, or by :meth:`LlamaSettings.warm_up`.

LangChain's standard chat-model parameters (``model``, ``temperature``, ``max_tokens``,
``timeout``, ``stop``, ``max_retries``, ``api_key``) are accepted with a meaning for a local
model; options that name a hosted API's endpoint (``base_url``, ...) are errors with the reason.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt

from orchestrator.errors import (
    OptionError,
    OrchestratorError,
    reject_unknown_options,
    unknown_option,
)
from orchestrator.gguf_info import GGUFInfo, check_gguf_header, read_gguf_info
from orchestrator.llama.engine import (
    Engine,
    EngineKey,
    Sampling,
    Usage,
    get_engine,
    gpu_backend_available,
)
from orchestrator.llama.standard_names import standard_names
from orchestrator.models.capabilities import Capabilities, Way
from orchestrator.models.options import (
    DEFAULT_SAMPLING,
    MaxRetries,
    MaxTokens,
    MinP,
    RepeatPenalty,
    Temperature,
    Timeout,
    TopK,
    TopP,
)
from orchestrator.prompts import BUILTIN_FORMATS
from orchestrator.settings import (
    DEFAULT_N_CTX_CAP,
    DEFAULT_PARALLEL,
    default_threads,
    resolve_model_path,
)


class CallOptions(BaseModel):
    """Per-call sampling options: the bounds and defaults of
    :class:`orchestrator.models.SamplingOptions` (one definition), without ``stop`` and
    ``max_retries``, which are the model's (``stop`` also arrives as LangChain's own argument)."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: MaxTokens = DEFAULT_SAMPLING.max_tokens
    temperature: Temperature = DEFAULT_SAMPLING.temperature
    top_p: TopP = DEFAULT_SAMPLING.top_p
    top_k: TopK = DEFAULT_SAMPLING.top_k
    min_p: MinP = DEFAULT_SAMPLING.min_p
    repeat_penalty: RepeatPenalty = DEFAULT_SAMPLING.repeat_penalty
    seed: int = DEFAULT_SAMPLING.seed
    """Sampling seed; -1 draws a random one. Use with ``temperature=0`` for repeatable output."""
    timeout: Timeout | None = DEFAULT_SAMPLING.timeout
    """Wall-clock seconds one call may generate for (LangChain's standard ``timeout``). When
    it runs out, generation stops and :class:`GenerationTimeoutError` is raised (a stream has
    already delivered the text so far). ``None``: no limit."""


#: Options a caller may override per call (``llm.invoke(text, max_tokens=20)``).
CALL_OPTIONS = tuple(CallOptions.model_fields)


class GenerationTimeoutError(OrchestratorError, TimeoutError):
    """A call ran past its ``timeout`` (wall-clock seconds) and was stopped."""


class EngineError(OrchestratorError, RuntimeError):
    """llama.cpp failed while generating (e.g. ``llama_decode`` found no KV-cache slot), on
    every attempt ``max_retries`` allowed."""


class LlamaSettings(CallOptions):
    """Load and sampling options, with the names the book and LangChain's LlamaCpp use.

    LangChain's standard chat-model parameters mean, for a local GGUF model:

    - ``model``: the model file, another name for ``model_path`` (a path, or ``None`` for
      ``$ORCHESTRATOR_MODEL`` / the embedded model); passing both with different values is
      an error. Read back as ``.model``.
    - ``temperature``, ``max_tokens``, ``stop``: sampling as usual (also per call).
    - ``timeout``: wall-clock seconds a call may generate for; past it generation stops and
      :class:`GenerationTimeoutError` is raised (also per call).
    - ``max_retries`` (>= 0, default 2, as for every model: see
      :mod:`orchestrator.models.options`): how often a generation that failed inside llama.cpp
      before producing any text (a ``RuntimeError`` such as ``llama_decode returned 1``) is
      retried, each time from an empty KV cache. Errors in the input (options, a prompt too
      long for the context) are not retried: they would fail the same way again.
    - ``api_key``: accepted and ignored, since a local model has nothing to authenticate to
      (LangChain's standard test suite and code written for a hosted model pass one). It is
      not stored; the first non-empty key in a process warns once that it is ignored.
    - ``model_name``: ChatOpenAI's other name for ``model``.
    - ``n`` (OpenAI's answers per prompt): ``1``; another value is an error saying how to
      get several (``batch``).

    ``base_url`` (and ``api_base``, ``organization``, ``default_headers``) are errors: they
    ask for a served model, which is :func:`orchestrator.remote.remote_chat_model`. Every
    other unknown name is an error suggesting the closest option.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())

    model_path: str | None = None
    """GGUF file; ``None``: ``$ORCHESTRATOR_MODEL``, else the embedded SmolLM2-135M."""
    max_retries: MaxRetries = DEFAULT_SAMPLING.max_retries
    """Retries of a generation llama.cpp failed before any text came out (see class doc)."""
    n_gpu_layers: int | None = None
    """Layers to offload (-1 = all). Default: all when llama.cpp has a GPU backend, else 0."""
    n_ctx: int | None = Field(default=None, ge=16)
    """Context window. Default: what the model was trained for, capped at 4096."""
    n_threads: int | None = Field(default=None, ge=1)
    n_batch: int = Field(default=512, ge=1)
    n_parallel: int | None = Field(default=None, ge=1, le=64)
    """Sequences decoded together (llama.cpp's ``--parallel``): concurrent calls, ``batch()``
    and sampled techniques share each ``llama_decode``. Each holds a whole ``n_ctx`` window,
    so the KV cache takes ``n_parallel`` times the memory of one. Default: 4."""
    stop: list[str] | None = None
    streaming: bool = False
    """Stream internally even on ``invoke`` (callbacks get each token)."""
    prefix_reuse: bool = True
    """Keep the KV cache of the common prompt prefix between calls (no history re-prefill)."""
    chat_format: str | None = None
    """Force a built-in chat format (``phi3``, ``chatml``, ``llama3``) instead of the GGUF's."""

    _engine: Engine | None = PrivateAttr(default=None)
    _info: GGUFInfo | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            data = standard_names(data, cls.__name__)
        reject_unknown_options(data, cls)
        return data

    @model_validator(mode="after")
    def _check_model(self) -> LlamaSettings:
        if self.chat_format is not None and self.chat_format not in BUILTIN_FORMATS:
            raise OptionError(
                f"unknown chat_format {self.chat_format!r}",
                fix=f"choose one of {sorted(BUILTIN_FORMATS)}, or leave it unset to use the "
                "model's own template",
            )
        # cheap checks only (a stat, 24 bytes); the whole file is parsed on first use of
        # .info / .engine, before llama.cpp opens it
        self.model_path = str(check_gguf_header(resolve_model_path(self.model_path)).path)
        if self.n_gpu_layers not in (None, 0) and not gpu_backend_available():
            warnings.warn(
                f"n_gpu_layers={self.n_gpu_layers} was asked for, but this llama.cpp build has no "
                f"GPU backend: 0 of {self.info.n_layers} layers are offloaded, all run on the "
                'CPU. Rebuild with CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall '
                "--no-cache-dir llama-cpp-python",
                RuntimeWarning,
                stacklevel=2,
            )
        return self

    @property
    def model(self) -> str:
        """The model file (LangChain's standard name for ``model_path``)."""
        return str(self.model_path)

    @property
    def info(self) -> GGUFInfo:
        """Metadata of the model file, read on first use (not at construction: walking the
        vocabulary costs far more than a stat); the whole file is validated then, so the
        engine, which needs it for ``n_ctx``, never hands llama.cpp a broken file."""
        if self._info is None:
            self._info = read_gguf_info(str(self.model_path))
        return self._info

    def engine_key(self) -> EngineKey:
        info = self.info
        trained = info.context_length or DEFAULT_N_CTX_CAP
        gpu = -1 if gpu_backend_available() else 0
        return EngineKey(
            path=str(info.path),
            n_ctx=self.n_ctx if self.n_ctx is not None else min(trained, DEFAULT_N_CTX_CAP),
            n_gpu_layers=gpu if self.n_gpu_layers is None else self.n_gpu_layers,
            n_threads=self.n_threads if self.n_threads is not None else default_threads(),
            n_batch=self.n_batch,
            n_seq=self.n_parallel or DEFAULT_PARALLEL,
            verbose=bool(getattr(self, "verbose", False)),
        )

    @property
    def engine(self) -> Engine:
        """The shared loaded model (loaded on first access)."""
        if self._engine is None:
            self._engine = get_engine(self.engine_key())
        return self._engine

    def warm_up(self) -> None:
        """Load the model now rather than on the first call."""
        _ = self.engine

    def local_capabilities(self, *, chat: bool, ways: tuple[Way, ...]) -> Capabilities:
        """The capabilities both local model classes share; each declares ``chat``, the ways
        its calls take a constraint, and whether ``bind_tools`` gives tool calls (chat)."""
        return Capabilities(
            model=self,
            chat=chat,
            local=True,
            label=self.model,
            native_tools=chat,
            parallel=self.n_parallel or DEFAULT_PARALLEL,
            find_ways=lambda: ways,
            find_window=lambda: self.engine_key().n_ctx,
            counter=self.get_num_tokens,
        )

    def control_token_pattern(self) -> re.Pattern[str] | None:
        """The regex of this model's own control tokens, which text filled into a prompt must
        not carry (``orchestrator.prompts.templates`` finds models by this method: a binding
        forwards it to the model it wraps). Loads the engine if it was not yet."""
        pattern = getattr(self.engine, "special_pattern", None)
        return pattern if isinstance(pattern, re.Pattern) else None

    def get_num_tokens(self, text: str) -> int:
        """Token count with the model's own tokenizer (used by token-bounded memory)."""
        return self.engine.count_tokens(text)

    def sampling(self, overrides: Mapping[str, Any]) -> Sampling:
        """Sampling settings for one call; unknown per-call options are rejected."""
        for name in overrides:
            if name not in CALL_OPTIONS:
                raise unknown_option(name, CALL_OPTIONS, where=f"{type(self).__name__} call")
        values = {name: getattr(self, name) for name in CALL_OPTIONS} | dict(overrides)
        try:
            checked = CallOptions.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
            raise OptionError(
                f"invalid call option: {problems}", fix="use a value within the bound named"
            ) from None
        seed = checked.seed if checked.seed >= 0 else None
        return Sampling(**(checked.model_dump() | {"seed": seed}))

    def stop_list(self, stop: Sequence[str] | None, extra: Sequence[str] = ()) -> list[str]:
        """Stop sequences for a call: the object's, the call's, plus end-of-turn markers."""
        merged = [*(self.stop or []), *(stop or []), *extra]
        return list(dict.fromkeys(s for s in merged if s))

    def prompt_tokens(self, text: str) -> list[int]:
        """Tokens for a raw prompt; a BOS token is added once if the model expects one."""
        engine = self.engine
        tokens = engine.tokenize(text, add_bos=False, special=True)
        bos = engine.llama.token_bos()
        wants_bos = bool(engine.llama._model.add_bos_token()) and bos >= 0
        if wants_bos and (not tokens or tokens[0] != bos):
            tokens.insert(0, bos)
        return tokens

    def generate_text(
        self,
        tokens: list[int],
        overrides: Mapping[str, Any],
        stop: Sequence[str],
        usage: Usage,
        grammar: Any = None,
    ) -> Iterator[str]:
        """The one generation path both model classes stream from: options are checked now,
        failures inside llama.cpp are retried (``max_retries``), a ``timeout`` raises."""
        sampling = self.sampling(overrides)
        return self._timed(self._retried(tokens, sampling, stop, usage, grammar), sampling, usage)

    def _retried(
        self, tokens: list[int], sampling: Sampling, stop: Sequence[str], usage: Usage, grammar: Any
    ) -> Iterator[str]:
        """The engine stream, restarted from an empty KV cache while llama.cpp fails before
        the first piece (after it, a retry would repeat text the caller already has)."""
        attempts = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            retry=retry_if_exception(_is_engine_failure),
        )
        try:
            for attempt in attempts:
                with attempt:
                    retry = attempt.retry_state.attempt_number > 1
                    stream = self.engine.stream(
                        tokens,
                        sampling,
                        stop=stop,
                        grammar=grammar,
                        reuse_prefix=self.prefix_reuse and not retry,
                        usage=usage,
                    )
                    first = next(stream, None)
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            raise EngineError(
                f"llama.cpp failed while generating, on all {self.max_retries + 1} "
                f"attempt(s): {cause}",
                fix="raise max_retries to retry more, or lower n_batch / n_ctx if memory is "
                "short; rerun with verbose=True to see llama.cpp's own log",
            ) from cause
        if first is not None:
            yield first
            yield from stream

    def _timed(self, pieces: Iterator[str], sampling: Sampling, usage: Usage) -> Iterator[str]:
        yield from pieces
        if usage.finish_reason == "timeout":
            raise GenerationTimeoutError(
                f"generation was stopped at the {sampling.timeout:g} s timeout after "
                f"{usage.completion_tokens} tokens",
                fix="raise timeout= (on the model or per call), lower max_tokens, or use a "
                "smaller model / GPU offload",
            )

    def call_grammar(self, gbnf: str | None) -> Any:
        """A checked llama.cpp grammar for a per-call ``grammar=`` (GBNF text), or ``None``."""
        if gbnf is None:
            return None
        from orchestrator.llama.engine import make_grammar

        return make_grammar(self.engine, gbnf)

    def usage_dict(self, usage: Usage) -> dict[str, int]:
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "cached_tokens": usage.cached_tokens,
        }


def _is_engine_failure(exc: BaseException) -> bool:
    """A failure inside llama.cpp (llama-cpp-python raises a plain ``RuntimeError``), as
    opposed to an error in the input, which a retry would only repeat."""
    return type(exc) is RuntimeError
