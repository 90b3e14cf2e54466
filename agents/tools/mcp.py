"""Tools of MCP (Model Context Protocol) servers as LangChain tools for the ReAct agent.

``load_mcp_tools("mcp.json")`` reads the usual ``mcpServers`` config (see
:mod:`orchestrator.agents.tools.mcp_config`), starts or connects to every server, and returns
their tools. ``langchain-mcp-adapters`` (``MultiServerMCPClient`` sessions, ``load_mcp_tools``)
and the official ``mcp`` SDK do the protocol; this module adds what the synchronous agent loop
needs:

- **One shared session per server** (:mod:`.mcp_sessions`), for the life of the tool set (a
  stdio server is one subprocess, not one per call). ``tool.invoke`` submits the call to the
  sessions' event loop and waits, so it works from plain sync code and from inside a running
  event loop alike; ``ainvoke`` waits without blocking its own loop.
- **Failures are observations.** An MCP error result, a dead server, a timeout or a wrong
  input comes back as the tool's output text (``MCP tool 'x' on server 'y' failed: ...``),
  never an exception out of the agent loop.
- **Names do not clash.** A tool name offered by two servers, or equal to one in
  ``reserved_names`` (the agent's built-in tools), is prefixed with its server's name:
  ``docs_search`` and ``web_search``. Names offered once stay as they are.
- **Plain-text input.** The ReAct agent writes one line of ``Action Input``: a tool with one
  parameter receives it as that parameter; a tool with several receives a JSON object.

Close the set with ``close()`` or a ``with`` block; it is also closed when no tool of it is
referenced any more, and at interpreter exit.
"""

from __future__ import annotations

import json
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, ToolException
from pydantic import ConfigDict, Field

from orchestrator.agents.tools.mcp_config import MCPConfigError, read_mcp_config
from orchestrator.agents.tools.mcp_sessions import MCPConnectionError, SessionBackend, error_cause
from orchestrator.extras import require

DEFAULT_STARTUP_TIMEOUT = 120.0
DEFAULT_CALL_TIMEOUT = 300.0

__all__ = [
    "MCPConfigError",
    "MCPConnectionError",
    "MCPTool",
    "MCPToolset",
    "load_mcp_tools",
    "read_mcp_config",
]


def load_mcp_tools(
    config: str | Path | Mapping[str, Any],
    *,
    reserved_names: Iterable[str] = (),
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
) -> MCPToolset:
    """The tools of every server in ``config`` (a JSON file path or the parsed dict).

    ``reserved_names``: tool names already taken (e.g. the agent's ``calculator``); an MCP
    tool with such a name is prefixed with its server name. ``startup_timeout`` bounds
    starting and initialising the servers, ``call_timeout`` each tool call (seconds).
    """
    connections = read_mcp_config(config)
    require("langchain_mcp_adapters", extra="mcp", purpose="MCP tools")
    where = "the MCP config (dict)" if isinstance(config, Mapping) else str(config)
    backend = SessionBackend()
    try:
        found = backend.run(backend.open_all(connections, startup_timeout), None)
    except BaseException:
        backend.shutdown()
        raise
    handle = _Handle(backend, call_timeout)
    tools = [
        MCPTool.wrap(inner, server=server, name=name, handle=handle)
        for server, name, inner in _unique_names(found, set(reserved_names), where)
    ]
    return MCPToolset(tools, handle, list(connections))


