"""The agent with the real embedded model: grammars load, tools are called, steps always parse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from orchestrator.agents import AgentExecutor, create_react_agent, load_tools, tool
from orchestrator.agents.grammar import final_grammar, step_grammar
from orchestrator.agents.tools.math_tool import EXPRESSION_GBNF
from orchestrator.errors import OptionError
from orchestrator.llama.engine import make_grammar

pytestmark = pytest.mark.integration


class PromptRecorder(BaseCallbackHandler):
    """Keeps every prompt the model was sent (completion text or rendered chat messages)."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def on_llm_start(self, serialized: Any, prompts: list[str], **kwargs: Any) -> None:
        self.prompts.extend(prompts)

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.prompts.extend("\n".join(str(m.content) for m in batch) for batch in messages)


@tool
def secret_code(query: str) -> str:
    """Returns the secret code. Input: what you want to know."""
    return "The secret code is 4417."


def test_every_agent_grammar_parses_in_llama_cpp(completion_llm: Any) -> None:
    engine = completion_llm.engine
    names = ["calculator", "web_search", "knowledge_base"]
    rules = {"calculator": EXPRESSION_GBNF}
    for prefix in (True, False):
        assert make_grammar(engine, step_grammar(names, thought_prefix=prefix, input_rules=rules))
    assert make_grammar(engine, final_grammar(answer_prefix=False))
    with pytest.raises(OptionError):  # a broken grammar is an error, not unconstrained text
        completion_llm.invoke("Hi", grammar="root ::= (")


@pytest.mark.parametrize("fixture", ["completion_llm", "chat_llm"])
def test_the_real_model_calls_a_tool_and_reads_its_observation(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    llm = request.getfixturevalue(fixture)
    recorder = PromptRecorder()
    tools = [secret_code]
    executor = AgentExecutor(
        agent=create_react_agent(llm, tools, step_max_tokens=96),
        tools=tools,
        max_iterations=2,
        handle_parsing_errors=True,
    )
    result = executor.invoke({"input": "What is the secret code?"}, {"callbacks": [recorder]})
    first = result["steps"][0]
    assert first["action"] == "secret_code" and not first["parse_error"]
    assert first["observation"] == "The secret code is 4417."
    assert "Observation: The secret code is 4417." in recorder.prompts[1]
    assert "4417" in result["output"]
    assert executor.last_trace is not None and executor.last_trace.grammar is True
    assert executor.last_trace.parse_errors == 0


def test_grammar_constrained_steps_always_parse(completion_llm: Any) -> None:
    tools = load_tools(["calculator"])
    executor = AgentExecutor(
        agent=create_react_agent(completion_llm, tools),  # default budget: steps never cut off
        tools=tools,
        max_iterations=3,
        handle_parsing_errors=False,  # a parse error would raise
    )
    result = executor.invoke({"input": "What is 37593 * 67?"})
    assert result["steps"] and all(s["action"] == "calculator" for s in result["steps"])
    assert result["output"]
    assert result["stopped_because"] in ("final_answer", "repeated_action", "max_iterations")


def test_a_step_cut_off_by_a_tiny_budget_is_a_parse_error_not_a_crash(chat_llm: Any) -> None:
    tools = load_tools(["calculator"])
    executor = AgentExecutor(
        agent=create_react_agent(chat_llm, tools, step_max_tokens=16),
        tools=tools,
        max_iterations=1,
        handle_parsing_errors=True,
    )
    result = executor.invoke({"input": "What is 37593 * 67? Think it through step by step."})
    assert result["steps"][0]["parse_error"] is True
    assert result["stopped_because"] == "max_iterations"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORCHESTRATOR_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "orchestrator.cli.app", "agent", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module", autouse=True)
def cli_run() -> Iterator[Future[subprocess.CompletedProcess[str]]]:
    """The CLI's run, started with the module (autouse): the process works on the second
    core while the in-process tests above use the first."""
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(
            _cli, "What is 2**10?", "--json", "--max-steps", "2", "--max-tokens", "96"
        )


def test_cli_prints_the_run_as_json(cli_run: Future[subprocess.CompletedProcess[str]]) -> None:
    done = cli_run.result()
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) == {"output", "steps", "stopped_because", "step_mode"}
    assert data["step_mode"] == "grammar"  # a local GGUF: every step under the grammar
    for step in data["steps"]:
        assert {"thought", "action", "action_input", "observation"} <= set(step)


def test_cli_rejects_unknown_tools_with_the_known_list() -> None:
    from typer.testing import CliRunner

    from orchestrator.cli.app import app

    runner = CliRunner()
    done = runner.invoke(app, ["agent", "hi", "--tools", "calculator,teleport"])
    assert done.exit_code == 2
    assert "unknown tool 'teleport'" in done.stderr
    assert "calculator, web_search, knowledge_base" in done.stderr
    missing = runner.invoke(app, ["agent", "hi", "--tools", "knowledge_base"])
    assert missing.exit_code == 2 and "--index" in missing.stderr
