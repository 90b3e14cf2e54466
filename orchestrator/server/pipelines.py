"""The project's pipelines as chat "models": ``rag``, ``agent`` and ``story``.

Each reads the last user message of the request and runs the same chain the CLI runs
(``orchestrator rag``, ``orchestrator agent``, ``orchestrator story``); what the chain returns
besides the answer goes into extra response fields:

- ``rag``: the answer cites ``[n]``; ``sources`` (the numbered sources), ``citations`` and
  the strategy's trace as ``orchestrator rag --json`` prints it (``strategy``, ``queries``,
  ``hypothetical``, ``hops``, ``stop_reason``, ``route``: those the strategy reports; none
  for ``plain``);
- ``agent``: ``steps`` (thought, action, action_input, observation), ``stopped_because`` and
  ``tools`` (the names of the tools it could call); a stream sends each step as it happens in
  a ``step`` field;
- ``story``: ``story`` (summary, title, character, story); the message is the story.

Token usage is the sum over every model call the pipeline made; ``finish_reason`` is the last
call's (``length`` when the answer hit ``max_tokens``). Each runs in the request's
cancellation scope (see :mod:`orchestrator.server.generation`): a client that leaves stops it
at its next token or step, whether it was streaming or inside a non-streamed ``invoke``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from orchestrator.server.generation import Piece, Tally, Tokens, UsageTally

PIPELINES = ("rag", "agent", "story")
_STEP_KEYS = ("thought", "action", "action_input", "observation", "parse_error")


def bound(llm: Any, overrides: Mapping[str, Any]) -> Any:
    """``llm`` bound to a request's sampling ``overrides`` (none: ``llm`` itself)."""
    return llm.bind(**overrides) if overrides else llm


def _finish(usage: UsageTally, tokens: Tokens, fields: dict[str, Any] | None = None) -> Piece:
    """The last piece: ``length`` when the call that wrote the answer hit its ``max_tokens``."""
    return Piece(finish_reason=usage.finish_reason, usage=tokens, fields=fields)


def rag_pieces(
    chat: Any, rag: Any, question: str, overrides: Mapping[str, Any], tally: Tally
) -> Iterator[Piece]:
    """The server's RAG spec (``rag``: a :class:`~orchestrator.server.backends.RagPipeline`)
    built by the library over its open retrievers and the server's model, with the spec's
    sampling under the request's: the strategy's trace and the sources as they come (before
    the answer), then the answer."""
    from orchestrator.agents.pipelines import build
    from orchestrator.agents.pipelines.answers import AnswerCollector
    from orchestrator.agents.pipelines.rag import answer_model_spec

    usage = UsageTally()
    sampling = {**answer_model_spec(rag.spec).sampling(), **overrides}
    chain = build(rag.spec, llm=bound(chat, sampling), retrievers=rag.retrievers)
    collector = AnswerCollector()
    with tally.generation(usage) as tokens:
        parts = chain.stream({"question": question}, {"callbacks": [usage]})
        # closed here: a stream left early ends inside the pipeline's accounting
        with contextlib.closing(parts):
            for part in parts:
                fields, text = collector.add(part)
                if fields:
                    yield Piece(fields=fields)
                if text:
                    tally.text.append(text)
                    yield Piece(text=text)
    yield _finish(usage, tokens, {"citations": collector.record()["citations"]})


def agent_pieces(
    spec: Any,
    llm: Any,
    tools: list[Any],
    question: str,
    step_max_tokens: int | None,
    tally: Tally,
) -> Iterator[Piece]:
    """The server's agent spec over its model and tools (the library's executor); each
    finished step is one piece. ``step_max_tokens``: the request's ``max_tokens``."""
    from orchestrator.agents.pipelines.agent import agent_executor

    usage = UsageTally()
    request = spec.model_copy(update={"step_max_tokens": step_max_tokens})
    executor = agent_executor(request, llm, tools)
    result: dict[str, Any] = {}
    with tally.generation(usage) as tokens:
        thought = ""
        events = executor.stream({"input": question}, {"callbacks": [usage]})
        with contextlib.closing(events):
            for event in events:
                kind = event["type"]
                if kind == "action":
                    thought = str(event.get("thought", ""))
                elif kind == "observation":
                    yield Piece(fields={"step": _step(event, thought)})
                elif kind == "final":
                    result = event["result"]
    output = str(result["output"])
    tally.text.append(output)
    yield Piece(text=output)
    steps = [{k: s.get(k) for k in _STEP_KEYS} for s in result["steps"]]
    fields = {
        "steps": steps,
        "stopped_because": result["stopped_because"],
        "tools": [t.name for t in tools],
    }
    yield _finish(usage, tokens, fields)


def _step(event: Mapping[str, Any], thought: str) -> dict[str, Any]:
    """The public record of the step an ``observation`` event closes."""
    action = event["steps"][-1].action
    return {
        "step": event.get("step"),
        "thought": thought,
        "action": action.tool,
        "action_input": str(action.tool_input),
        "observation": str(event.get("observation", "")),
    }


def story_pieces(
    chat: Any, summary: str, overrides: Mapping[str, Any], tally: Tally
) -> Iterator[Piece]:
    """The story chain (summary -> title -> character -> story); one piece at the end."""
    from orchestrator.agents.pipelines import StorySpec, build

    usage = UsageTally()
    with tally.generation(usage) as tokens:
        result = build(StorySpec(), llm=bound(chat, overrides)).invoke(
            {"summary": summary}, {"callbacks": [usage]}
        )
    fields = {k: result[k] for k in ("summary", "title", "character", "story")}
    tally.text.append(fields["story"])
    yield Piece(text=fields["story"])
    yield _finish(usage, tokens, {"story": fields})
