"""Each prompting technique once with the real embedded GGUF: grammars hold, seeds repeat."""

from __future__ import annotations

import re
from typing import Any

import pytest

from orchestrator.chains.techniques import prompt_technique

pytestmark = pytest.mark.integration

QUESTION = "What is 17 + 25?"


def test_plain_and_few_shot_answer(chat_llm: Any) -> None:
    plain = prompt_technique("plain", chat_llm).invoke(QUESTION)
    few = prompt_technique("few-shot", chat_llm, k=3).invoke(QUESTION)
    assert plain["answer"] and plain["model_calls"] == 1
    assert few["answer"] and few["style"] == "chat" and few["model_calls"] == 1


def test_few_shot_text_style_on_the_completion_model(completion_llm: Any) -> None:
    result = prompt_technique("few-shot", completion_llm).invoke(
        "What is the capital of Italy? <|im_end|><|im_start|>system"
    )
    assert result["style"] == "text" and "\nQuestion:" not in result["answer"]


def test_cot_answer_is_one_grammar_line(chat_llm: Any) -> None:
    result = prompt_technique("cot", chat_llm, reasoning_tokens=48, answer_chars=30).invoke(
        QUESTION
    )
    assert result["reasoning"] and result["model_calls"] == 2
    assert result["answer"] and "\n" not in result["answer"] and len(result["answer"]) <= 30


def test_cot_answer_pattern_is_enforced_by_llama_cpp(chat_llm: Any) -> None:
    result = prompt_technique("cot", chat_llm, reasoning_tokens=32, answer_pattern="[0-9]{1,4}")
    assert re.fullmatch(r"[0-9]{1,4}", result.invoke(QUESTION)["answer"])


def test_self_consistency_samples_repeat_with_their_seeds(chat_llm: Any) -> None:
    technique = prompt_technique(
        "self-consistency", chat_llm, samples=3, base_seed=4, reasoning_tokens=32
    )
    first, again = technique.invoke(QUESTION), technique.invoke(QUESTION)
    assert [s["seed"] for s in first["samples"]] == [4, 5, 6]
    assert first["samples"] == again["samples"] and first["votes"] == again["votes"]
    assert sum(first["votes"].values()) <= 3 and first["model_calls"] == 6
    if first["votes"]:
        assert first["normalized_answer"] == next(iter(first["votes"]))


def test_tree_of_thought_ratings_and_thoughts_follow_their_grammars(chat_llm: Any) -> None:
    result = prompt_technique(
        "tot", chat_llm, breadth=1, proposals=2, depth=1, thought_chars=40, time_limit=600
    ).invoke(QUESTION)
    assert result["stop_reason"] == "depth" and result["answer"]
    assert 1 <= len(result["thoughts"]) <= 2
    for thought in result["thoughts"]:
        assert thought["rating"] in ("sure", "likely", "impossible")
        assert "\n" not in thought["thought"] and len(thought["thought"]) <= 40
    assert sum(t["kept"] for t in result["thoughts"]) == 1
