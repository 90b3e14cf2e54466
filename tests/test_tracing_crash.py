"""Crash safety (issue 21, point 6): ``kill -9`` in the middle of an agent run leaves every
completed span readable and the store passing ``integrity_check``; the cut run shows as
``interrupted``."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from tracing_support import wait_for

from orchestrator.tracing import TraceStore, names

#: An agent whose first step calls a tool that never returns in time: the step's model call
#: completes (and is written by the background writer), then the process is killed.
AGENT = textwrap.dedent(
    """
    import sys, time
    from orchestrator import tracing
    from orchestrator.agents import AgentExecutor, create_react_agent, tool
    from orchestrator.testing import ScriptedLLM

    @tool
    def slow_lookup(query: str) -> str:
        '''Looks something up, slowly.'''
        print("IN TOOL", flush=True)
        time.sleep(120)
        return "never"

    tracing.enable(sys.argv[1])
    llm = ScriptedLLM(replies=[" Look it up.\\nAction: slow_lookup\\nAction Input: tides\\n"])
    agent = AgentExecutor(agent=create_react_agent(llm, [slow_lookup]), tools=[slow_lookup])
    with tracing.run("agent"):
        agent.invoke({"input": "When is high tide?"})
    """
)


def test_kill_9_mid_run_leaves_completed_spans_and_an_interrupted_run(tmp_path: Path) -> None:
    script, store = tmp_path / "agent.py", tmp_path / "traces.sqlite"
    script.write_text(AGENT, encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, str(script), str(store)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "IN TOOL"

        def model_call_written() -> bool:
            with TraceStore(store) as traces:
                runs = traces.runs()
                return bool(runs) and any(s.kind == "llm" for s in traces.spans(runs[0].run_id))

        wait_for(model_call_written, "the completed model call to reach the store", limit=30)
        with TraceStore(store) as traces:
            assert traces.runs()[0].status == "running"
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with TraceStore(store) as traces:
        (run,) = traces.runs()
        assert (run.name, run.command, run.status, run.ended) == (
            "agent",
            "agent",
            "interrupted",
            None,
        )
        spans = traces.spans(run.run_id)
    kinds = [s.kind for s in spans]
    # the tool never finished, nor its step ("agent step 1") and the agent's span around it
    assert "llm" in kinds and not {"tool", "agent_step", "agent"} & set(kinds)
    (call,) = [s for s in spans if s.kind == "llm"]
    assert call.status == "ok" and call.parent_id != run.root_span
    assert "Action: slow_lookup" in call.attributes[names.OUTPUT_MESSAGES][0]["parts"][0]["content"]
    assert "When is high tide?" in call.attributes[names.INPUT_MESSAGES][0]["parts"][0]["content"]
