"""GBNF grammars that make a llama.cpp model write one well-formed ReAct step.

A step is ``Thought: ...`` followed by either ``Action: <tool>`` + ``Action Input: ...`` or
``Final Answer: ...``. The tool name is one of the literal names, so a small model cannot
invent a tool or forget a field; every line is bounded so a rambling model still finishes the
step inside its token budget. Once the step is complete the grammar admits only end of
generation, so the model never writes its own ``Observation:``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from orchestrator.errors import OptionError
from orchestrator.llama.gbnf import gbnf_literal

#: Longest thought / action input / final answer line the grammar admits (characters).
THOUGHT_CHARS = 300
INPUT_CHARS = 200
ANSWER_CHARS = 400
#: A token budget no step the grammar admits can exceed (every token writes at least one
#: character of a line; the labels add a few dozen), so a constrained step is never cut off.
STEP_TOKEN_BUDGET = THOUGHT_CHARS + max(INPUT_CHARS, ANSWER_CHARS) + 64


def _line(max_chars: int) -> str:
    # A non-blank first character, then any characters up to the end of the line.
    return f"[^\\n \\t] [^\\n]{{0,{max_chars - 1}}}"


def arithmetic_gbnf(
    functions: Mapping[str, int], constants: Sequence[str], *, max_items: int = 80
) -> str:
    """A GBNF expression admitting arithmetic over ``functions`` (name -> number of arguments)
    and ``constants``: digits, operators, parentheses, and each name as a literal.

    Derived from the calculator's own table (see ``agents.tools.calculator.callable_names``),
    so every function the calculator accepts can be written under the grammar, and no other:
    a second hand-written list drifts (it once lacked ``arctan2``, ``log1p`` and ``sinh``).
    A comma is admitted only when some function takes several arguments.
    """
    for name in [*functions, *constants]:
        if not name.isidentifier():
            raise OptionError(f"{name!r} is not a name an expression can use", fix="rename it")
    chars = "0-9.+*/%()^ " + ("," if any(n > 1 for n in functions.values()) else "") + "-"
    names = sorted(functions, key=lambda n: (-len(n), n))
    literals = [gbnf_literal(f"{n}(") for n in names]
    literals += [gbnf_literal(c) for c in sorted(constants, key=lambda c: (-len(c), c))]
    return f"( [{chars}] | {' | '.join(literals)} ){{1,{max_items}}}"


#: Key in a tool's ``metadata`` holding a GBNF expression its ``Action Input`` must match.
INPUT_GBNF_KEY = "input_gbnf"


def step_grammar(
    tool_names: Sequence[str],
    *,
    thought_prefix: bool,
    input_rules: Mapping[str, str] | None = None,
) -> str:
    """Grammar for one step: a thought, then exactly one action or the final answer.

    ``thought_prefix``: whether the model must write ``Thought:`` itself (a chat model starts a
    new turn) or the prompt already ends with it (a completion model continues the text).
    ``input_rules``: per tool, a GBNF expression its input must match (e.g. only arithmetic for
    the calculator); other tools take any single line.
    """
    names = [n for n in dict.fromkeys(tool_names) if n]
    if not names:
        raise OptionError(
            "a ReAct step grammar needs at least one tool name",
            fix="give the agent at least one tool",
        )
    for name in names:
        if "\n" in name:
            raise OptionError(f"tool name {name!r} contains a newline", fix="rename the tool")
    head = '"Thought: "' if thought_prefix else '" "?'
    rules = {n: r for n, r in (input_rules or {}).items() if n in names}
    plain = [n for n in names if n not in rules]
    actions = ['"Action: " tool "\\nAction Input: " input "\\n"'] if plain else []
    typed = []
    for i, name in enumerate(rules):
        actions.append(f'"Action: " {gbnf_literal(name)} "\\nAction Input: " typed{i} "\\n"')
        typed.append(f"typed{i} ::= {rules[name]}")
    lines = [
        f'root ::= {head} thought "\\n" ( action | final )',
        f"thought ::= {_line(THOUGHT_CHARS)}",
        f"action ::= {' | '.join(actions)}",
        *typed,
    ]
    if plain:
        lines.append(f"tool ::= {' | '.join(gbnf_literal(n) for n in plain)}")
        lines.append(f"input ::= {_line(INPUT_CHARS)}")
    lines.append('final ::= "Final Answer: " answer "\\n"?')
    lines.append(f"answer ::= {_line(ANSWER_CHARS)}")
    return "\n".join(lines)


def final_grammar(*, answer_prefix: bool) -> str:
    """Grammar for the last call once a limit is hit: only a final answer, no action.

    ``answer_prefix``: whether the model must write ``Final Answer:`` itself or the prompt
    already ends with it.
    """
    head = '"Final Answer: "' if answer_prefix else '" "?'
    return "\n".join(
        [
            f'root ::= {head} answer "\\n"?',
            f"answer ::= {_line(ANSWER_CHARS)}",
        ]
    )


#: The ``action`` value that ends a JSON step with its ``action_input`` as the final answer.
FINAL_ACTION = "Final Answer"


def step_schema(tool_names: Sequence[str]) -> dict[str, object]:
    """The JSON-schema form of :func:`step_grammar`, for servers that apply schemas but not
    grammars: a thought, then a tool name (or ``Final Answer``) and its input, each bounded as
    in the grammar. :func:`step_from_json` turns a reply into the ReAct text the parser reads.
    """
    names = [n for n in dict.fromkeys(tool_names) if n]
    if not names:
        raise OptionError("a ReAct step needs at least one tool name", fix="add a tool")
    return {
        "type": "object",
        "properties": {
            "thought": {"type": "string", "maxLength": THOUGHT_CHARS},
            "action": {"type": "string", "enum": [*names, FINAL_ACTION]},
            "action_input": {"type": "string", "maxLength": max(INPUT_CHARS, ANSWER_CHARS)},
        },
        "required": ["thought", "action", "action_input"],
        "additionalProperties": False,
    }


def final_schema() -> dict[str, object]:
    """The JSON-schema form of :func:`final_grammar`: only an answer."""
    return {
        "type": "object",
        "properties": {"answer": {"type": "string", "maxLength": ANSWER_CHARS}},
        "required": ["answer"],
        "additionalProperties": False,
    }


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def step_from_json(text: str) -> str:
    """A JSON step (see :func:`step_schema`) as the ReAct text a grammar step would be, so the
    scratchpad, parser and trace are the same in both modes. Text that is not such an object
    (cut off by the token budget) is returned as is and fails to parse, which says so."""
    try:
        data = json.loads(text)
        thought, action = _one_line(data["thought"]), _one_line(data["action"])
        argument = _one_line(data["action_input"])
    except (ValueError, TypeError, KeyError):
        return text
    if action == FINAL_ACTION:
        return f"Thought: {thought}\nFinal Answer: {argument}"
    return f"Thought: {thought}\nAction: {action}\nAction Input: {argument}"


def final_answer_from_json(text: str) -> str:
    """The answer of a JSON final reply (see :func:`final_schema`), else the text as is."""
    try:
        return " " + _one_line(json.loads(text)["answer"])
    except (ValueError, TypeError, KeyError):
        return text
