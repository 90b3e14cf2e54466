"""Reading the usual ``mcpServers`` JSON into connections for ``langchain-mcp-adapters``.

The file is the one Claude Desktop, Cursor and most MCP clients use::

    {"mcpServers": {
        "files": {"command": "python", "args": ["server.py"], "env": {"TOKEN": "${TOKEN}"}},
        "docs":  {"url": "http://127.0.0.1:8765/mcp", "transport": "streamable_http"}
    }}

A server with ``command`` runs as a subprocess over stdio; one with ``url`` is reached over
streamable HTTP (``transport``: ``streamable_http``, ``streamable-http`` or ``http``; Claude
Code's ``type`` key is read as ``transport``). ``"disabled": true`` skips a server.
``${VAR}`` references (also ``${VAR:-default}``, ``${env:VAR}``, ``${userHome}``; see
:mod:`.mcp_vars`) are expanded in ``command``, ``args``, ``env``, ``cwd``, ``url`` and
``headers``, once, here: an unset variable is an error, never text sent to a server. Every
mistake is an :class:`MCPConfigError` naming the file, the server and the fix, found before any
server is started.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from orchestrator.agents.tools.mcp_vars import EXPANDED_FIELDS, VariableError, expand_variables
from orchestrator.errors import OrchestratorError, unknown_option

HTTP_TRANSPORTS = ("streamable_http", "streamable-http", "http")
TRANSPORTS = ("stdio", *HTTP_TRANSPORTS)
STDIO_KEYS = ("command", "args", "env", "cwd", "transport", "type", "disabled")
HTTP_KEYS = ("url", "headers", "timeout", "transport", "type", "disabled")
SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
EXAMPLE = (
    '{"mcpServers": {"NAME": {"command": "python", "args": ["server.py"]}}} or '
    '{"mcpServers": {"NAME": {"url": "http://127.0.0.1:8000/mcp", "transport": "streamable_http"}}}'
)


class MCPConfigError(OrchestratorError, ValueError):
    """An ``mcpServers`` config that cannot be used; says which file, which server, what to do."""


def read_mcp_config(source: str | Path | Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The enabled servers of ``source`` (a JSON file path or the parsed dict) as
    ``langchain-mcp-adapters`` connection dicts, keyed by server name."""
    if isinstance(source, Mapping):
        where, data = "the MCP config (dict)", dict(source)
    else:
        where, data = _load_file(Path(source).expanduser())
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise MCPConfigError(
            f"{where} has no \"mcpServers\" object at the top level",
            fix=f"write it as {EXAMPLE}",
        )
    if not servers:
        raise MCPConfigError(f"{where} lists no servers under \"mcpServers\"", fix=EXAMPLE)
    connections: dict[str, dict[str, Any]] = {}
    for name, entry in servers.items():
        connection = _server(where, str(name), entry)
        if connection is not None:
            connections[str(name)] = connection
    if not connections:
        raise MCPConfigError(
            f"every server in {where} is disabled",
            fix='remove "disabled": true from the servers you want to use',
        )
    return connections


