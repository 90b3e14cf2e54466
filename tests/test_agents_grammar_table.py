"""One table of calculator functions: whatever the calculator accepts, the grammar can write.

The agent's ``Action Input`` grammar for the calculator is derived from the calculator's own
function and constant tables. The integration test runs llama.cpp's grammar sampler itself
over the tokens of each expression (a token the grammar forbids gets a logit of -inf; at the
end, only a complete match admits end of generation).
"""

from __future__ import annotations

import ctypes
import math
from typing import Any

import pytest

from orchestrator.agents.grammar import arithmetic_gbnf, gbnf_literal, step_grammar
from orchestrator.agents.tools.calculator import CONSTANTS, calculate, callable_names
from orchestrator.agents.tools.math_tool import EXPRESSION_GBNF
from orchestrator.errors import OptionError


def sample_call(name: str, arity: int) -> str:
    """A valid call of ``name`` (arguments inside every function's domain)."""
    return f"{name}({', '.join(['0.5', '2'][:arity] if arity <= 2 else ['1'] * arity)})"


SAMPLES = [sample_call(name, arity) for name, arity in callable_names().items()]


def test_every_function_and_constant_of_the_table_is_in_the_grammar() -> None:
    for name in callable_names():
        assert gbnf_literal(f"{name}(") in EXPRESSION_GBNF, name
    for constant in CONSTANTS:
        assert gbnf_literal(constant) in EXPRESSION_GBNF
    for name in ("arctan2", "log1p", "sinh", "atan2", "ln"):  # the ones the old list lacked
        assert name in callable_names() and f'"{name}("' in EXPRESSION_GBNF
    assert "," in EXPRESSION_GBNF.split("]")[0]  # arctan2 takes two arguments


def test_every_sample_call_is_arithmetic_the_calculator_computes() -> None:
    for expr in SAMPLES:
        assert not calculate(expr).startswith("Calculator error"), (expr, calculate(expr))


def test_the_grammar_admits_a_comma_only_when_a_function_needs_one() -> None:
    assert "," not in arithmetic_gbnf({"sqrt": 1}, ["pi"]).split("]")[0]
    with pytest.raises(OptionError):
        arithmetic_gbnf({'sq"rt': 1}, [])


def grammar_accepts(engine: Any, gbnf: str, text: str) -> bool:
    """Whether llama.cpp's grammar sampler lets the model write exactly ``text``."""
    import llama_cpp

    vocab = engine.llama._model.vocab
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode("utf-8"), b"root")
    assert sampler, "the grammar did not parse"

    def allowed(token: int) -> bool:
        data = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, 0.0, 0.0))
        candidates = llama_cpp.llama_token_data_array(data, 1, -1, False)
        llama_cpp.llama_sampler_apply(sampler, ctypes.byref(candidates))
        return not math.isinf(data[0].logit)

    try:
        for token in engine.tokenize(text, special=False):
            if not allowed(token):
                return False
            llama_cpp.llama_sampler_accept(sampler, token)
        return allowed(llama_cpp.llama_vocab_eos(vocab))  # end only after a complete match
    finally:
        llama_cpp.llama_sampler_free(sampler)


@pytest.mark.integration
def test_llama_cpp_grammar_writes_every_function_the_calculator_allows(
    completion_llm: Any,
) -> None:
    engine = completion_llm.engine
    root = f"root ::= {EXPRESSION_GBNF}"
    for expr in [*SAMPLES, "arctan2(1, 2) + log1p(3) * sinh(pi)", "2**10 - e"]:
        assert grammar_accepts(engine, root, expr), expr
    for refused in ("import os", "__import__('os')", "x + 1", "open(1)"):
        assert not grammar_accepts(engine, root, refused), refused
    # and inside a whole agent step, as the executor builds it
    rules = {"calculator": EXPRESSION_GBNF}
    step = step_grammar(["calculator", "web_search"], thought_prefix=False, input_rules=rules)
    text = " I need the angle.\nAction: calculator\nAction Input: arctan2(1, 2)\n"
    assert grammar_accepts(engine, step, text)
