"""Hypothesis strategies for hostile OpenAI-style request bodies (``test_server_fuzz``).

Bodies start well formed (with strange text in text fields: controls, null bytes, private use,
template and control-token syntax), then get up to two values anywhere replaced by any JSON
(wrong types, NaN / Infinity, huge numbers), removed, or given a lone UTF-16 surrogate.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

# ---- values: strange text, edge numbers, any JSON ----

SPECIAL_TEXT = [
    "\ud83d\ude00", "\x00", "nul\x00byte", "\u202e",
    "\ufeff", "\uffff", "\U0010ffff", "{x}", "{{x}}", "{% if %}", "<|im_start|>system\n",
    "<|im_end|>", "</s>", "%s%n", "\\", "", " ", "\n\n\n", "\u0301" * 8, "é" * 40,
]
ANY_CHAR = st.characters(codec=None)  # controls, private use, unassigned
TEXT = st.one_of(st.text(max_size=12), st.text(ANY_CHAR, max_size=6), st.sampled_from(SPECIAL_TEXT))
LONE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)  # JSON "\\ud800" decodes to one
LONE_TEXT = st.tuples(TEXT, LONE, TEXT).map("".join)
HUGE = st.sampled_from([2**31, 2**32, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**40, -(10**40)])
NUMBER = st.one_of(
    st.integers(-3, 8), HUGE, st.floats(allow_nan=True, allow_infinity=True), st.just(-0.0)
)
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, TEXT, LONE_TEXT)
JSON = st.recursive(
    SCALAR,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(TEXT, kids, max_size=3),
    max_leaves=6,
)
NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,7}", fullmatch=True)
DEEP = st.integers(900, 20_000).map(lambda n: "[" * n + "]" * n)
ARGUMENTS = st.one_of(
    st.dictionaries(NAME, JSON, max_size=2).map(json.dumps), JSON.map(json.dumps), TEXT, DEEP,
    st.sampled_from(['{"a": "\\ud800"}', '{"a": NaN}', '{"a": 1e999}', "[1]"]),
)


def mostly(often: st.SearchStrategy[Any], rarely: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``often`` nine times in ten (``one_of`` would merge repeated branches)."""
    return st.sampled_from(range(10)).flatmap(lambda i: rarely if i == 9 else often)


def edgy(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a valid value, sometimes an edge number (negative, huge, NaN, Infinity)."""
    return mostly(good, NUMBER)


def obj(fixed: dict[str, Any], /, **optional: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(fixed, optional=optional)


# ---- bodies: well formed, then up to two values anywhere replaced or removed ----


@st.composite
def hostile(
    draw: st.DrawFn, well_formed: st.SearchStrategy[Any], cap: str = "", changes: bool = True
) -> Any:
    """A well-formed body with up to two values anywhere replaced by any JSON, removed, or
    given a lone surrogate (in a string value or a key), maybe an unknown field. ``cap``: the
    token field always set for the agent (it steps with 256 tokens when that is absent);
    ``changes=False``: the well-formed body as drawn."""
    body = draw(well_formed)
    if not changes:
        return body
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        container, key = draw(st.sampled_from(_slots(body)))
        change = draw(st.sampled_from(["json", "json", "delete", "surrogate"]))
        if change == "delete" and isinstance(container, dict):
            del container[key]
        elif change == "surrogate" and isinstance(container[key], str):
            container[key] += draw(LONE)
        elif change == "surrogate" and isinstance(container, dict):
            container[key + draw(LONE)] = container.pop(key)
        else:
            container[key] = draw(JSON)
    if draw(st.sampled_from(range(10))) == 9:
        body[draw(TEXT)] = draw(JSON)  # an unknown field
    if cap and body.get("model") == "agent":
        body.setdefault(cap, 2)
    return body


def _slots(body: dict[str, Any]) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in ``body``, at any depth."""
    slots: list[tuple[Any, Any]] = []
    stack: list[Any] = [body]
    while stack:
        item = stack.pop()
        keys = list(item) if isinstance(item, dict) else range(len(item))
        for key in keys:
            slots.append((item, key))
            if isinstance(item[key], dict | list) and item[key]:
                stack.append(item[key])
    return slots


SCHEMA = st.recursive(
    obj(
        {"type": st.sampled_from(["string", "integer", "number", "boolean", "null", "weird"])},
        enum=st.lists(SCALAR, max_size=3),
        pattern=st.sampled_from(["^a+$", "(", "[\\d-]{2,}", "\\ud800", "a{99999}"]) | TEXT,
        format=st.sampled_from(["date", "uuid", "email", "weird"]),
        minLength=edgy(st.integers(0, 3)), maxLength=edgy(st.integers(0, 9)),
        minimum=NUMBER, maxItems=edgy(st.integers(0, 3)), minItems=edgy(st.integers(0, 2)),
        **{"$ref": st.sampled_from(["#/$defs/a", "#/definitions/b", "#", "http://x/y"])},
    ),
    lambda kids: obj(
        {"type": st.sampled_from(["object", "array"])},
        properties=st.dictionaries(TEXT, kids, max_size=3),
        required=st.lists(TEXT, max_size=2),
        items=kids,
        anyOf=st.lists(kids, max_size=2),
        additionalProperties=st.booleans() | kids,
        **{"$defs": st.dictionaries(st.sampled_from(["a", "b"]), kids, max_size=2)},
    ),
    max_leaves=4,
)
SAMPLING = {
    "max_tokens": edgy(st.integers(1, 4)),
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0.01, 1),
    "seed": edgy(st.integers(0, 2**31)),
    "top_k": st.integers(0, 100),
    "min_p": st.floats(0, 1),
    "repeat_penalty": st.floats(0.5, 2),
    "presence_penalty": st.just(0) | NUMBER,
    "n": edgy(st.just(1)),
    "logprobs": edgy(st.just(False)),
    "logit_bias": st.dictionaries(TEXT, NUMBER, max_size=2),
    "stop": TEXT | st.lists(TEXT, max_size=5),
    "stream": st.booleans(),
    "stream_options": obj({}, include_usage=st.booleans()),
    "user": TEXT,
    "metadata": st.dictionaries(TEXT, TEXT, max_size=2),
}


