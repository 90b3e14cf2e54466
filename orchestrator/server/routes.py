"""The endpoints, and how an answer travels: whole, or as server-sent events.

A generation runs in one worker thread and hands its pieces to the event loop
(``iterate_in_thread``), so many clients wait for the model at once without blocking the
server (``/health`` and ``/metrics`` answer meanwhile) and without deadlock: the engine's lock
serialises them. Each request has a cancellation token (:mod:`orchestrator.cancellation`),
cancelled as soon as its client is gone: a watcher polls ``request.is_disconnected()`` while
the answer is being made (a non-streamed answer, or a stream waiting for its next piece), and
a stream the server stops sending cancels it too. The generation, whatever pipeline makes it,
stops at its next token or step, so the next request gets the model at once.

A streamed request waits for its first piece before the response starts, so a problem found
when generation begins (a prompt over the context window) is still an HTTP 400; one found
later is sent as a last event ``data: {"error": {...}}``, which the openai client raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from orchestrator.cancellation import CancellationToken, GenerationCancelled
from orchestrator.llama.aio import iterate_in_thread
from orchestrator.models import capabilities
from orchestrator.server import plans
from orchestrator.server.backends import Backends
from orchestrator.server.errors import as_api_error
from orchestrator.server.generation import Piece, SessionLocks, Tally, Tokens
from orchestrator.server.metrics import Metrics
from orchestrator.server.responses import (
    DONE,
    ChatShape,
    Collected,
    CompletionShape,
    Shape,
    embedding_list,
    sse,
)
from orchestrator.server.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
)

router = APIRouter()
#: Seconds between two checks that a client waiting for an answer is still connected.
DISCONNECT_POLL_S = 0.1
#: The status logged (never received) for a request whose client left: nginx's convention.
CLIENT_CLOSED = 499


@dataclass
class ServerState:
    """What the endpoints share: loaded models, metrics, per-session locks."""

    backends: Backends
    metrics: Metrics
    locks: SessionLocks

    def __post_init__(self) -> None:
        if self.backends.local:  # a served model's engine is its server's (no busy gauge here)
            self.metrics.watch_model(lambda: self.backends.chat.engine)

    def tally(self, model: str, llm: Any) -> Tally:
        """Token counts the model layer makes for ``llm`` (a served model's: approximate)."""
        return Tally(self.metrics, model, count_tokens=capabilities(llm).count_tokens)


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.orchestrator
    return state


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """Liveness, without auth: the model is loaded (or, served, was found at its server) and
    the server answers."""
    backends = state_of(request).backends
    return {"status": "ok", "model": backends.model_id, "models": list(backends.kinds())}


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    body, content_type = state_of(request).metrics.exposition()
    return Response(content=body, media_type=content_type)


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    return {"object": "list", "data": state_of(request).backends.cards()}


@router.get("/v1/models/{model_id}")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    backends = state_of(request).backends
    cards = {card["id"]: card for card in backends.cards()}
    if model_id not in cards:
        backends.resolve(model_id, "chat")  # the 404 that names the known models
    return cards[model_id]


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    state = state_of(request)
    kind = state.backends.resolve(body.model, "chat")
    tally = state.tally(body.model, state.backends.chat)
    make = plans.plan_chat(body, kind, state.backends, state.locks, tally)
    shape = ChatShape(body.model)
    return await answer(request, state, make, shape, body.stream, body.include_usage())


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request) -> Response:
    state = state_of(request)
    state.backends.resolve(body.model, "completion")
    llm = state.backends.completion
    make = plans.plan_completion(body, state.backends, lambda: state.tally(body.model, llm))
    shape = CompletionShape(body.model)
    return await answer(
        request, state, make, shape, body.stream, body.include_usage(), len(body.prompts())
    )


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingRequest, request: Request) -> dict[str, Any]:
    state = state_of(request)
    state.backends.resolve(body.model, "embedding")
    texts = body.texts()
    if any(not t.strip() for t in texts):
        raise plans.bad("an input is empty", "input", "send non-empty strings")
    vectors, n_tokens = await asyncio.to_thread(state.backends.embed, texts)
    width = int(vectors.shape[1])
    if body.dimensions is not None and body.dimensions != width:
        raise plans.bad(
            f"dimensions={body.dimensions}, but {body.model} makes {width}-dimensional vectors",
            "dimensions",
            f"leave dimensions out or send {width}",
        )
    state.metrics.tokens(body.model, n_tokens, 0)
    return embedding_list(body.model, vectors, body.encoding_format, n_tokens)


