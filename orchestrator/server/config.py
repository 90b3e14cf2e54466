"""What a server is started with. Everything that names a file is fixed here, at start:
no request can choose a model file, an index or a session store path."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import OptionError

#: Tool names ``--tools`` accepts (the ones ``orchestrator agent`` offers).
SERVER_TOOLS = ("calculator", "web_search", "knowledge_base")


@dataclass(frozen=True)
class ServerConfig:
    """Options of ``orchestrator serve``."""

    host: str = "127.0.0.1"
    port: int = 8000
    model: str | None = None
    """GGUF file; ``None``: ``$ORCHESTRATOR_MODEL``, else the embedded SmolLM2."""
    index: Path | None = None
    """Index directory for ``model: "rag"`` and the knowledge_base tool."""
    dsn: str | None = None
    """PostgreSQL holding the index; ``index`` is then its name in that database."""
    tools: tuple[str, ...] = ("calculator",)
    """Built-in tools of ``model: "agent"`` (may be empty with ``mcp_config``)."""
    mcp_config: Path | None = None
    """``mcpServers`` file whose tools the agent also gets (started by the caller)."""
    api_key: str | None = None
    store: Path | None = None
    """Session store file for ``session_id`` (default: the data dir's sessions.db)."""
    max_tokens_limit: int = 2048
    """The most ``max_tokens`` a request may ask for."""
    default_max_tokens: int = 256
    """Tokens generated when a request does not say (``max_tokens`` absent)."""
    max_body_bytes: int = 1_000_000
    """Largest request body accepted (413 above it)."""
    agent_max_steps: int = 5
    worker_threads: int = 32
    """Threads that run generations; extra requests wait for the model in them, in order."""

    def __post_init__(self) -> None:
        if self.default_max_tokens > self.max_tokens_limit:
            raise OptionError(
                f"--default-max-tokens {self.default_max_tokens} is over --max-tokens-limit "
                f"{self.max_tokens_limit}",
                fix="lower the default or raise the limit",
            )
        if not self.tools and self.mcp_config is None:
            raise OptionError("--tools is empty", fix=f"choose from {', '.join(SERVER_TOOLS)}")
        for name in self.tools:
            if name not in SERVER_TOOLS:
                raise OptionError(
                    f"unknown tool {name!r}", fix=f"known tools: {', '.join(SERVER_TOOLS)}"
                )
        if "knowledge_base" in self.tools and self.index is None:
            raise OptionError("the knowledge_base tool needs an index", fix="pass --index DIR")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def check_bind(config: ServerConfig) -> None:
    """Refuse to listen beyond this machine without an API key."""
    if not is_loopback(config.host) and not config.api_key:
        raise OptionError(
            f"refusing to listen on {config.host} without an API key: anyone who can reach "
            "this machine could use the model",
            fix="pass --api-key KEY (or set ORCHESTRATOR_API_KEY), or bind to 127.0.0.1",
        )