class MCPToolset(list[BaseTool]):
    """A list of :class:`MCPTool` that also owns the servers' sessions (``close()``)."""

    def __init__(self, tools: list[MCPTool], handle: _Handle, servers: list[str]) -> None:
        super().__init__(tools)
        self.handle = handle
        self.servers = servers

    def close(self) -> None:
        """End every session (stdio servers exit); the tools then fail into observations."""
        self.handle.close()

    def __enter__(self) -> MCPToolset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MCPTool(BaseTool):
    """One MCP tool, called through its server's shared session; errors become its output."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    server: str
    """The server (its name in the config) that offers the tool."""
    remote_name: str
    """The tool's name on its server (``name`` may carry the server prefix)."""
    inner: BaseTool = Field(exclude=True)
    handle: Any = Field(exclude=True)
    handle_tool_error: Any = True

    @classmethod
    def wrap(cls, inner: BaseTool, *, server: str, name: str, handle: _Handle) -> MCPTool:
        schema = inner.args_schema if isinstance(inner.args_schema, dict) else {}
        return cls(
            name=name,
            description=_description(inner.description, schema),
            args_schema=schema or {"type": "object", "properties": {}},
            server=server,
            remote_name=inner.name,
            inner=inner,
            handle=handle,
            metadata=inner.metadata,
        )

    def _parse_input(
        self, tool_input: str | dict[str, Any], tool_call_id: str | None
    ) -> str | dict[str, Any]:
        """Text becomes the arguments object: JSON as is, else the one parameter's value."""
        if isinstance(tool_input, dict):
            return tool_input
        text = tool_input.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError:
                value = None
            if isinstance(value, dict):
                return value
        params = list(self.args)
        if not params:
            return {}
        if len(params) == 1:
            return {params[0]: text}
        raise ToolException(
            f"MCP tool {self.remote_name!r} on server {self.server!r} failed: it takes a JSON "
            f"object with keys {', '.join(params)}, not plain text ({text[:80]!r})"
        )

    def _run(self, **arguments: Any) -> str:
        return self.handle.call(self, arguments)


class _Handle:
    """What every tool of one set references: the backend and the call timeout. When the
    last reference goes, the finalizer shuts the backend down (also at interpreter exit)."""

    def __init__(self, backend: SessionBackend, call_timeout: float) -> None:
        self.backend = backend
        self.call_timeout = call_timeout
        self._finalizer = weakref.finalize(self, backend.shutdown)

    def close(self) -> None:
        self._finalizer()

    def call(self, tool: MCPTool, arguments: dict[str, Any]) -> str:
        import anyio  # the mcp SDK's own dependency

        label = f"MCP tool {tool.remote_name!r} on server {tool.server!r}"
        if not self._finalizer.alive:
            raise ToolException(f"{label} is closed (its tool set was closed)")
        dead = self.backend.failures.get(tool.server)
        if dead is not None:
            raise ToolException(f"{label} failed: the server stopped ({error_cause(dead)})")
        try:
            content = self.backend.run(tool.inner.ainvoke(arguments), self.call_timeout)
        except TimeoutError:
            raise ToolException(
                f"{label} failed: no answer within {self.call_timeout:g} s"
            ) from None
        except ToolException as exc:
            raise ToolException(f"{label} failed: {exc}") from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise ToolException(
                f"{label} failed: the connection is closed (the server has stopped)"
            ) from None
        except Exception as exc:
            raise ToolException(f"{label} failed: {error_cause(exc)}") from None
        return content_text(content)


def content_text(content: Any) -> str:
    """The observation text of an MCP result: its text blocks joined, other blocks named."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return str(content)
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif isinstance(block, dict):
            what = block.get("mime_type") or block.get("url") or "data"
            parts.append(f"[{block.get('type', 'content')}: {what}]")
        else:
            parts.append(str(block))
    return "\n".join(parts) if parts else "(the tool returned no content)"


def _description(text: str, schema: dict[str, Any]) -> str:
    """The server's description, plus the input format when the tool takes several values
    (the ReAct prompt shows only names and descriptions)."""
    params = list(schema.get("properties") or {})
    base = " ".join((text or "").split()) or "An MCP tool."
    if len(params) > 1:
        return f"{base} Input: a JSON object with keys {', '.join(params)}."
    return base


def _unique_names(
    found: dict[str, list[BaseTool]], reserved: set[str], where: str
) -> list[tuple[str, str, BaseTool]]:
    """(server, name, tool) with clashing names prefixed ``server_``; a clash that survives
    the prefix is an error naming both."""
    counts = Counter(t.name for tools in found.values() for t in tools)
    named: list[tuple[str, str, BaseTool]] = []
    for server, tools in found.items():
        for tool in tools:
            clash = counts[tool.name] > 1 or tool.name in reserved
            named.append((server, f"{server}_{tool.name}" if clash else tool.name, tool))
    seen: dict[str, str] = {}
    for server, name, tool in named:
        if name in seen or name in reserved:
            other = seen.get(name, "the built-in tools")
            raise MCPConfigError(
                f"tool name {name!r} is offered by server {server!r} ({tool.name!r}) and by "
                f"{other} in {where}, even after prefixing server names",
                fix="rename one of the servers in the config",
            )
        seen[name] = f"server {server!r}"
    return named
