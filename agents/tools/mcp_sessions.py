"""MCP sessions for the synchronous agent loop: one event loop, one session per server.

MCP sessions are async and tied to the event loop that opened them, so every server's session
lives in one background thread's event loop (:class:`SessionBackend`) for the life of a tool
set: a stdio server is one subprocess, not one per call. Callers in any thread submit
coroutines with :meth:`SessionBackend.run` and wait. Starting is all or nothing: every failed
server is named in one :class:`MCPConnectionError` with the fix for each.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import shlex
import threading
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from langchain_core.tools import BaseTool

from orchestrator.agents.tools.mcp_config import DISPLAY_KEY
from orchestrator.errors import OrchestratorError

T = TypeVar("T")
CLOSE_TIMEOUT = 10.0


class MCPConnectionError(OrchestratorError, RuntimeError):
    """An MCP server could not be started, reached or initialised."""


class SessionBackend:
    """A daemon thread running an event loop that holds one session per server."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.failures: dict[str, BaseException] = {}
        self.holders: list[asyncio.Task[None]] = []
        self.closing: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, name="mcp-sessions")
        self.thread.daemon = True
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        """Run ``coro`` on the backend loop and wait for it (``TimeoutError`` after
        ``timeout`` seconds, when the call is cancelled)."""
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("an MCP tool was called from its own session thread")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError from None

    async def open_all(
        self, connections: dict[str, dict[str, Any]], timeout: float
    ) -> dict[str, list[BaseTool]]:
        """Start every server at once; any failure is one error naming each failed server."""
        self.closing = asyncio.Event()
        names = list(connections)
        results = await asyncio.gather(
            *(self._open(name, connections[name], timeout) for name in names),
            return_exceptions=True,
        )
        failed = {n: r for n, r in zip(names, results, strict=True) if isinstance(r, BaseException)}
        if failed:
            raise startup_error(failed, connections, timeout)
        return {n: r for n, r in zip(names, results, strict=True) if isinstance(r, list)}

    async def _open(self, name: str, connection: dict[str, Any], timeout: float) -> list[BaseTool]:
        ready: asyncio.Future[list[BaseTool]] = self.loop.create_future()
        task = asyncio.create_task(self._hold(name, connection, ready))
        self.holders.append(task)
        try:
            return await asyncio.wait_for(asyncio.shield(ready), timeout)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise

    async def _hold(
        self, name: str, connection: dict[str, Any], ready: asyncio.Future[list[BaseTool]]
    ) -> None:
        """Open the session, list its tools, and keep it open until ``closing`` is set (the
        session's context is entered and left in this one task, as anyio requires)."""
        from langchain_mcp_adapters.tools import load_mcp_tools as adapter_tools

        assert self.closing is not None
        try:
            async with open_session(name, connection) as session:
                tools = await adapter_tools(session, server_name=name, handle_tool_errors=False)
                ready.set_result(tools)
                await self.closing.wait()
        except Exception as exc:
            self.failures[name] = exc
            if not ready.done():
                ready.set_exception(exc)

    async def _close_all(self) -> None:
        if self.closing is not None:
            self.closing.set()
        if self.holders:
            _, pending = await asyncio.wait(self.holders, timeout=CLOSE_TIMEOUT)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def shutdown(self) -> None:
        """End the sessions (stdio servers exit), then the loop and its thread."""
        if self.loop.is_closed():
            return
        if self.thread.is_alive():
            # sessions that cannot close in time end with the (daemon) thread
            with contextlib.suppress(TimeoutError, RuntimeError):
                self.run(self._close_all(), CLOSE_TIMEOUT + 5)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(CLOSE_TIMEOUT)
        if not self.thread.is_alive():
            self.loop.close()


@contextlib.asynccontextmanager
async def open_session(name: str, connection: dict[str, Any]) -> AsyncIterator[Any]:
    """An initialised ``ClientSession``. A stdio server is started with the mcp SDK itself:
    ``langchain-mcp-adapters`` would expand ``${VAR}`` in its ``env`` a second time (the
    config reader expanded it once, and a value may hold a literal ``${``)."""
    connection = {k: v for k, v in connection.items() if k != DISPLAY_KEY}
    if connection["transport"] != "stdio":
        from langchain_mcp_adapters.client import MultiServerMCPClient

        client = MultiServerMCPClient({name: connection}, handle_tool_errors=False)  # type: ignore[dict-item]
        async with client.session(name) as session:
            yield session
        return
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    fields = ("command", "args", "env", "cwd")
    params = StdioServerParameters(**{k: connection[k] for k in fields if k in connection})
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def error_cause(exc: BaseException) -> str:
    """The innermost error of an exception group (anyio wraps transport failures)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def startup_error(
    failed: dict[str, BaseException], connections: dict[str, dict[str, Any]], timeout: float
) -> MCPConnectionError:
    """One error naming every server that did not start, each with its own fix."""
    lines, fixes = [], []
    for name, exc in failed.items():
        connection = connections[name]
        cause = (
            f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else error_cause(exc)
        )
        shown = _as_written(connection)
        cause = _unexpanded(cause, connection, shown)
        if connection["transport"] == "stdio":
            lines.append(f"server {name!r} (command: {shown}) did not start: {cause}")
            fixes.append(f"run `{shown}` by hand: it must speak MCP on stdin/stdout")
        else:
            lines.append(f"server {name!r} at {shown} is not reachable: {cause}")
            fixes.append(f"start the server that serves MCP at {shown}")
    return MCPConnectionError("; ".join(lines), fix="; ".join(fixes))


def _as_written(connection: dict[str, Any]) -> str:
    """The command line or URL as the config wrote it (``${VAR}`` unexpanded)."""
    if DISPLAY_KEY in connection:
        return str(connection[DISPLAY_KEY])
    if connection["transport"] == "stdio":
        return shlex.join([connection["command"], *connection["args"]])
    return str(connection["url"])


def _unexpanded(cause: str, connection: dict[str, Any], shown: str) -> str:
    """``cause`` with the expanded command line or URL (which may hold a token from the
    environment) replaced by the text as written."""
    if connection["transport"] == "stdio":
        expanded = shlex.join([connection["command"], *connection["args"]])
    else:
        expanded = str(connection["url"])
    return cause.replace(expanded, shown) if expanded != shown else cause


__all__ = [
    "CLOSE_TIMEOUT",
    "MCPConnectionError",
    "SessionBackend",
    "error_cause",
    "open_session",
    "startup_error",
]
