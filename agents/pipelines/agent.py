"""Building an :class:`~orchestrator.agents.pipelines.specs.AgentSpec`: the model, the tools
(built-in, a knowledge base over a folder or PostgreSQL index, MCP servers' tools) and the
ReAct executor. The one place tools are assembled, for ``orchestrator agent`` and
``orchestrator serve``'s ``agent`` model.

Order matters for the user: what can fail fast does so before the model loads (an MCP config
whose servers do not start, ``web_search`` without its extra, an index that does not open).
"""

from __future__ import annotations

import difflib
from typing import Any

from orchestrator.agents.pipelines.specs import BUILTIN_TOOLS, AgentSpec, RagSpec
from orchestrator.errors import OptionError
from orchestrator.retrieval import IndexSpec

#: Agent steps are greedy and repeatable unless the spec's model says otherwise.
STEP_SAMPLING = {"temperature": 0.0, "seed": 0, "max_tokens": 256}


def mcp_tools(spec: AgentSpec, on_close: Any = None) -> tuple[list[str], list[Any]]:
    """The built-in tool names and the MCP tools the spec chooses. Names may be built-in or
    MCP tools; ``tools: None`` means every MCP tool. An MCP tool named like a built-in one is
    prefixed with its server's name. ``on_close(close)`` registers the sessions' closing (a
    command's end); else they close at exit."""
    if spec.mcp_config is None:
        return list(spec.tools if spec.tools is not None else ["calculator"]), []
    from orchestrator.agents.tools.mcp import load_mcp_tools

    toolset = load_mcp_tools(spec.mcp_config, reserved_names=BUILTIN_TOOLS)
    if on_close is not None:
        on_close(toolset.close)
    if spec.tools is None:
        return [], list(toolset)
    offered = {t.name: t for t in toolset}
    names = list(dict.fromkeys(spec.tools))
    unknown = [n for n in names if n not in offered and n not in BUILTIN_TOOLS]
    if unknown or not names:
        toolset.close()
        choices = [*BUILTIN_TOOLS, *offered]
        close = difflib.get_close_matches(unknown[0], choices, 1) if unknown else []
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise OptionError(
            f"unknown tool(s) {unknown}" if unknown else "--tools is empty",
            fix=f"{hint}choose from the built-in tools {', '.join(BUILTIN_TOOLS)} or the tools "
            f"of {spec.mcp_config}: {', '.join(sorted(offered))} (or leave out --tools to use "
            "every MCP tool)",
        )
    return [n for n in names if n in BUILTIN_TOOLS], [offered[n] for n in names if n in offered]


def agent_model(spec: AgentSpec) -> Any:
    """The agent's model: a local GGUF as written (completion) or with its chat template
    (chat), or a served model (chat only); :data:`STEP_SAMPLING` fills what the spec leaves
    unset."""
    from orchestrator.models import language_model

    unset = {k: v for k, v in STEP_SAMPLING.items() if getattr(spec.model, k) is None}
    return language_model(spec.model.model_copy(update=unset) if unset else spec.model)


def agent_parts(spec: AgentSpec, on_close: Any = None) -> tuple[Any, list[Any]]:
    """``(llm, tools)``: what can fail fast first (the tool names, MCP servers started,
    ``web_search``'s extra, the knowledge base's index opened: folder or PostgreSQL), then
    the model, then the built-in tools (the calculator gets the agent's model)."""
    names, extra = mcp_tools(spec, on_close)
    if "web_search" in names:
        from orchestrator.agents.tools.search import require_ddgs

        require_ddgs()
    knowledge = None
    if "knowledge_base" in names:
        if spec.index is None:  # an MCP config's --tools named it
            raise OptionError("the knowledge_base tool needs an index", fix="pass --index DIR")
        from orchestrator.agents.tools.knowledge import open_knowledge_base

        knowledge = open_knowledge_base(spec.index).retriever
    llm = agent_model(spec)
    from orchestrator.agents.tools.loading import load_tools

    return llm, load_tools(names, llm=llm, retriever=knowledge) + extra


def agent_executor(spec: AgentSpec, llm: Any, tools: list[Any], **options: Any) -> Any:
    """The :class:`~orchestrator.agents.executor.AgentExecutor` over made parts; ``options``:
    its presentation ones (``verbose``, ``console``)."""
    from orchestrator.agents.executor import AgentExecutor
    from orchestrator.agents.react import create_react_agent

    return AgentExecutor(
        agent=create_react_agent(
            llm, tools, step_max_tokens=spec.step_max_tokens, step_mode=spec.step_mode
        ),
        tools=tools,
        handle_parsing_errors=True,
        max_iterations=spec.max_iterations,
        max_execution_time=spec.max_execution_time,
        **options,
    )


def build_agent(spec: AgentSpec, *, on_close: Any = None, **options: Any) -> Any:
    """The agent a spec names: for the ReAct loop an executor (``invoke({"input": ...})`` /
    ``stream``); for ``loop: tools`` a
    :class:`~orchestrator.agents.pipelines.tool_agent.ToolAgent` (``run(question, ...)``)."""
    if spec.loop == "tools":
        from orchestrator.agents.pipelines.tool_agent import build_tool_agent

        return build_tool_agent(spec, on_close=on_close)
    llm, tools = agent_parts(spec, on_close)
    return agent_executor(spec, llm, tools, **options)


def knowledge_index(rag: RagSpec | None, tools: str | None) -> IndexSpec | None:
    """The knowledge_base tool's index: the RAG spec's (``--index``, or ``--spec``'s). It
    searches one index, so several (for route/agentic) with knowledge_base are an error
    rather than a silent choice of the first."""
    if rag is None:
        return None
    if len(rag.indexes) == 1:
        return rag.indexes[0]
    if "knowledge_base" in [name.strip() for name in (tools or "").split(",")]:
        raise OptionError(
            f"the knowledge_base tool searches one index, and {len(rag.indexes)} were given "
            f"({', '.join(i.label for i in rag.indexes)})",
            fix="give one --index, or leave knowledge_base out of --tools (model 'rag' "
            "chooses between the indexes with --strategy route or agentic)",
        )
    return None
