"""Unit tests of the generation loop's parts: text assembly (stops held back over token
boundaries, UTF-8 at a cut), one set of sampling defaults, and the engine's defusing rule."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator import ChatLlamaCpp
from orchestrator.llama.base import CallOptions
from orchestrator.llama.engine import Sampling
from orchestrator.llama.stops import TextAssembler
from orchestrator.prompts.safety import ZERO_WIDTH_SPACE


def assemble(pieces: list[bytes], stops: list[str]) -> tuple[list[str], bool]:
    text = TextAssembler(stops)
    out = [text.feed(piece) for piece in pieces]
    out.append(text.finish())
    return out, text.stopped


def test_a_marker_split_over_tokens_is_held_back_and_never_shown() -> None:
    pieces = [b"4", b"\n", b"<", b"|", b"assistant", b"|", b">", b"\nIt is 5"]
    out, stopped = assemble(pieces, ["<|assistant|>", "<|end|>"])
    assert stopped and "".join(out) == "4\n"
    # nothing of the marker was emitted while it was still growing
    assert out[2:] == ["", "", "", "", "", "", ""]


def test_held_back_text_that_is_no_marker_after_all_is_shown() -> None:
    out, stopped = assemble([b"a <", b"|", b"x"], ["<|assistant|>"])
    assert not stopped and out == ["a ", "", "<|x", ""]
    out, stopped = assemble([b"a <", b"|"], ["<|assistant|>"])
    assert not stopped and "".join(out) == "a <|", "a stream that ends mid-marker keeps it"


def test_multibyte_character_over_tokens_and_incomplete_at_the_cut() -> None:
    cat = "🐈".encode()
    out, _ = assemble([b"a", cat[:2], cat[2:], "東".encode()[:1]], [])
    assert out == ["a", "", "🐈", "", ""], "the cut leaves an incomplete character: dropped"
    out, _ = assemble([b"x\xf0y"], [])
    assert "".join(out) == "xy", "a lead byte the model never continued is dropped too"


def test_sampling_defaults_are_defined_once() -> None:
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(Sampling))
    with pytest.raises(TypeError):
        Sampling()  # type: ignore[call-arg]
    defaults = CallOptions().model_dump() | {"seed": None}
    assert dataclasses.asdict(ChatLlamaCpp().sampling({})) == defaults


@pytest.mark.integration
def test_engine_defuse_breaks_model_and_generic_control_tokens() -> None:
    engine = ChatLlamaCpp().engine
    own = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<repo_name>"]
    generic = ["<|user|>", "<|assistant|>", "[INST]", "<start_of_turn>", "<|eot_id|>"]
    defused = engine.defuse_specials(" ".join([*own, *generic]))
    for marker in own + generic:
        assert marker not in defused
        assert marker[0] + ZERO_WIDTH_SPACE + marker[1:] in defused
    controls = set(engine.control_tokens)
    assert not controls & set(engine.tokenize(defused, special=True))
    assert controls & set(engine.tokenize(" ".join(own), special=True)), "undefused: parsed"
    assert engine.defuse_specials(defused) == defused, "idempotent"