def model(models: dict[str, str]) -> st.SearchStrategy[Any]:
    gguf = st.sampled_from([i for i, kind in models.items() if kind == "gguf"])
    names = ["gpt-4o", "", "../../../etc/passwd", "/tmp/x.gguf", "rag", *models]
    return mostly(gguf, st.sampled_from(names) | TEXT)


def chat_body(models: dict[str, str], changes: bool = True) -> st.SearchStrategy[Any]:
    part = obj({"type": st.sampled_from(["text", "text", "image_url"]), "text": TEXT})
    content = st.one_of(TEXT, st.none(), st.lists(part, max_size=2))
    function = obj({"name": NAME | TEXT, "arguments": ARGUMENTS})
    call = obj({"id": TEXT, "type": st.just("function"), "function": function})
    role = st.sampled_from(["system", "developer", "user", "user", "assistant", "tool"])
    message = obj(
        {"role": role, "content": content},
        name=TEXT, tool_call_id=TEXT, tool_calls=st.lists(call, max_size=2),
    )
    spec = obj({"name": NAME}, description=TEXT, parameters=SCHEMA, strict=st.booleans())
    tool = obj({"type": st.just("function"), "function": spec})
    fmt_schema = obj({"name": NAME}, schema=SCHEMA, strict=st.booleans())
    choice = st.sampled_from(["none", "auto", "required"]) | obj(
        {"type": st.just("function"), "function": obj({"name": NAME})}
    )
    kinds = st.sampled_from(["text", "json_object", "json_schema"])
    fmt = obj({"type": kinds}, json_schema=fmt_schema)
    return hostile(
        obj(
            {"model": model(models), "messages": st.lists(message, min_size=1, max_size=3)},
            **SAMPLING,
            max_completion_tokens=edgy(st.integers(1, 4)),
            tools=st.lists(tool, max_size=2),
            tool_choice=choice,
            response_format=fmt,
            session_id=NAME | TEXT,
            top_logprobs=edgy(st.just(0)),
            parallel_tool_calls=st.booleans(),
        ),
        cap="max_tokens",
        changes=changes,
    )


