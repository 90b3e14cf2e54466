"""The calculator evaluates arithmetic and nothing else (CVE-2023-39631 class payloads)."""

from __future__ import annotations

import math
from typing import Any

import numexpr
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.agents.tools.calculator import (
    MAX_CHARS,
    CalculatorError,
    calculate,
    check_expression,
    evaluate,
    is_arithmetic_tree,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.e24", "1e+24"),
        ("4.0e-9*3", "1.2e-08"),
        ("sqrt(2)", "1.41421356237"),
        ("2**10", "1024"),
        ("2^10", "1024"),
        ("37593 * 67", "2518731"),
        ("$1,299 * 0.85", "1104.15"),
        ("(3 + 4) * 2 = ?", "14"),
        ("2*67 = 152.5", "134"),
        ("-2**-3", "-0.125"),
        ("pi * 2", "6.28318530718"),
        ("ln(e)", "1"),
        ("10 % 3", "1"),
        ("`7 / 2`", "3.5"),
    ],
)
def test_arithmetic_is_evaluated(text: str, expected: str) -> None:
    assert calculate(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("().__class__", "dunder"),
        ("__import__('os').system('echo pwned')", "dunder"),
        ("a.b", "attribute access"),
        ("(1).real", "attribute access"),
        ("lambda: 1", "lambda"),
        ("x + 1", "not a known constant"),
        ("open('/etc/passwd')", "'open' is not allowed"),
        ("sum([1, 2])", "'sum' is not allowed"),
        ("2**100000", "too large"),
        ("9**9**9", "exponent must be a plain number"),
        ("1" * (MAX_CHARS + 1), "limit is"),
        ("[1, 2][0]", "not allowed"),
        ("1 if 2 else 3", "conditional"),
        ("1 < 2", "comparison"),
        ("sqrt(x=2)", "positional argument"),
        ("'abc'.upper()", "cannot be called"),
        ("1 / 0", "divides by zero"),
        ("", "empty"),
        ("what is two plus two", "not an arithmetic expression"),
    ],
)
def test_everything_else_is_refused_plainly(text: str, reason: str) -> None:
    with pytest.raises(CalculatorError) as info:
        evaluate(text)
    assert reason in info.value.message
    assert calculate(text).startswith("Calculator error:")


def test_known_numexpr_sanitizer_bypass_never_reaches_numexpr(monkeypatch: Any) -> None:
    # The payload of CVE-2023-39631 style exploits: reach object.__subclasses__ via tuples.
    payload = (
        "(lambda fc=(lambda n: [c for c in ().__class__.__bases__[0].__subclasses__() "
        "if c.__name__ == n][0]): fc('function')(fc('code')(0,0,0,0,'KABOOM',(),(),(),'','',0,''),"
        "{})())()"
    )
    seen: list[str] = []
    monkeypatch.setattr(numexpr, "evaluate", lambda expr, **kw: seen.append(expr))
    assert calculate(payload).startswith("Calculator error:")
    assert calculate("__builtins__").startswith("Calculator error:")
    assert seen == []


def test_numexpr_only_sees_the_regenerated_float_expression(monkeypatch: Any) -> None:
    seen: list[str] = []
    real = numexpr.evaluate

    def spy(expr: str, **kwargs: Any) -> Any:
        seen.append(expr)
        return real(expr, **kwargs)

    monkeypatch.setattr(numexpr, "evaluate", spy)
    assert calculate("7 % 2 + 1_000") == "1001"
    assert seen == ["7.0 % 2.0 + 1000.0"]
    assert check_expression("2^3") == "2.0 ** 3.0"


MALICIOUS_PARTS = [
    "__", ".", "lambda", ":", "import", "os", "system", "(", ")", "[", "]", "'", '"', ",",
    "{", "}", "=", "==", ";", "\n", "\\", "for", "in", "if", "not", "*", "**", "+", "-",
    "9", "1e308", "e", "pi", "sqrt", "eval", "exec", "getattr", "class", "mro", "^", "%",
    "where", "contains", "@", "~", "<<", "&", "|", "b'", "f'", "{0}", "\x00", "lambda x:",
]  # fmt: skip


def _check_only_arithmetic_reaches_numexpr(text: str, monkeypatch: Any) -> None:
    seen: list[str] = []
    real = numexpr.evaluate

    def spy(expr: str, **kwargs: Any) -> Any:
        seen.append(expr)
        assert kwargs == {"local_dict": {}, "global_dict": {}}
        return real(expr, **kwargs)

    monkeypatch.setattr(numexpr, "evaluate", spy)
    result = calculate(text)
    assert isinstance(result, str) and result
    for expr in seen:
        assert is_arithmetic_tree(expr), expr


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=300))
def test_arbitrary_text_never_crashes_and_only_arithmetic_is_evaluated(
    text: str, monkeypatch: Any
) -> None:
    _check_only_arithmetic_reaches_numexpr(text, monkeypatch)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.lists(st.sampled_from(MALICIOUS_PARTS), max_size=40).map("".join))
def test_malicious_fragments_never_crash_and_only_arithmetic_is_evaluated(
    text: str, monkeypatch: Any
) -> None:
    _check_only_arithmetic_reaches_numexpr(text, monkeypatch)


def _expressions() -> st.SearchStrategy[str]:
    numbers = st.integers(min_value=0, max_value=999).map(str)
    return st.recursive(
        numbers,
        lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        max_leaves=12,
    )


@settings(max_examples=200, deadline=None)
@given(_expressions())
def test_valid_arithmetic_matches_python(expr: str) -> None:
    expected = float(eval(expr, {"__builtins__": {}}, {}))  # expr is generated digits/operators
    assert math.isclose(evaluate(expr), expected, rel_tol=1e-9, abs_tol=1e-9)


def test_fractional_power_of_a_negative_number_is_a_clear_refusal() -> None:
    from orchestrator.agents.tools.calculator import calculate

    for expression in ("(-8)**(1/3)", "(-1)**0.5"):
        assert "no real result" in calculate(expression)


def test_an_agent_without_any_limit_is_refused() -> None:
    from orchestrator.agents import AgentExecutor, create_react_agent, load_tools
    from orchestrator.errors import OptionError
    from orchestrator.testing import ScriptedLLM

    tools = load_tools(["calculator"])
    agent = create_react_agent(ScriptedLLM(replies=[]), tools)
    with pytest.raises(OptionError, match="forever"):
        AgentExecutor(agent=agent, tools=tools, max_iterations=None)