async def answer(
    request: Request,
    state: ServerState,
    make: plans.Make,
    shape: Shape,
    stream: bool,
    include_usage: bool,
    n_choices: int = 1,
) -> Response:
    """Run ``make`` in a worker thread; answer whole or as server-sent events. The generation
    is cancelled as soon as the client is gone (see the module docstring)."""
    timer = FirstToken(state.metrics, shape.model)
    cancel = CancellationToken()
    pieces = iterate_in_thread(make, cancel)
    if not stream:
        return await _whole(request, state, pieces, shape, timer, n_choices, cancel)
    try:
        async with _watching(request, cancel):
            first = await anext(pieces, Piece(finish_reason="stop"))
    except GenerationCancelled:
        return _gone(state, shape)
    timer.saw(first)
    events = _events(request, state, first, pieces, shape, timer, include_usage, cancel)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@contextlib.asynccontextmanager
async def _watching(request: Request, cancel: CancellationToken) -> AsyncIterator[None]:
    """Cancel ``cancel`` if the client disconnects while the body runs. (A body left in any
    other way, an error or a cancelled task, cancels it through ``iterate_in_thread``.)"""

    async def watch() -> None:
        while not await request.is_disconnected():
            await asyncio.sleep(DISCONNECT_POLL_S)
        cancel.cancel()

    watcher = asyncio.create_task(watch())
    try:
        yield
    finally:
        watcher.cancel()


def _gone(state: ServerState, shape: Shape) -> Response:
    state.metrics.disconnects.labels(shape.path).inc()
    return Response(status_code=CLIENT_CLOSED)


class FirstToken:
    """Observes the time to the first generated text of one request."""

    def __init__(self, metrics: Metrics, model: str) -> None:
        self.metrics, self.model = metrics, model
        self.started = time.perf_counter()
        self.done = False

    def saw(self, piece: Piece) -> None:
        if piece.visible and not self.done:
            self.done = True
            self.metrics.ttft.labels(self.model).observe(time.perf_counter() - self.started)


async def _whole(
    request: Request,
    state: ServerState,
    pieces: AsyncIterator[Piece],
    shape: Shape,
    timer: FirstToken,
    n_choices: int,
    cancel: CancellationToken,
) -> Response:
    got = Collected()
    try:
        async with contextlib.aclosing(pieces), _watching(request, cancel):  # type: ignore[type-var]
            async for piece in pieces:
                timer.saw(piece)
                got.add(piece)
    except GenerationCancelled:
        return _gone(state, shape)
    return JSONResponse(shape.whole(got, n_choices))


async def _events(
    request: Request,
    state: ServerState,
    first: Piece,
    pieces: AsyncIterator[Piece],
    shape: Shape,
    timer: FirstToken,
    include_usage: bool,
    cancel: CancellationToken,
) -> AsyncIterator[str]:
    """The server-sent events of one streamed answer, ending with ``data: [DONE]``. A client
    that leaves cancels the generation, whether it leaves while a piece is being sent (the
    server stops sending: this generator is closed or cancelled) or while one is awaited."""
    usage_total = Tokens()
    ended = False
    try:
        async with _watching(request, cancel):
            for payload in shape.opening():
                yield sse(payload)
            piece: Piece | None = first
            while piece is not None:
                timer.saw(piece)
                usage_total.add(piece.usage)
                for payload in shape.chunks(piece):
                    yield sse(payload)
                piece = await anext(pieces, None)
        if include_usage:
            yield sse(shape.usage_chunk(usage_total))
        ended = True
        yield DONE
    except GenerationCancelled:
        return
    except Exception as exc:
        ended = True  # the answer ended with an error event, not a disconnect
        error = as_api_error(exc)
        state.metrics.errors.labels(shape.path, str(error.code)).inc()
        yield sse(error.body())
    finally:
        if not ended:
            state.metrics.disconnects.labels(shape.path).inc()
            cancel.cancel()
        await _close(pieces)


async def _close(pieces: AsyncIterator[Piece]) -> None:
    """Close the generation (it stops at its next token); never raise from cleanup."""
    aclose = getattr(pieces, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
