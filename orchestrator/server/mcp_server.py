"""The MCP server behind ``orchestrator mcp``: ``knowledge_base``, ``rag`` and ``calculator``.

Built on the official ``mcp`` SDK's ``FastMCP``. The index is opened at start (so a bad one
fails before any client connects); the GGUF model is checked at start and loaded on the first
``rag`` call (listing tools stays fast). Tools run in worker threads, so one slow ``rag``
answer does not stall the server's event loop; the llama.cpp engine's lock serialises
generations.

Over stdio, stdout carries the protocol and nothing else: before serving, file descriptor 1
is pointed at stderr (llama.cpp or a library printing at C level cannot corrupt the stream)
and the protocol gets its own copy of the original stdout.

Over HTTP (``--http PORT``) the server listens on loopback; the MCP endpoint has no
authentication, so another host is refused unless ``allow_remote`` says the caller means it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from orchestrator.errors import OptionError
from orchestrator.netloc import is_loopback

if TYPE_CHECKING:
    from mcp.server.fastmcp import FastMCP

    from orchestrator.agents.pipelines import RagSpec
    from orchestrator.agents.tools.knowledge import KnowledgeBaseTool

SERVER_NAME = "orchestrator"
MCP_PATH = "/mcp"
INSTRUCTIONS = (
    "Local tools of Orchestrator: knowledge_base searches an offline document index, rag "
    "answers a question from it with [n] citations, calculator evaluates arithmetic."
)
RAG_DESCRIPTION = (
    "Answers a question from the local document index, citing numbered sources as [n]; "
    "lists the sources after the answer. Input: the question."
)


@dataclass(frozen=True)
class MCPServerOptions:
    """What ``orchestrator mcp`` serves, and where (``port=None``: stdio). ``rag``: the
    pipeline spec behind the ``rag`` tool (its index is also ``knowledge_base``'s, searched
    for ``rag.k`` passages); ``None``: the calculator only."""

    rag: RagSpec | None = None
    port: int | None = None
    host: str = "127.0.0.1"
    allow_remote: bool = False


def check_host(options: MCPServerOptions) -> None:
    """Refuse a non-loopback address unless the caller allowed it explicitly."""
    if options.port is not None and not is_loopback(options.host) and not options.allow_remote:
        raise OptionError(
            f"refusing to serve MCP on {options.host}: the MCP endpoint has no authentication, "
            "so anyone who can reach this address could call its tools (and the model)",
            fix="bind to 127.0.0.1 (the default), or pass --allow-remote if the network is "
            "trusted (put an authenticating proxy in front for anything else)",
        )


class ToolBackend:
    """The work behind the MCP tools, in plain synchronous Python."""

    def __init__(self, options: MCPServerOptions) -> None:
        """The index opens now (a bad one fails before any client connects); a local GGUF's
        header is read now, its weights on the first ``rag`` call."""
        self.options = options
        self.knowledge: KnowledgeBaseTool | None = None
        self._rag: Any = None
        self._rag_lock = threading.Lock()
        spec = options.rag
        if spec is not None:
            from orchestrator.agents.pipelines.rag import check_model, search_mode
            from orchestrator.agents.tools.knowledge import open_knowledge_base

            check_model(spec.model)
            index = spec.indexes[0]
            mode = search_mode(spec, index)
            self.knowledge = open_knowledge_base(index, k=spec.k, mode=mode)

    def calculator(self, expression: str) -> str:
        from mcp.server.fastmcp.exceptions import ToolError

        from orchestrator.agents.tools.calculator import CalculatorError, evaluate, format_number

        try:
            return format_number(evaluate(expression))
        except CalculatorError as exc:
            fix = f" (fix: {exc.fix})" if exc.fix else ""
            raise ToolError(f"{exc.message}{fix}") from None

    def knowledge_base(self, query: str) -> str:
        assert self.knowledge is not None
        return str(self.knowledge.invoke(query))

    def rag(self, question: str) -> Any:
        """The answer and its sources as text, and as structured content the fields
        ``orchestrator rag --json`` prints (``answer``, ``sources`` with their passages,
        ``citations``, the strategy's trace), so a client can check what it was answered from."""
        from mcp.types import CallToolResult, TextContent

        from orchestrator.agents.pipelines.answers import collect_answer, source_lines

        structured = collect_answer([self._rag_chain().invoke({"question": question})])
        lines = [structured["answer"]]
        if structured["sources"]:
            lines += ["\nSources:", *source_lines(structured["sources"])]
        text = TextContent(type="text", text="\n".join(lines))
        return CallToolResult(content=[text], structuredContent=structured)

    def _rag_chain(self) -> Any:
        """The spec's pipeline, built by the library on the first call (then kept)."""
        with self._rag_lock:
            if self._rag is None:
                from orchestrator.agents.pipelines import build

                assert self.options.rag is not None  # the rag tool is served with a spec
                self._rag = build(self.options.rag)
            return self._rag


def served_tools(options: MCPServerOptions) -> list[str]:
    """The tools a server with ``options`` offers."""
    return ["calculator"] if options.rag is None else ["knowledge_base", "rag", "calculator"]


async def traced_call(name: str, work: Callable[[str], Any], argument: str) -> Any:
    """Run a tool in a worker thread, recorded as one run (``logs --command mcp``)."""
    import anyio

    from orchestrator.tracing import run
    from orchestrator.tracing.names import OPERATION, TOOL, TOOL_NAME

    tool = {OPERATION: TOOL, TOOL_NAME: name}
    with run("mcp", name=f"{TOOL} {name}", pipeline=name, kind="tool", attributes=tool) as call:
        call.update(input=argument)
        result = await anyio.to_thread.run_sync(work, argument)
        call.update(output=getattr(result, "structuredContent", None) or result)
        return result


def build_server(options: MCPServerOptions) -> FastMCP:
    """A FastMCP server with ``calculator``, plus ``knowledge_base`` and ``rag`` given an index."""
    from mcp.server.fastmcp import FastMCP

    from orchestrator.agents.tools.knowledge import KNOWLEDGE_BASE_DESCRIPTION
    from orchestrator.agents.tools.math_tool import CALCULATOR_DESCRIPTION

    check_host(options)
    backend = ToolBackend(options)
    server = FastMCP(
        SERVER_NAME,
        instructions=INSTRUCTIONS,
        host=options.host,
        port=options.port or 8000,
        streamable_http_path=MCP_PATH,
        log_level="WARNING",
    )

    async def calculator(
        expression: Annotated[str, Field(description="e.g. 2*(3+4) or sqrt(2)")],
    ) -> str:
        return await traced_call("calculator", backend.calculator, expression)

    server.add_tool(
        calculator, name="calculator", description=CALCULATOR_DESCRIPTION, structured_output=False
    )
    if backend.knowledge is None:
        return server

    async def knowledge_base(
        query: Annotated[str, Field(description="a question or a few keywords")],
    ) -> str:
        return await traced_call("knowledge_base", backend.knowledge_base, query)

    async def rag(question: Annotated[str, Field(description="the question to answer")]) -> Any:
        return await traced_call("rag", backend.rag, question)

    server.add_tool(
        knowledge_base,
        name="knowledge_base",
        description=KNOWLEDGE_BASE_DESCRIPTION,
        structured_output=False,
    )
    server.add_tool(rag, name="rag", description=RAG_DESCRIPTION, structured_output=False)
    return server


def serve(options: MCPServerOptions, announce: Callable[[str], None] | None = None) -> None:
    """Build the server, then serve over stdio (``port=None``) or streamable HTTP;
    ``announce`` gets one line saying what is served where, once the tools are ready."""
    server = build_server(options)
    if announce is not None:
        tools = ", ".join(served_tools(options))
        where = "stdio" if options.port is None else f"http://{options.host}:{options.port}/mcp"
        announce(f"MCP server {SERVER_NAME!r} ({tools}) on {where}")
    if options.port is None:
        _protect_stdout()
        server.run("stdio")
    else:
        logging.getLogger("mcp.server.streamable_http").addFilter(_drop_closed_stream_error)
        server.run("streamable-http")


def _drop_closed_stream_error(record: logging.LogRecord) -> bool:
    """mcp 1.x logs a traceback when a client ends its session while the session's
    server-to-client stream is open, which is how every client disconnects; drop that record
    only (any other error is still logged)."""
    exc = record.exc_info[1] if record.exc_info else None
    closed = type(exc).__name__ == "ClosedResourceError"
    return not (closed and record.getMessage() == "Error in standalone SSE writer")


def _protect_stdout() -> None:
    """Give the protocol a private copy of stdout and point fd 1 (what C code writes) at
    stderr; Python's ``sys.stdout`` becomes the protocol stream, which only FastMCP uses."""
    sys.stdout.flush()
    protocol = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = open(protocol, "w", encoding="utf-8", closefd=True)  # noqa: SIM115