def completion_body(models: dict[str, str], changes: bool = True) -> st.SearchStrategy[Any]:
    tokens = st.lists(st.integers(-5, 10**6))
    prompt = st.one_of(TEXT, TEXT, st.lists(TEXT, max_size=3), tokens)
    return hostile(
        obj(
            {"model": model(models), "prompt": prompt},
            **SAMPLING,
            echo=st.booleans(),
            suffix=TEXT,
            best_of=edgy(st.just(1)),
        ),
        changes=changes,
    )


def embedding_body(models: dict[str, str], changes: bool = True) -> st.SearchStrategy[Any]:
    embedder = st.sampled_from([i for i, kind in models.items() if kind == "embedding"])
    tokens = st.lists(st.integers(-5, 10**6), max_size=3)  # OpenAI's token arrays
    inputs = st.one_of(
        TEXT, TEXT, st.lists(TEXT, min_size=1, max_size=3), st.just("word " * 600),
        tokens | st.lists(tokens, max_size=2),
    )
    return hostile(
        obj(
            {"model": embedder | model(models), "input": inputs},
            encoding_format=st.sampled_from(["float", "base64", "binary"]),
            dimensions=edgy(st.just(384)),
            user=TEXT,
        ),
        changes=changes,
    )


def responses_body(models: dict[str, str], changes: bool = True) -> st.SearchStrategy[Any]:
    kind = st.sampled_from(["input_text", "output_text", "input_image", "refusal"])
    part = obj({"type": kind, "text": TEXT})
    role = st.sampled_from(["user", "user", "assistant", "system", "developer"])
    message = obj({"role": role, "content": TEXT | st.lists(part, max_size=2)})
    call = obj(
        {"type": st.just("function_call"), "call_id": TEXT, "name": NAME | TEXT},
        arguments=ARGUMENTS,
    )
    output = obj({"type": st.just("function_call_output"), "call_id": TEXT, "output": TEXT})
    tool = obj({"type": st.just("function"), "name": NAME}, parameters=SCHEMA, strict=st.booleans())
    fmt = obj(
        {"type": st.sampled_from(["text", "json_object", "json_schema"])}, name=NAME, schema=SCHEMA
    )
    return hostile(
        obj(
            {"model": model(models), "input": TEXT | st.lists(message | call | output, max_size=3)},
            instructions=TEXT,
            max_output_tokens=edgy(st.integers(1, 4)),
            previous_response_id=TEXT,
            tools=st.lists(tool, max_size=2),
            tool_choice=st.sampled_from(["none", "auto", "required"]),
            text=obj({}, format=fmt),
            stream=st.booleans(),
            store=st.booleans(),
            metadata=st.dictionaries(TEXT, TEXT, max_size=2),
            temperature=st.floats(0, 2),
            seed=edgy(st.integers(0, 2**31)),
            truncation=st.sampled_from(["auto", "disabled"]),
            reasoning=obj({}, effort=st.sampled_from(["low", "high"])),
        ),
        cap="max_output_tokens",
        changes=changes,
    )


@st.composite
def with_lone_surrogate(draw: st.DrawFn, well_formed: st.SearchStrategy[Any]) -> Any:
    """A well-formed body with a lone surrogate added to one string value or key, anywhere,
    and the param path the server should name for it."""
    body = draw(well_formed)
    slot = draw(st.sampled_from(_text_slots(body)))
    path, container, key, in_key = slot
    lone = draw(LONE)
    if in_key:
        container[key + lone] = container.pop(key)
        path += lone
    else:
        container[key] += lone
    # as the server reads it: JSON decoding joins an escaped high + low surrogate into one
    # character, so only the unpaired ones stay escapes in the path it names
    return body, json.loads(json.dumps(path)).encode("utf-8", "backslashreplace").decode("utf-8")


def _text_slots(body: dict[str, Any]) -> list[tuple[str, Any, Any, bool]]:
    """Every string value and key in ``body``: (param path, container, key, is it the key)."""
    slots: list[tuple[str, Any, Any, bool]] = []
    stack: list[tuple[str, Any]] = [("", body)]
    while stack:
        path, item = stack.pop()
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in pairs:
            if isinstance(item, dict):
                name = f"{path}.{key}" if path else key
                slots.append((name, item, key, True))
            else:
                name = f"{path}[{key}]"
            if isinstance(child, str):
                slots.append((name, item, key, False))
            elif isinstance(child, dict | list):
                stack.append((name, child))
    return slots
