"""Model-written queries: the constrained calls by which a strategy's model says what to search.

Model calls that write queries are constrained: a chat model (local or served) gets
``response_format={"type": "json_schema", ...}``, an Orchestrator completion model (``LlamaCpp``)
the same schema as a GBNF ``grammar=`` (:func:`orchestrator.models.capabilities` chooses); any
other model is asked the same prompt unconstrained and its reply must still parse. Schemas bound
every string and list, so a small model cannot ramble past its token budget. Question and
document text fill the prompt library's templates through
:func:`~orchestrator.prompts.templates.instruction_prompt`, which defuses them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable, RunnableConfig

from orchestrator.errors import DataError
from orchestrator.models import capabilities
from orchestrator.prompts.templates import instruction_prompt

#: Longest query a strategy's model may write (characters); a few search terms fit easily.
QUERY_CHARS = 160

#: A query: a letter or digit first (a small model otherwise writes ``"..."`` or ``"./.."``),
#: then up to :data:`QUERY_CHARS` characters on one line, no braces (it otherwise closes the
#: JSON in its head and keeps writing).
QUERY_PATTERN = f'^[A-Za-z0-9][^"\\\\{{}}]{{2,{QUERY_CHARS - 1}}}$'


def generate_text(
    llm: Runnable[Any, Any],
    template: str,
    values: Mapping[str, Any],
    *,
    max_tokens: int,
    config: RunnableConfig | None = None,
    **call: Any,
) -> str:
    """``template`` filled with defused ``values``, sent to ``llm`` as one user turn; its text."""
    prompt = instruction_prompt(llm, template)
    chain = prompt | llm.bind(max_tokens=max_tokens, **call) | StrOutputParser()
    return str(chain.invoke(dict(values), config)).strip()


def generate_json(
    llm: Runnable[Any, Any],
    template: str,
    values: Mapping[str, Any],
    schema: Mapping[str, Any],
    *,
    max_tokens: int,
    config: RunnableConfig | None = None,
) -> dict[str, Any]:
    """A JSON object matching ``schema`` (constrained where the model allows it)."""
    constraint = capabilities(llm).constrain(schema=dict(schema))
    text = generate_text(llm, template, values, max_tokens=max_tokens, config=config, **constraint)
    try:
        reply = json.loads(text, strict=False)
    except json.JSONDecodeError:
        reply = None
    if not isinstance(reply, dict):
        raise DataError(
            f"the model's reply is not the JSON object the strategy asked for: {text[:200]!r}",
            fix="use a llama.cpp model or a server that applies JSON schemas (the reply is then "
            "grammar-constrained), or raise the model's max_tokens",
        )
    return reply


def query_field() -> dict[str, Any]:
    """The JSON schema of one query string (see :data:`QUERY_PATTERN`)."""
    return {"type": "string", "pattern": QUERY_PATTERN}


def string_schema(name: str) -> dict[str, Any]:
    """``{"<name>": "<a query>"}``."""
    return {"type": "object", "properties": {name: query_field()}, "required": [name]}


def list_schema(name: str, items: Mapping[str, Any], least: int, most: int) -> dict[str, Any]:
    """``{"<name>": [<item>, ...]}`` with ``least`` to ``most`` items."""
    field = {"type": "array", "items": dict(items), "minItems": least, "maxItems": most}
    return {"type": "object", "properties": {name: field}, "required": [name]}


def json_budget(items: int = 1) -> int:
    """Tokens enough for any reply of ``items`` strings of at most :data:`QUERY_CHARS` (every
    token writes at least one character), so a constrained reply is never cut off."""
    return items * (QUERY_CHARS + 8) + 16


def clean_queries(queries: Sequence[Any], *, keep: Sequence[str] = ()) -> list[str]:
    """Distinct, non-blank queries (case- and space-insensitive), ``keep`` first."""
    seen: set[str] = set()
    out: list[str] = []
    for query in [*keep, *queries]:
        text = " ".join(str(query).split())
        key = text.lower()
        if text and key not in seen:
            seen.add(key)
            out.append(text)
    return out
