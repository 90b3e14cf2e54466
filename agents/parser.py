"""Reading a ReAct step out of model text, tolerantly.

Grammar-constrained llama.cpp models always produce the exact format; other models drift
(``Thought:`` repeated, ``Action: calculator(2+2)``, quoted inputs, a second action they
imagined after their own ``Observation:``). The parser keeps only the first action, cleans the
usual drift, and raises :class:`~langchain_core.exceptions.OutputParserException` with a
message written for the model (the parse-error feedback ``handle_parsing_errors`` sends back).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.agents import AgentAction, AgentFinish
from langchain_core.exceptions import OutputParserException

FINAL_ANSWER = "Final Answer:"
MISSING_ACTION = "Invalid Format: Missing 'Action:' after 'Thought:'"
MISSING_INPUT = "Invalid Format: Missing 'Action Input:' after 'Action:'"

_ACTION = re.compile(r"^[ \t]*Action\s*\d*\s*:[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_INPUT = re.compile(r"^[ \t]*Action\s*\d*\s*Input\s*\d*\s*:[ \t]*", re.MULTILINE)
_FINAL = re.compile(r"Final\s+Answer\s*:", re.IGNORECASE)
_END_OF_INPUT = re.compile(r"\n\s*(Observation|Thought|Action|Final Answer)\s*:", re.IGNORECASE)
#: Where a final answer ends: the model went on to invent a further step, either as a line
#: starting with a ReAct label, or (capitalised, as the format writes it) run on after the
#: answer on the same line.
_ANSWER_END = re.compile(
    r"(?:^|\n)[ \t]*(?i:Question|Thought|Observation|Final\s+Answer|Action(?:\s*\d*\s*Input)?)"
    r"\s*\d*\s*:"
    r"|(?<=\s)(?:Thought|Observation|Final Answer|Action(?: Input)?)\s*\d*\s*:"
)
_INLINE_CALL = re.compile(r"^([\w\-. ]+?)\s*[(\[](.*)[)\]]$", re.DOTALL)
_THOUGHT_HEAD = re.compile(r"^\s*(Thought\s*:\s*)+", re.IGNORECASE)
_FINAL_HEAD = re.compile(r"^\s*(Final\s+Answer\s*:\s*)+", re.IGNORECASE)


def clean_thought(text: str) -> str:
    """The thought without the ``Thought:`` labels a model may repeat."""
    return _THOUGHT_HEAD.sub("", text).strip()


def clean_answer(text: str) -> str:
    """A final answer without the further steps a model may invent after it.

    ``Final Answer: 4\nThought: ...\nAction: ...`` is ``4``: whatever follows the first ReAct
    label (``Thought:``, ``Action:``, ``Action Input:``, ``Observation:``, ``Question:``,
    another ``Final Answer:``) is not part of the answer. Labels the answer merely starts with
    are dropped first.
    """
    body = _FINAL_HEAD.sub("", text.strip())
    return _ANSWER_END.split(body, maxsplit=1)[0].strip()


def clean_input(text: str) -> str:
    """An action input without surrounding whitespace, quotes or backticks."""
    value = text.strip()
    for quote in ('"', "'", "`"):
        if len(value) >= 2 and value[0] == quote and value[-1] == quote:
            value = value[1:-1].strip()
    return value


def match_tool(name: str, tool_names: Sequence[str]) -> str:
    """``name`` as one of ``tool_names`` when it differs only in case, quotes or brackets."""
    cleaned = clean_input(name).strip("[]*").strip()
    if cleaned in tool_names:
        return cleaned
    lowered = {t.lower(): t for t in tool_names}
    return lowered.get(cleaned.lower(), cleaned)


def canonical_log(thought: str, tool: str, tool_input: str) -> str:
    """The step as the scratchpad shows it: the prompt ends with ``Thought:``, so no label."""
    head = f" {thought}" if thought else ""
    return f"{head}\nAction: {tool}\nAction Input: {tool_input}"


def parse_step(text: str, tool_names: Sequence[str] = ()) -> AgentAction | AgentFinish:
    """One step: the first action, or the final answer, whichever the model wrote first."""
    action = _ACTION.search(text)
    while action and _INPUT.match(text, action.start()):
        action = _ACTION.search(text, action.end())
    final = _FINAL.search(text)
    if final and (action is None or final.start() < action.start()):
        thought = clean_thought(text[: final.start()])
        answer = clean_answer(text[final.end() :])
        log = f" {thought}\nFinal Answer: {answer}" if thought else f" Final Answer: {answer}"
        return AgentFinish({"output": answer}, log=log)
    if action is None:
        raise OutputParserException(
            f"Could not parse LLM output: `{text.strip()}`",
            observation=MISSING_ACTION,
            llm_output=text,
            send_to_llm=True,
        )
    thought = clean_thought(text[: action.start()])
    tool, tool_input = _action_parts(text, action, tool_names)
    return AgentAction(tool, tool_input, canonical_log(thought, tool, tool_input))


def _action_parts(text: str, action: re.Match[str], tool_names: Sequence[str]) -> tuple[str, str]:
    name = action.group(1)
    rest = text[action.end() :]
    given = _INPUT.search(rest)
    before_input = rest[: given.start()] if given else rest
    if given is None or _END_OF_INPUT.search(before_input):
        inline = _INLINE_CALL.match(name.strip())
        if inline:
            return match_tool(inline.group(1), tool_names), clean_input(inline.group(2))
        raise OutputParserException(
            f"Could not parse LLM output: `{text.strip()}`",
            observation=MISSING_INPUT,
            llm_output=text,
            send_to_llm=True,
        )
    value = rest[given.end() :]
    end = _END_OF_INPUT.search("\n" + value)
    if end:
        value = ("\n" + value)[: end.start()]
    return match_tool(name, tool_names), clean_input(value)
