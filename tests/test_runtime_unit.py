"""Unit tests of the runtime pieces that need no model weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import OptionError
from orchestrator.gguf_info import read_gguf_info
from orchestrator.llama.stops import StopMatcher
from orchestrator.prompts import (
    BUILTIN_FORMATS,
    ChatTemplateError,
    format_from_template,
    render_chat,
)
from orchestrator.settings import embedded_model_path, resolve_model_path


def feed_all(matcher: StopMatcher, pieces: list[str]) -> tuple[str, bool]:
    out = ""
    for piece in pieces:
        text, stopped = matcher.feed(piece)
        out += text
        if stopped:
            return out, True
    return out + matcher.flush(), False


def test_stop_matcher_cuts_at_stop_split_across_pieces() -> None:
    assert feed_all(StopMatcher(["Observation:"]), ["Thought: x\nObs", "erva", "tion: y"]) == (
        "Thought: x\n",
        True,
    )


def test_stop_matcher_releases_false_starts() -> None:
    out, stopped = feed_all(StopMatcher(["<|end|>"]), ["a <|", "en", "x b"])
    assert (out, stopped) == ("a <|enx b", False)


def test_stop_matcher_without_stops_passes_everything() -> None:
    assert feed_all(StopMatcher([]), ["a", "b"]) == ("ab", False)


def test_embedded_model_is_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORCHESTRATOR_MODEL", raising=False)
    assert resolve_model_path(None) == embedded_model_path()
    assert embedded_model_path().name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_env_var_then_argument_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_MODEL", "/env/model.gguf")
    assert resolve_model_path(None) == Path("/env/model.gguf")
    assert resolve_model_path("/arg/model.gguf") == Path("/arg/model.gguf")


def test_gguf_header_of_embedded_model() -> None:
    info = read_gguf_info(embedded_model_path())
    assert info.architecture == "llama"
    assert info.context_length == 8192
    assert info.n_layers == 30
    assert info.chat_template and "<|im_start|>" in info.chat_template


# missing / non-GGUF / truncated / unreadable files: tests/test_runtime_gguf.py


def test_model_class_rejects_misspelled_option() -> None:
    from orchestrator import ChatLlamaCpp, LlamaCpp

    for cls in (ChatLlamaCpp, LlamaCpp):
        with pytest.raises(OptionError, match="n_gpu_layer") as err:
            cls(n_gpu_layer=10)
        assert "n_gpu_layers" in str(err.value.fix)


def test_model_class_rejects_out_of_range_option() -> None:
    from pydantic import ValidationError

    from orchestrator import ChatLlamaCpp

    with pytest.raises(ValidationError, match="max_tokens"):
        ChatLlamaCpp(max_tokens=0)


def test_gpu_layers_without_gpu_backend_warns_with_count() -> None:
    from orchestrator import ChatLlamaCpp
    from orchestrator.llama.engine import gpu_backend_available

    if gpu_backend_available():
        pytest.skip("this llama.cpp build has a GPU backend; the CPU-only warning cannot occur")
    with pytest.warns(RuntimeWarning, match="0 of 30 layers"):
        ChatLlamaCpp(n_gpu_layers=-1)


def test_default_context_is_trained_size_capped() -> None:
    from orchestrator import ChatLlamaCpp

    assert ChatLlamaCpp().engine_key().n_ctx == 4096
    assert ChatLlamaCpp(n_ctx=8192).engine_key().n_ctx == 8192


def test_phi3_format_and_braces_are_data() -> None:
    text = render_chat(
        [{"role": "user", "content": "use {{var}} and {% raw %}"}], BUILTIN_FORMATS["phi3"]
    )
    assert text == "<|user|>\nuse {{var}} and {% raw %}<|end|>\n<|assistant|>\n"


def test_gguf_template_end_markers_detected() -> None:
    fmt = format_from_template("{{ '<|im_start|>' }}{{ '<|im_end|>' }}")
    assert "<|im_end|>" in fmt.end_of_turn


def test_broken_template_names_the_fix() -> None:
    fmt = format_from_template("{% for x in %}")
    with pytest.raises(ChatTemplateError, match="chat_format="):
        render_chat([{"role": "user", "content": "hi"}], fmt)
