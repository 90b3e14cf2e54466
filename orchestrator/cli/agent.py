"""``agent``: answer a question with an agent and its tools, showing every step: the ReAct
agent (default), or with ``--mode tools`` the tool-calling agent, whose runs are saved on a
thread (``--thread``, ``--resume``) and whose ``--approve`` tools wait for a person."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    DsnOpt,
    JsonOpt,
    ModelOpt,
    PrintSpecOpt,
    SeedOpt,
    SpecOpt,
    console,
    guarded,
    pipeline_spec,
    print_json,
    print_spec,
)

ToolsOpt = Annotated[
    str | None,
    typer.Option(
        "--tools",
        help="Comma-separated tools: calculator, web_search, knowledge_base and those of "
        "--mcp-config (default: calculator; with --mcp-config, every MCP tool).",
    ),
]
McpConfigOpt = Annotated[
    Path | None,
    typer.Option("--mcp-config", help='MCP servers\' tools: a JSON file with "mcpServers".'),
]
AgentIndexOpt = Annotated[
    Path | None,
    typer.Option(
        "--index", help="Index for the knowledge_base tool (a directory; with --dsn its name)."
    ),
]
StepsOpt = Annotated[
    int | None,
    typer.Option("--max-steps", min=1, help="Most tool steps (default: 5).", show_default=False),
]
TimeOpt = Annotated[
    float | None, typer.Option("--max-time", min=1.0, help="Most seconds for the whole run.")
]
TraceOpt = Annotated[
    Path | None, typer.Option("--trace", help="Save the run as a JSON trace (file or directory).")
]
StepTokensOpt = Annotated[
    int | None,
    typer.Option(
        "--max-tokens", min=16, help="Tokens per step (default: enough for any constrained step)."
    ),
]
ModelKindOpt = Annotated[
    str | None,
    typer.Option(
        "--mode",
        help="tools: the tool-calling agent (saved on a thread); completion (prompt as "
        "written) or chat (chat template): the ReAct agent's model; default: completion, "
        "chat for a served model (--base-url).",
    ),
]
ThreadOpt = Annotated[
    str | None,
    typer.Option("--thread", help="--mode tools: the thread to continue (default: a new one)."),
]
ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume", help="--mode tools: finish the thread's interrupted run (no question)."
    ),
]
ApproveOpt = Annotated[
    str | None,
    typer.Option(
        "--approve", help="--mode tools: comma-separated tools to approve before each call."
    ),
]
CheckpointsOpt = Annotated[
    str | None,
    typer.Option(
        "--checkpoints",
        help="--mode tools: where threads are saved, a SQLite file or a postgresql:// DSN "
        "(default: --dsn's database, else $ORCHESTRATOR_HOME/agents/checkpoints.sqlite).",
    ),
]


def register(app: typer.Typer) -> None:
    app.command("agent")(agent)


@guarded
def agent(
    context: typer.Context,
    question: Annotated[str | None, typer.Argument(help="The question for the agent.")] = None,
    tools: ToolsOpt = None,
    index: AgentIndexOpt = None,
    mcp_config: McpConfigOpt = None,
    max_steps: StepsOpt = None,
    max_time: TimeOpt = None,
    model: ModelOpt = None,
    mode: ModelKindOpt = None,
    max_tokens: StepTokensOpt = None,
    seed: SeedOpt = 0,
    trace: TraceOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    dsn: DsnOpt = None,
    spec_file: SpecOpt = None,
    show_spec: PrintSpecOpt = False,
    thread: ThreadOpt = None,
    resume: ResumeOpt = False,
    approve: ApproveOpt = None,
    checkpoints: CheckpointsOpt = None,
) -> None:
    """Answer QUESTION with a ReAct agent (Thought / Action / Observation ... Final Answer),
    or with --mode tools the tool-calling agent. --print-spec prints the agent spec (JSON);
    --spec FILE runs one as written."""
    from orchestrator.agents.pipelines import build

    spec = pipeline_spec(
        "agent",
        spec_file,
        context=context,
        inputs=("question", "trace", "thread", "resume"),
        tools=tools,
        index=index,
        dsn=dsn,
        mcp_config=mcp_config,
        max_iterations=max_steps,
        max_execution_time=max_time,
        model=model,
        mode=mode,
        step_max_tokens=max_tokens,
        seed=seed,
        base_url=base_url,
        api_key=api_key,
        approve=approve,
        checkpoints=checkpoints,
    )
    if show_spec:
        print_spec(spec)
        return
    if getattr(spec, "loop", "react") == "tools":
        from orchestrator.cli.agent_tools import run_tool_agent

        run_tool_agent(spec, question, thread, resume, as_json, context.call_on_close)
        return
    if thread is not None or resume:
        from orchestrator.errors import OptionError

        raise OptionError(
            "--thread and --resume need the tool-calling agent", fix="add --mode tools"
        )
    if question is None:
        from orchestrator.errors import OptionError

        raise OptionError("no question given", fix='orchestrator agent "QUESTION" [--tools ...]')
    executor = build(spec, on_close=context.call_on_close, verbose=not as_json, console=console)
    result = executor.invoke({"input": question})
    if trace is not None and executor.last_trace is not None:
        saved = executor.last_trace.save(trace)
        if not as_json:
            console.print(f"[dim]trace saved to {saved}[/]")
    if as_json:
        keys = ("thought", "action", "action_input", "observation")
        print_json(
            {
                "output": result["output"],
                "steps": [{k: s[k] for k in (*keys, "parse_error")} for s in result["steps"]],
                "stopped_because": result["stopped_because"],
                "step_mode": result["step_mode"],
            }
        )
