"""``agent``: answer a question with a ReAct agent and its tools, showing every step."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    DsnOpt,
    JsonOpt,
    ModelOpt,
    console,
    guarded,
    print_json,
)
from orchestrator.errors import OptionError

#: Tool names the CLI offers (``load_tools`` also accepts the book's aliases).
CLI_TOOLS = ("calculator", "web_search", "knowledge_base")

ToolsOpt = Annotated[
    str | None,
    typer.Option(
        "--tools",
        help=f"Comma-separated tools: {', '.join(CLI_TOOLS)} and those of --mcp-config "
        "(default: calculator; with --mcp-config, every MCP tool).",
    ),
]
McpConfigOpt = Annotated[
    Path | None,
    typer.Option("--mcp-config", help='MCP servers\' tools: a JSON file with "mcpServers".'),
]
IndexOpt = Annotated[
    Path | None,
    typer.Option("--index", help="Index directory for the knowledge_base tool (build_index)."),
]
StepsOpt = Annotated[int, typer.Option("--max-steps", min=1, help="Most tool steps.")]
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
ModeOpt = Annotated[
    str | None,
    typer.Option(
        "--mode",
        help="completion (prompt as written) or chat (chat template); default: completion, "
        "chat for a served model (--base-url).",
    ),
]


def register(app: typer.Typer) -> None:
    app.command("agent")(agent)


def parse_tool_names(text: str) -> list[str]:
    """The tool list from ``--tools``; an unknown name is an error listing the known ones."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise OptionError("--tools is empty", fix=f"choose from {', '.join(CLI_TOOLS)}")
    for name in names:
        if name not in CLI_TOOLS:
            raise OptionError(f"unknown tool {name!r}", fix=f"known tools: {', '.join(CLI_TOOLS)}")
    return list(dict.fromkeys(names))


def build_model(
    model: str | None,
    mode: str | None,
    max_tokens: int | None,
    seed: int,
    base_url: str | None = None,
    api_key: str | None = None,
) -> Any:
    """The agent's model: a local GGUF (completion or chat), or a served model (chat only,
    through the one remote constructor, checked before the run)."""
    from orchestrator.remote import resolve_endpoint

    url, key = resolve_endpoint(base_url, api_key)
    if url is not None:
        if mode == "completion":
            raise OptionError(
                f"--mode completion needs a local GGUF; the model served at {url} is a chat model",
                fix="leave out --mode (or use --mode chat) with --base-url",
            )
        from orchestrator.cli.common import remote_model

        return remote_model(url, key, model, max_tokens=max_tokens or 256, temperature=0, seed=seed)
    mode = mode or "completion"
    if mode not in ("completion", "chat"):
        raise OptionError(f"unknown --mode {mode!r}", fix="use --mode completion or --mode chat")
    if mode == "chat":
        from orchestrator.llama.chat import ChatLlamaCpp

        return ChatLlamaCpp(
            model_path=model, max_tokens=max_tokens or 256, temperature=0, seed=seed
        )
    from orchestrator.llama.llm import LlamaCpp

    return LlamaCpp(model_path=model, max_tokens=max_tokens or 256, temperature=0.0, seed=seed)


def _knowledge_retriever(index: Path | None, dsn: str | None) -> Any:
    """With --dsn, the knowledge_base tool's retriever over the PostgreSQL index named by
    --index (opened before the model loads, so a bad DSN fails fast); else ``None``."""
    from orchestrator.cli.common import index_location

    if dsn is None:
        return None
    from orchestrator.agents.tools.knowledge import open_knowledge_base

    target, dsn = index_location(index, dsn)
    return open_knowledge_base(target, dsn=dsn).retriever


@guarded
def agent(
    question: Annotated[str, typer.Argument(help="The question for the agent.")],
    tools: ToolsOpt = None,
    index: IndexOpt = None,
    mcp_config: McpConfigOpt = None,
    max_steps: StepsOpt = 5,
    max_time: TimeOpt = None,
    model: ModelOpt = None,
    mode: ModeOpt = None,
    max_tokens: StepTokensOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    trace: TraceOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    as_json: JsonOpt = False,
    dsn: DsnOpt = None,
) -> None:
    """Answer QUESTION with a ReAct agent (Thought / Action / Observation ... Final Answer)."""
    from orchestrator.agents.executor import AgentExecutor
    from orchestrator.agents.react import create_react_agent
    from orchestrator.agents.tools.loading import load_tools

    mcp_tools: list[Any] = []
    if mcp_config is None:
        names = parse_tool_names(tools or "calculator")
    else:  # servers start (and a bad config fails) before the model loads
        from orchestrator.cli.mcp import agent_mcp_tools

        names, mcp_tools = agent_mcp_tools(mcp_config, tools, CLI_TOOLS)
    if "knowledge_base" in names and index is None:
        raise OptionError("the knowledge_base tool needs an index", fix="pass --index DIR")
    if "web_search" in names:  # say what to install now, not after loading the model
        from orchestrator.agents.tools.search import require_ddgs

        require_ddgs()
    knowledge = _knowledge_retriever(index, dsn) if "knowledge_base" in names else None
    llm = build_model(model, mode, max_tokens, seed, base_url, api_key)
    tool_list = load_tools(names, llm=llm, retriever=knowledge, index_dir=index) + mcp_tools
    executor = AgentExecutor(
        agent=create_react_agent(llm, tool_list, step_max_tokens=max_tokens),
        tools=tool_list,
        verbose=not as_json,
        console=console,
        handle_parsing_errors=True,
        max_iterations=max_steps,
        max_execution_time=max_time,
    )
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
