"""The tolerant ReAct parser and the step grammars (text only; no model)."""

from __future__ import annotations

import pytest
from langchain_core.agents import AgentAction, AgentFinish
from langchain_core.exceptions import OutputParserException

from orchestrator.agents.grammar import final_grammar, step_grammar
from orchestrator.agents.parser import MISSING_ACTION, MISSING_INPUT, parse_step
from orchestrator.errors import OptionError

TOOLS = ["calculator", "web_search"]


def _action(text: str) -> AgentAction:
    result = parse_step(text, TOOLS)
    assert isinstance(result, AgentAction)
    return result


def test_completion_style_step() -> None:
    step = _action(" I must multiply.\nAction: calculator\nAction Input: 37593 * 67\n")
    assert (step.tool, step.tool_input) == ("calculator", "37593 * 67")
    assert step.log == " I must multiply.\nAction: calculator\nAction Input: 37593 * 67"


def test_chat_style_step_with_drift_is_cleaned() -> None:
    step = _action('Thought: Thought: maths\nAction: Calculator\nAction Input: "2+2"\n')
    assert (step.tool, step.tool_input) == ("calculator", "2+2")
    assert step.log.startswith(" maths\n")


def test_only_the_first_action_is_kept_and_imagined_observations_dropped() -> None:
    text = (
        " Search first.\nAction: web_search\nAction Input: capital of France\n"
        "Observation: Paris\nThought: now maths\nAction: calculator\nAction Input: 1+1"
    )
    step = _action(text)
    assert (step.tool, step.tool_input) == ("web_search", "capital of France")
    assert "Observation" not in step.log


def test_final_answer_before_an_action_wins() -> None:
    result = parse_step(" I know.\nFinal Answer: 42\nAction: calculator\nAction Input: 1", TOOLS)
    assert isinstance(result, AgentFinish)
    assert result.return_values == {"output": "42"}


def test_a_final_answer_ends_where_the_model_starts_a_new_question() -> None:
    result = parse_step(" x\nFinal Answer: 7\nmore lines\n\nQuestion: what else?", TOOLS)
    assert isinstance(result, AgentFinish)
    assert result.return_values == {"output": "7\nmore lines"}


def test_action_before_a_final_answer_wins() -> None:
    step = _action(" x\nAction: calculator\nAction Input: 1+1\nFinal Answer: 2")
    assert step.tool_input == "1+1"


@pytest.mark.parametrize(
    ("text", "tool", "tool_input"),
    [
        ("Action: calculator(3*4)", "calculator", "3*4"),
        ("Action: [web_search]\nAction Input: `weather`", "web_search", "weather"),
        ("Action: something_else\nAction Input: hi", "something_else", "hi"),
    ],
)
def test_common_drift(text: str, tool: str, tool_input: str) -> None:
    step = _action(text)
    assert (step.tool, step.tool_input) == (tool, tool_input)


@pytest.mark.parametrize(
    ("text", "observation"),
    [("just words", MISSING_ACTION), ("Action: calculator\nThought: hmm", MISSING_INPUT)],
)
def test_unparseable_output_carries_feedback_for_the_model(text: str, observation: str) -> None:
    with pytest.raises(OutputParserException) as info:
        parse_step(text, TOOLS)
    assert info.value.observation == observation
    assert info.value.send_to_llm and info.value.llm_output == text


def test_step_grammar_lists_only_the_tools_and_typed_inputs() -> None:
    gbnf = step_grammar(TOOLS, thought_prefix=True, input_rules={"calculator": "[0-9+]{1,5}"})
    assert gbnf.startswith('root ::= "Thought: " thought')
    assert 'tool ::= "web_search"' in gbnf
    assert '"Action: " "calculator" "\\nAction Input: " typed0 "\\n"' in gbnf
    assert "typed0 ::= [0-9+]{1,5}" in gbnf
    assert "Observation" not in gbnf
    completion = step_grammar(TOOLS, thought_prefix=False)
    assert completion.startswith('root ::= " "? thought')


def test_grammar_escapes_tool_names_and_rejects_bad_ones() -> None:
    assert 'tool ::= "say \\"hi\\""' in step_grammar(['say "hi"'], thought_prefix=False)
    with pytest.raises(OptionError):
        step_grammar([], thought_prefix=False)
    with pytest.raises(OptionError):
        step_grammar(["two\nlines"], thought_prefix=False)


def test_final_grammar_admits_no_action() -> None:
    gbnf = final_grammar(answer_prefix=False)
    assert "Action" not in gbnf and gbnf.startswith('root ::= " "? answer')
