"""The ``calculator`` tool (the book's ``llm-math``).

Input is an arithmetic expression, evaluated by :func:`agents.tools.calculator.calculate`.
Given an ``llm``, words the calculator cannot read ("what is 3 times 4") are first translated
into an expression by the model (under a grammar where the model honours one); the translation goes
through the same allowlist as any other input, so model output is never executed as code.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForToolRun
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field

from orchestrator.agents.grammar import INPUT_GBNF_KEY, arithmetic_gbnf
from orchestrator.agents.tools.calculator import (
    CONSTANTS,
    CalculatorError,
    calculate,
    callable_names,
    evaluate,
    format_number,
)
from orchestrator.models import capabilities
from orchestrator.prompts.templates import safe_values

CALCULATOR_DESCRIPTION = (
    "Evaluates one arithmetic expression such as 2*(3+4), 37593*67, 2**10 or sqrt(2). "
    "Input: the expression only, with numbers, not words."
)

TRANSLATE_PROMPT = (
    "Rewrite the math problem as one arithmetic expression using numbers, + - * / ** and "
    "parentheses. Reply with the expression only.\n\nProblem: {question}\nExpression:"
)

#: What an expression may look like, as a GBNF expression: digits, operators and the names
#: of the calculator's own function and constant tables (one source of truth).
EXPRESSION_GBNF = arithmetic_gbnf(callable_names(), list(CONSTANTS))
_TRANSLATE_GBNF = f'root ::= " "? {EXPRESSION_GBNF}'


class CalculatorTool(BaseTool):
    """Arithmetic only; refusals and errors come back as plain observations."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "calculator"
    description: str = CALCULATOR_DESCRIPTION
    metadata: dict[str, Any] | None = Field(
        default_factory=lambda: {INPUT_GBNF_KEY: EXPRESSION_GBNF}
    )
    """Tells grammar-constrained agents to admit only arithmetic as this tool's input."""
    llm: Runnable[Any, Any] | None = None
    """Optional model that turns a worded problem into an expression (``llm-math``)."""

    def _run(self, expression: str, run_manager: CallbackManagerForToolRun | None = None) -> str:
        try:
            return format_number(evaluate(expression))
        except CalculatorError as exc:
            if not (exc.wordy and self.llm is not None):
                return calculate(expression)
        translated = self._translate(expression)
        result = calculate(translated)
        return f"{translated} = {result}" if not result.startswith("Calculator") else result

    def _translate(self, question: str) -> str:
        assert self.llm is not None
        # a model that honours grammars writes only an expression; others are parsed as is
        constraint = capabilities(self.llm).constrain(gbnf=_TRANSLATE_GBNF)
        options: dict[str, Any] = {"stop": ["\n"], **constraint}
        # the question is the agent's (or a user's) text: defused, so it cannot open a turn
        values = safe_values(self.llm, {"question": question.strip()})
        reply = self.llm.invoke(TRANSLATE_PROMPT.format(**values), **options)
        text = reply if isinstance(reply, str) else str(getattr(reply, "content", reply))
        return text.strip().splitlines()[0].strip() if text.strip() else ""