def _load_file(path: Path) -> tuple[str, Any]:
    where = f"MCP config file {str(path)!r}"
    if not path.is_file():
        raise MCPConfigError(
            f"{where} does not exist" if not path.exists() else f"{where} is not a file",
            fix=f"pass the path of a JSON file such as {EXAMPLE}",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MCPConfigError(
            f"{where} cannot be read ({exc})", fix="save it as UTF-8 JSON"
        ) from None
    try:
        return where, json.loads(text)
    except json.JSONDecodeError as exc:
        raise MCPConfigError(
            f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            fix="fix the JSON there (a trailing comma or a missing quote is the usual cause)",
        ) from None


def _server(where: str, name: str, entry: Any) -> dict[str, Any] | None:
    """One server's connection dict, or ``None`` when it is disabled."""
    here = f"server {name!r} in {where}"
    if not SERVER_NAME.match(name):
        raise MCPConfigError(
            f"{here}: the name may hold only letters, digits, '_', '-' and '.'",
            fix="rename the server (its name prefixes its tools' names on a clash)",
        )
    if not isinstance(entry, dict):
        raise MCPConfigError(f"{here} is not a JSON object", fix=f"write it as in {EXAMPLE}")
    if "transport" in entry and "type" in entry and entry["transport"] != entry["type"]:
        raise MCPConfigError(f"{here} sets both \"transport\" and \"type\"", fix="keep one")
    disabled = entry.get("disabled", False)
    if not isinstance(disabled, bool):
        raise MCPConfigError(f"{here}: \"disabled\" must be true or false", fix="use a boolean")
    if disabled:
        return None
    for key in entry:
        if key not in STDIO_KEYS and key not in HTTP_KEYS:
            error = unknown_option(str(key), {*STDIO_KEYS, *HTTP_KEYS}, where=here)
            raise MCPConfigError(error.message, fix=error.fix)
    transport = _transport(here, entry)
    keys, kind = (STDIO_KEYS, "a stdio") if transport == "stdio" else (HTTP_KEYS, "an HTTP")
    for key in entry:
        if key not in keys:
            raise MCPConfigError(
                f"{here}: {key!r} does not apply to {kind} server",
                fix=f'a server has either "command" (stdio: {", ".join(STDIO_KEYS)}) or "url" '
                f"(HTTP: {', '.join(HTTP_KEYS)}), not both",
            )
    connection = _stdio(here, _expanded(here, entry)) if transport == "stdio" else _http(
        here, _expanded(here, entry)
    )
    connection[DISPLAY_KEY] = _as_written(entry, connection)
    return connection


DISPLAY_KEY = "display"
"""The key of a connection's text for messages: its command line or URL as the config wrote it,
before ``${VAR}`` expansion, so that an error never prints a token taken from the environment.
:func:`~orchestrator.agents.tools.mcp_sessions.open_session` drops it before connecting."""


def _as_written(entry: dict[str, Any], connection: dict[str, Any]) -> str:
    if connection["transport"] == "stdio":
        return shlex.join([str(entry["command"]), *(str(a) for a in entry.get("args", []))])
    return str(entry["url"])


def _expanded(here: str, entry: dict[str, Any]) -> dict[str, Any]:
    """``entry`` with the references in its string fields expanded; every unset variable of
    the server is named in one error, with the fields that use it."""
    out = dict(entry)
    missing: dict[str, list[str]] = {}
    for key in EXPANDED_FIELDS:
        value = entry.get(key)
        if isinstance(value, str):
            out[key] = _expand(here, key, value, missing)
        elif isinstance(value, list):
            out[key] = [_expand(here, f"{key}[{i}]", v, missing) for i, v in enumerate(value)]
        elif isinstance(value, dict):
            out[key] = {k: _expand(here, f"{key}.{k}", v, missing) for k, v in value.items()}
    if missing:
        names = list(missing)
        used = ", ".join(f"{n} (in {', '.join(fields)})" for n, fields in missing.items())
        raise MCPConfigError(
            f"{here}: environment variable{'s' if len(names) > 1 else ''} {used} "
            f"{'are' if len(names) > 1 else 'is'} not set",
            fix=f"set {'them' if len(names) > 1 else 'it'} before starting (export "
            f"{names[0]}=...), or give a default in the config: ${{{names[0]}:-value}}",
        )
    return out


def _expand(here: str, field: str, value: Any, missing: dict[str, list[str]]) -> Any:
    """One value expanded (non-strings are left for the type checks); unset variables are
    collected in ``missing``, an unsupported reference is an error at once."""
    if not isinstance(value, str):
        return value
    try:
        return expand_variables(value)
    except VariableError as exc:
        if not exc.missing:
            raise MCPConfigError(
                f"{here}: {field} holds {exc.reference!r}, which cannot be expanded", fix=exc.fix
            ) from None
        for name in exc.missing:
            missing.setdefault(name, []).append(field)
        return value


def _transport(here: str, entry: dict[str, Any]) -> str:
    declared = entry.get("transport", entry.get("type"))
    if declared is None:
        if "command" in entry:
            return "stdio"
        if "url" in entry:
            return "streamable_http"
        raise MCPConfigError(
            f"{here} has neither \"command\" (stdio) nor \"url\" (streamable HTTP)",
            fix=f"add one, as in {EXAMPLE}",
        )
    if declared not in TRANSPORTS:
        hint = " (SSE is not supported: serve streamable HTTP)" if declared == "sse" else ""
        raise MCPConfigError(
            f"{here}: unknown transport {declared!r}{hint}",
            fix=f"use one of {', '.join(TRANSPORTS)}",
        )
    return "stdio" if declared == "stdio" else "streamable_http"


def _stdio(here: str, entry: dict[str, Any]) -> dict[str, Any]:
    command = entry.get("command")
    if not isinstance(command, str) or not command.strip():
        raise MCPConfigError(
            f"{here}: \"command\" must be a non-empty string (the program to start)",
            fix='e.g. "command": "python", "args": ["server.py"]',
        )
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise MCPConfigError(
            f"{here}: \"args\" must be a list of strings", fix='e.g. "args": ["server.py", "-v"]'
        )
    connection: dict[str, Any] = {"transport": "stdio", "command": command, "args": list(args)}
    env = _string_map(here, entry, "env")
    if env is not None:
        connection["env"] = env
    cwd = entry.get("cwd")
    if cwd is not None:
        if not isinstance(cwd, str) or not Path(cwd).expanduser().is_dir():
            raise MCPConfigError(
                f"{here}: \"cwd\" {cwd!r} is not a directory", fix="give an existing directory"
            )
        connection["cwd"] = str(Path(cwd).expanduser())
    return connection


def _http(here: str, entry: dict[str, Any]) -> dict[str, Any]:
    url = entry.get("url")
    parsed = urlparse(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise MCPConfigError(
            f"{here}: \"url\" must be an http(s) URL, got {url!r}",
            fix='e.g. "url": "http://127.0.0.1:8000/mcp"',
        )
    connection: dict[str, Any] = {"transport": "streamable_http", "url": url}
    headers = _string_map(here, entry, "headers")
    if headers is not None:
        connection["headers"] = headers
    timeout = entry.get("timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise MCPConfigError(
                f"{here}: \"timeout\" must be a positive number of seconds",
                fix='e.g. "timeout": 30',
            )
        connection["timeout"] = float(timeout)
    return connection


def _string_map(here: str, entry: dict[str, Any], key: str) -> dict[str, str] | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise MCPConfigError(
            f"{here}: \"{key}\" must be an object of string values",
            fix=f'quote every value, e.g. "{key}": {{"NAME": "value"}}',
        )
    return {str(k): v for k, v in value.items()}
