"""LangChain's standard chat-model parameters on a local model (issue 10.15, 18.9): ``model``,
``temperature``, ``max_tokens``, ``timeout``, ``stop``, ``max_retries`` are accepted with a
documented meaning, ``api_key`` is accepted and ignored (one warning per process, the key is
not kept); misspellings and options that name a hosted endpoint stay errors.

Retry and timeout logic is tested on a scripted engine (no weights); the last tests use the
real embedded model."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from langchain_tests.unit_tests.chat_models import ChatModelTests
from pydantic import ValidationError

from orchestrator import ChatLlamaCpp, LlamaCpp
from orchestrator.errors import ContextOverflowError, OptionError
from orchestrator.llama.base import EngineError, GenerationTimeoutError
from orchestrator.llama.engine import Sampling, Usage
from orchestrator.llama.standard_names import warn_api_key_ignored
from orchestrator.models import DEFAULT_SAMPLING
from orchestrator.settings import embedded_model_path


class ScriptedEngine:
    """Fails the first ``failures`` streams with ``error``, then yields ``pieces``."""

    def __init__(
        self,
        failures: int = 0,
        error: BaseException | None = None,
        pieces: Sequence[str] = ("ok",),
        finish_reason: str = "stop",
    ) -> None:
        self.failures, self.pieces, self.finish_reason = failures, list(pieces), finish_reason
        self.error = error or RuntimeError("llama_decode returned 1")
        self.reuse_prefix: list[bool] = []

    def stream(
        self,
        tokens: Sequence[int],
        sampling: Sampling,
        *,
        stop: Sequence[str],
        grammar: Any,
        reuse_prefix: bool,
        usage: Usage,
    ) -> Iterator[str]:
        self.reuse_prefix.append(reuse_prefix)
        if len(self.reuse_prefix) <= self.failures:
            raise self.error
        usage.completion_tokens = len(self.pieces)
        usage.finish_reason = self.finish_reason
        yield from self.pieces


def scripted(engine: ScriptedEngine, **options: Any) -> ChatLlamaCpp:
    chat = ChatLlamaCpp(**options)
    chat._engine = engine  # type: ignore[assignment]
    return chat


# --- the suites' standard set ---------------------------------------------------------------


def test_the_suites_standard_params_are_accepted_with_their_values() -> None:
    standard = ChatModelTests.standard_chat_model_params.fget(None)  # type: ignore[attr-defined]
    chat = ChatLlamaCpp(**standard)
    assert {name: getattr(chat, name) for name in standard} == standard
    assert chat.max_retries == 2


def test_misspellings_and_other_names_are_still_rejected() -> None:
    with pytest.raises(OptionError, match="did you mean 'max_retries'"):
        ChatLlamaCpp(max_retry=2)
    with pytest.raises(OptionError, match="did you mean 'timeout'"):
        ChatLlamaCpp(timeoutt=5)
    with pytest.raises(OptionError, match="unknown option 'frobnicate'"):
        LlamaCpp(frobnicate=True)


@pytest.fixture
def fresh_warning() -> Iterator[None]:
    """The ignored-key warning as in a new process (it is shown once per process)."""
    warn_api_key_ignored.cache_clear()
    yield
    warn_api_key_ignored.cache_clear()


@pytest.mark.usefixtures("fresh_warning")
def test_api_key_is_ignored_with_one_warning_for_both_classes() -> None:
    path = str(embedded_model_path().resolve())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chat = ChatLlamaCpp(api_key="sk-test", temperature=0)
        llm = LlamaCpp(api_key="sk-other")  # the same rule (LlamaSettings), no second warning
        ChatLlamaCpp(api_key="sk-third")
    assert [str(w.message).split(":")[0] for w in caught] == ["api_key= is ignored"]
    assert caught[0].category is UserWarning
    assert "remote_chat_model" in str(caught[0].message)
    for model in (chat, llm):
        assert model.model_path == path
        assert not hasattr(model, "api_key")
        assert "sk-" not in repr(model) and "sk-" not in str(model.model_dump())


@pytest.mark.usefixtures("fresh_warning")
def test_an_empty_api_key_is_not_warned_about() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ChatLlamaCpp(api_key=None)
    assert caught == []


@pytest.mark.parametrize("cls", [ChatLlamaCpp, LlamaCpp])
@pytest.mark.parametrize(
    "name",
    ["base_url", "api_base", "openai_api_base", "organization", "openai_organization",
     "default_headers"],
)
def test_endpoint_options_are_rejected_with_the_reason(
    cls: type[ChatLlamaCpp] | type[LlamaCpp], name: str
) -> None:
    with pytest.raises(OptionError) as info:
        cls(**{name: "http://127.0.0.1:8080/v1"})
    assert name in info.value.message and "calls no endpoint" in info.value.message
    assert info.value.fix and "remote_chat_model" in info.value.fix


@pytest.mark.usefixtures("fresh_warning")
def test_chatopenais_other_key_name_is_ignored_the_same_way() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chat = ChatLlamaCpp(openai_api_key="sk-test", api_key="")
    assert [str(w.message).split(":")[0] for w in caught] == ["api_key= is ignored"]
    assert "sk-" not in str(chat.model_dump())


@pytest.mark.parametrize("cls", [ChatLlamaCpp, LlamaCpp])
def test_one_answer_per_call_is_accepted_and_more_is_explained(
    cls: type[ChatLlamaCpp] | type[LlamaCpp],
) -> None:
    cls(n=1)
    for n in (2, 0, True):
        with pytest.raises(OptionError, match=f"got n={n!r}: a local model generates one") as info:
            cls(n=n)
        assert info.value.fix and ".batch(" in info.value.fix


@pytest.mark.parametrize("value", [-1, -5])
def test_max_retries_must_be_non_negative(value: int) -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        ChatLlamaCpp(max_retries=value)


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="greater than 0"):
        ChatLlamaCpp(timeout=0)


# --- model = model_path ---------------------------------------------------------------------


@pytest.mark.parametrize("cls", [ChatLlamaCpp, LlamaCpp])
def test_model_is_the_model_file(cls: type[ChatLlamaCpp] | type[LlamaCpp]) -> None:
    path = str(embedded_model_path().resolve())
    llm = cls(model=path)
    assert (llm.model_path, llm.model) == (path, path)


@pytest.mark.parametrize("cls", [ChatLlamaCpp, LlamaCpp])
def test_model_name_is_model_too(cls: type[ChatLlamaCpp] | type[LlamaCpp]) -> None:
    path = str(embedded_model_path().resolve())
    assert cls(model_name=path).model_path == path
    assert cls(model_name=path, model=path).model_path == path
    with pytest.raises(OptionError, match=re.escape("model_name='/elsewhere/other.gguf'")):
        cls(model=path, model_name="/elsewhere/other.gguf")


def test_model_and_a_different_model_path_conflict() -> None:
    path = str(embedded_model_path().resolve())
    with pytest.raises(OptionError, match="pass one of them"):
        ChatLlamaCpp(model="/elsewhere/other.gguf", model_path=path)
    assert ChatLlamaCpp(model=path, model_path=path).model_path == path


# --- max_retries ----------------------------------------------------------------------------


def test_engine_failures_are_retried_from_an_empty_cache() -> None:
    engine = ScriptedEngine(failures=2)
    chat = scripted(engine, max_retries=2)
    assert list(chat.generate_text([1, 2], {}, [], Usage())) == ["ok"]
    assert engine.reuse_prefix == [True, False, False]


def test_failures_past_max_retries_are_an_engine_error() -> None:
    engine = ScriptedEngine(failures=5)
    chat = scripted(engine, max_retries=1)
    with pytest.raises(EngineError, match="on all 2 attempt") as info:
        list(chat.generate_text([1], {}, [], Usage()))
    assert isinstance(info.value.__cause__, RuntimeError)
    assert len(engine.reuse_prefix) == 2


def test_two_retries_by_default_as_for_every_model() -> None:
    """The default is SamplingOptions' (2, as for a served model), not a local one of its own."""
    assert scripted(ScriptedEngine()).max_retries == DEFAULT_SAMPLING.max_retries == 2
    engine = ScriptedEngine(failures=3)
    with pytest.raises(EngineError, match="on all 3 attempt"):
        list(scripted(engine).generate_text([1], {}, [], Usage()))
    assert len(engine.reuse_prefix) == 3


