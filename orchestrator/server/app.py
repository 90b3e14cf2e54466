"""``create_app``: the FastAPI application of ``orchestrator serve``.

The server is part of the application shell, with the CLI: it imports the library (models,
chains, agents, memory), and nothing in the library imports it or FastAPI.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

from orchestrator.server.backends import Backends
from orchestrator.server.config import ServerConfig
from orchestrator.server.errors import APIError, install_handlers
from orchestrator.server.generation import SessionLocks
from orchestrator.server.metrics import Metrics, endpoint_of
from orchestrator.server.middleware import GateMiddleware, MetricsMiddleware
from orchestrator.server.responses_routes import router as responses_router
from orchestrator.server.routes import ServerState, router
from orchestrator.server.trace_requests import TraceMiddleware


def create_app(config: ServerConfig, backends: Backends | None = None) -> FastAPI:
    """The application for ``config``; ``backends`` loads the models when not given."""
    loaded = backends if backends is not None else Backends(config)
    metrics = Metrics.create()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # generations wait for the model in these threads (one per request in flight)
        pool = ThreadPoolExecutor(config.worker_threads, thread_name_prefix="orchestrator-gen")
        asyncio.get_running_loop().set_default_executor(pool)
        try:
            yield
        finally:
            loaded.close()

    app = FastAPI(
        title="Orchestrator",
        summary="OpenAI-compatible API over local GGUF models and Orchestrator's pipelines.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.orchestrator = ServerState(backends=loaded, metrics=metrics, locks=SessionLocks())

    def on_error(request: Request, error: APIError) -> None:
        metrics.errors.labels(endpoint_of(request.url.path), str(error.code)).inc()

    install_handlers(app, on_error)
    app.include_router(router)
    app.include_router(responses_router)
    app.add_middleware(TraceMiddleware)  # innermost: records the requests the gate admits
    app.add_middleware(
        GateMiddleware,
        api_key=config.api_key,
        max_body_bytes=config.max_body_bytes,
        metrics=metrics,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def uvicorn_options(config: ServerConfig) -> dict[str, Any]:
    """How ``orchestrator serve`` runs uvicorn: one process (the model is loaded once)."""
    return {
        "host": config.host,
        "port": config.port,
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 5,
    }
