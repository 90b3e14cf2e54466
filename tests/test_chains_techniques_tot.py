"""Tree-of-thought with scripted models: beam search, bounds, ratings, the time limit."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.chains.techniques import RATINGS, TreeOfThought
from orchestrator.testing import ScriptedChatModel

SLI = 'root ::= "sure" | "likely" | "impossible"'


def _full_search_replies() -> list[str]:
    # level 1: two proposals for the empty path, then their ratings
    # level 2: two proposals for each kept path, then four ratings; then the answer
    return [
        "add the tens",
        "guess",
        "likely",
        "sure",
        "guess 40",
        "guess 42",
        "tens make 30",
        "ones make 12",
        "impossible",
        "likely",
        "sure",
        "likely",
        "Answer: 42",
    ]


def test_beam_search_keeps_the_best_rated_paths() -> None:
    model = ScriptedChatModel(replies=_full_search_replies())
    result = TreeOfThought(llm=model, breadth=2, proposals=2, depth=2).invoke("What is 17 + 25?")
    assert result["stop_reason"] == "depth" and result["answer"] == "42"
    assert result["model_calls"] == 13
    # "guess" was rated sure, so it leads the beam; its children come first at level 2
    assert [t["thought"] for t in result["thoughts"]] == [
        "add the tens",
        "guess",
        "guess 40",
        "guess 42",
        "tens make 30",
        "ones make 12",
    ]
    level2 = result["thoughts"][2:]
    assert [t["path"] for t in level2] == [["guess"]] * 2 + [["add the tens"]] * 2
    assert [t["rating"] for t in level2] == ["impossible", "likely", "sure", "likely"]
    assert [t["kept"] for t in level2] == [False, True, True, False]  # stable among ties
    assert result["best_path"] == ["add the tens", "tens make 30"]
    assert result["reasoning"] == "1. add the tens\n2. tens make 30"
    assert "1. add the tens\n2. tens make 30" in str(model.calls[-1]["messages"][-1].content)


def test_proposals_are_seeded_and_bounded_ratings_greedy_under_the_grammar() -> None:
    model = ScriptedChatModel(replies=_full_search_replies(), constraint="grammar")
    TreeOfThought(llm=model, base_seed=100, thought_chars=50).invoke("What is 17 + 25?")
    proposals = [c["kwargs"] for c in model.calls if "seed" in c["kwargs"]]
    assert [p["seed"] for p in proposals] == [100, 101, 102, 103, 104, 105]
    assert {p["temperature"] for p in proposals} == {0.7}
    assert all(p["grammar"] == "root ::= [^\\n \\t] [^\\n]{0,49}" for p in proposals)
    assert all(p["max_tokens"] > 50 for p in proposals)
    ratings = [c["kwargs"] for c in model.calls if c["kwargs"].get("grammar") == SLI]
    assert len(ratings) == 6 and {r["temperature"] for r in ratings} == {0.0}


def test_bounds_hold_for_every_width_and_depth() -> None:
    for breadth, proposals, depth in [(1, 1, 1), (1, 3, 2), (3, 2, 3)]:
        model = ScriptedChatModel(replies=[f"t{i}" if i % 2 else "sure" for i in range(200)])
        model.replies = [r for i in range(100) for r in (f"thought {i}", "likely")]
        result = TreeOfThought(
            llm=model, breadth=breadth, proposals=proposals, depth=depth, time_limit=1e9
        ).invoke("q")
        for level in range(1, depth + 1):
            at = [t for t in result["thoughts"] if t["level"] == level]
            assert len(at) <= min(breadth, proposals ** (level - 1)) * proposals
            assert sum(t["kept"] for t in at) <= breadth
            assert all(len(t["path"]) == level - 1 for t in at)
        assert len(result["best_path"]) == depth and result["stop_reason"] == "depth"


def test_time_limit_stops_the_search_and_still_answers() -> None:
    model = ScriptedChatModel(replies=["first idea", "second idea", "likely", "Answer: 9"])
    clock = lambda: 10.0 * len(model.calls)  # noqa: E731 - ten "seconds" per model call
    result = TreeOfThought(llm=model, depth=3, time_limit=25.0, clock=clock).invoke("q")
    assert result["stop_reason"] == "time_limit"
    assert result["model_calls"] == 4  # two proposals, one rating, then the answer
    assert result["thoughts"][0]["rating"] == "likely" and result["thoughts"][1]["rating"] is None
    assert result["best_path"] == ["first idea"] and result["answer"] == "9"
    assert result["elapsed_s"] == 40.0


def test_time_limit_before_any_thought_answers_from_the_question() -> None:
    model = ScriptedChatModel(replies=["Answer: 3"])
    ticks = iter([0.0, 5.0, 5.0, 5.0])
    result = TreeOfThought(llm=model, time_limit=1.0, clock=lambda: next(ticks)).invoke("q")
    assert result["stop_reason"] == "time_limit" and result["thoughts"] == []
    assert result["best_path"] == [] and result["answer"] == "3" and result["model_calls"] == 1


def test_repeated_sibling_thoughts_are_dropped() -> None:
    model = ScriptedChatModel(replies=["Same idea.", "same idea", "sure", "Answer: 1"])
    result = TreeOfThought(llm=model, depth=1).invoke("q")
    assert [t["thought"] for t in result["thoughts"]] == ["Same idea."]


def test_one_to_ten_scale() -> None:
    model = ScriptedChatModel(replies=["a", "b", "3", "10", "Answer: b"], constraint="grammar")
    result = TreeOfThought(llm=model, depth=1, breadth=1, rating="1-10").invoke("q")
    assert [t["score"] for t in result["thoughts"]] == [3.0, 10.0]
    assert result["best_path"] == ["b"]
    assert model.calls[2]["kwargs"]["grammar"] == RATINGS["1-10"][1]
    assert "a number from 1 (impossible) to 10 (sure)" in str(
        model.calls[2]["messages"][-1].content
    )


def test_a_rating_outside_the_scale_scores_zero() -> None:
    model = ScriptedChatModel(replies=["a", "b", "maybe", "sure", "Answer: b"])
    result = TreeOfThought(llm=model, depth=1).invoke("q")
    assert [t["score"] for t in result["thoughts"]] == [0.0, 20.0]


def test_options_are_bounded() -> None:
    with pytest.raises(ValidationError, match="time_limit"):
        TreeOfThought(llm=ScriptedChatModel(), time_limit=0)
    with pytest.raises(ValidationError, match="depth"):
        TreeOfThought(llm=ScriptedChatModel(), depth=0)
    with pytest.raises(ValidationError, match="rating"):
        TreeOfThought(llm=ScriptedChatModel(), rating="0-5")