def test_input_errors_are_not_retried() -> None:
    engine = ScriptedEngine(failures=9, error=ContextOverflowError(5000, 4096))
    with pytest.raises(ContextOverflowError):
        list(scripted(engine, max_retries=3).generate_text([1], {}, [], Usage()))
    assert len(engine.reuse_prefix) == 1


# --- timeout --------------------------------------------------------------------------------


def test_timeout_raises_after_the_text_so_far() -> None:
    engine = ScriptedEngine(pieces=["a", "b"], finish_reason="timeout")
    chat = scripted(engine, timeout=2.5)
    pieces = chat.generate_text([1], {}, [], Usage())
    assert [next(pieces), next(pieces)] == ["a", "b"]
    with pytest.raises(GenerationTimeoutError, match=r"2\.5 s timeout after 2 tokens") as info:
        next(pieces)
    assert isinstance(info.value, TimeoutError)
    assert info.value.fix and "timeout=" in info.value.fix


def test_a_per_call_timeout_overrides_the_model_one() -> None:
    engine = ScriptedEngine(finish_reason="timeout")
    chat = scripted(engine, timeout=60)
    with pytest.raises(GenerationTimeoutError, match=r"0\.5 s timeout"):
        list(chat.generate_text([1], {"timeout": 0.5}, [], Usage()))


@pytest.mark.integration
def test_real_model_stops_at_the_timeout() -> None:
    chat = ChatLlamaCpp(temperature=0, max_tokens=40, max_retries=2, timeout=1e-9)
    with pytest.raises(GenerationTimeoutError, match="after 1 tokens"):
        chat.invoke("Count to twenty.")


@pytest.mark.integration
def test_real_model_answers_with_the_standard_params() -> None:
    standard = ChatModelTests.standard_chat_model_params.fget(None)  # type: ignore[attr-defined]
    reply = ChatLlamaCpp(**standard, seed=0).invoke("Say hello.")
    assert isinstance(reply.content, str) and reply.content.strip()
    assert reply.usage_metadata and 0 < reply.usage_metadata["output_tokens"] <= 100
