"""What a server is started with. Everything that names a file is fixed here, at start:
no request can choose a model file, an index or a session store path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import OptionError
from orchestrator.netloc import is_loopback

if TYPE_CHECKING:
    from orchestrator.agents.pipelines import AgentSpec, RagSpec
    from orchestrator.models import ModelSpec


@dataclass(frozen=True)
class ServerConfig:
    """Options of ``orchestrator serve``: the pipelines as specs (see
    :mod:`orchestrator.agents.pipelines`), built at start."""

    host: str = "127.0.0.1"
    port: int = 8000
    model: ModelSpec | None = None
    """The GGUF model; ``None``: ``$ORCHESTRATOR_MODEL``, else the embedded SmolLM2."""
    rag: RagSpec | None = None
    """The pipeline behind ``model: "rag"`` (none without an index)."""
    agent: AgentSpec | None = None
    """The pipeline behind ``model: "agent"`` (tools, knowledge base, MCP config, limits);
    ``None``: the calculator over the server's model."""
    api_key: str | None = None
    store: Path | None = None
    """Session store file for ``session_id`` (default: the data dir's sessions.db)."""
    max_tokens_limit: int = 2048
    """The most ``max_tokens`` a request may ask for."""
    default_max_tokens: int = 256
    """Tokens generated when a request does not say (``max_tokens`` absent)."""
    max_body_bytes: int = 1_000_000
    """Largest request body accepted (413 above it)."""
    worker_threads: int = 32
    """Threads that run generations; extra requests wait for the model in them, in order."""

    def __post_init__(self) -> None:
        if self.default_max_tokens > self.max_tokens_limit:
            raise OptionError(
                f"--default-max-tokens {self.default_max_tokens} is over --max-tokens-limit "
                f"{self.max_tokens_limit}",
                fix="lower the default or raise the limit",
            )

    def agent_spec(self) -> AgentSpec:
        """:attr:`agent`, or the default agent over the server's model."""
        if self.agent is not None:
            return self.agent
        from orchestrator.agents.pipelines import spec_from_options

        return spec_from_options("agent", model=self.model)  # type: ignore[return-value]


def check_bind(config: ServerConfig) -> None:
    """Refuse to listen beyond this machine without an API key."""
    if not is_loopback(config.host) and not config.api_key:
        raise OptionError(
            f"refusing to listen on {config.host} without an API key: anyone who can reach "
            "this machine could use the model",
            fix="pass --api-key KEY (or set ORCHESTRATOR_API_KEY), or bind to 127.0.0.1",
        )
