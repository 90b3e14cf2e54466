"""Chat formats: turn a list of role/content messages into the one prompt string a model was
trained on.

A GGUF file usually carries its own Jinja chat template (``tokenizer.chat_template``). We render
it the way llama-cpp-python and Hugging Face transformers do (immutable sandbox, ``trim_blocks``,
``lstrip_blocks``, ``loopcontrols``, ``raise_exception``, ``strftime_now``, transformers'
``tojson``), so a template that works there works here, ``{% break %}`` included.

A file without a template gets the format of its architecture or, failing that, of the turn
markers in its vocabulary (:func:`infer_chat_format`). Those formats are llama-cpp-python's own
registered formatters (``chatml``, ``llama-3``, ``gemma``, ``mistral-instruct``); Phi-3, which
llama-cpp-python does not register, is our one template. This module imports nothing else of
ours; ``llama_cpp`` is imported on first use only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError, nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

PHI3_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


@dataclass(frozen=True)
class ChatFormat:
    """A named chat format and the strings that end an assistant turn.

    Exactly one of ``template`` (Jinja, rendered here) and ``llama_cpp`` (the name of a chat
    format registered in ``llama_cpp.llama_chat_format``, rendered by its formatter) is set.
    ``source`` says where the format came from, for ``orchestrator models`` and error messages.
    """

    name: str
    template: str | None = None
    end_of_turn: tuple[str, ...] = field(default_factory=tuple)
    llama_cpp: str | None = None
    system_role: bool = True
    """False: the format has no system turn; a system message is put before the first user
    message (separated by a blank line), as Gemma's and Mistral's own templates do."""
    source: str = "built-in"


BUILTIN_FORMATS: dict[str, ChatFormat] = {
    "phi3": ChatFormat("phi3", PHI3_TEMPLATE, ("<|end|>", "<|endoftext|>")),
    "chatml": ChatFormat("chatml", None, ("<|im_end|>", "<|endoftext|>"), "chatml"),
    "llama3": ChatFormat("llama3", None, ("<|eot_id|>", "<|end_of_text|>"), "llama-3"),
    "gemma": ChatFormat("gemma", None, ("<end_of_turn>", "<eos>"), "gemma", system_role=False),
    "mistral-instruct": ChatFormat(
        "mistral-instruct", None, ("</s>",), "mistral-instruct", system_role=False
    ),
}

#: ``general.architecture`` -> built-in format, for GGUF files that carry no chat template.
ARCHITECTURE_FORMATS: dict[str, str] = {
    **dict.fromkeys(("gemma", "gemma2", "gemma3", "gemma3n"), "gemma"),
    **dict.fromkeys(
        ("qwen", "qwen2", "qwen2moe", "qwen2vl", "qwen3", "qwen3moe", "qwen3next", "qwen3vl"),
        "chatml",
    ),
    **dict.fromkeys(("qwen3vlmoe", "qwen35", "qwen35moe", "smollm3"), "chatml"),
    **dict.fromkeys(("phi3", "phimoe"), "phi3"),
    **dict.fromkeys(("mistral3", "mistral4"), "mistral-instruct"),
}

#: Turn markers that identify the format when the architecture does not: a ``llama`` file may
#: be Llama-3, SmolLM (ChatML) or Mistral. The first marker found in the vocabulary wins.
VOCAB_FORMATS: tuple[tuple[str, str], ...] = (
    ("<|start_header_id|>", "llama3"),
    ("<start_of_turn>", "gemma"),
    ("<|im_start|>", "chatml"),
    ("[INST]", "mistral-instruct"),
    ("<|assistant|>", "phi3"),
)

#: The format used when nothing identifies one (Phi-3-mini is the project's target model).
FALLBACK_FORMAT = "phi3"

#: Markers that end a turn in common templates; any found in a template become stop strings.
KNOWN_END_MARKERS = (
    "<|end|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<end_of_turn>",
    "</s>",
    "<|endoftext|>",
)


class ChatTemplateError(ValueError):
    """A chat template failed to render (bad syntax, or it rejected the messages)."""


def format_from_template(template: str | None, default: str = FALLBACK_FORMAT) -> ChatFormat:
    """The format for a model: its own template if it has one, else the named built-in."""
    if not template:
        if default not in BUILTIN_FORMATS:
            raise ChatTemplateError(
                f"unknown chat format {default!r}; choose one of {sorted(BUILTIN_FORMATS)}"
            )
        return BUILTIN_FORMATS[default]
    ends = tuple(marker for marker in KNOWN_END_MARKERS if marker in template)
    name = next((f.name for f in BUILTIN_FORMATS.values() if f.end_of_turn[0] in ends), "gguf")
    return ChatFormat(
        name=f"{name} (from GGUF)",
        template=template,
        end_of_turn=ends,
        source="the GGUF's tokenizer.chat_template",
    )


def infer_chat_format(architecture: str, vocabulary: Iterable[str] = ()) -> ChatFormat:
    """The built-in format for a GGUF without a template, with ``source`` saying why: from its
    architecture, else from the turn markers in its vocabulary, else the stated fallback."""
    known = ARCHITECTURE_FORMATS.get(architecture)
    if known:
        why = f"inferred from architecture {architecture!r} (the file has no chat template)"
        return replace(BUILTIN_FORMATS[known], source=why)
    tokens = set(vocabulary)
    for marker, name in VOCAB_FORMATS:
        if marker in tokens:
            why = (
                f"inferred from the {marker} token in the vocabulary of architecture "
                f"{architecture!r} (the file has no chat template)"
            )
            return replace(BUILTIN_FORMATS[name], source=why)
    why = (
        f"fallback: the file has no chat template and no format is known for architecture "
        f"{architecture!r} or its vocabulary; {FALLBACK_FORMAT} is assumed, pass chat_format= "
        "to choose another"
    )
    return replace(BUILTIN_FORMATS[FALLBACK_FORMAT], source=why)


def model_chat_format(
    template: str | None, architecture: str, vocabulary: Iterable[str] = ()
) -> ChatFormat:
    """A model file's format: its own template, else the one inferred for it."""
    if template:
        return format_from_template(template)
    return infer_chat_format(architecture, vocabulary)


def render_chat(
    messages: Iterable[Mapping[str, str]],
    chat_format: ChatFormat,
    *,
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
) -> str:
    """Render messages (dicts with ``role`` and ``content``) into one prompt string.

    Message content is passed to the template as data, never compiled as a template itself,
    so text containing ``{{`` or ``{%`` reaches the model verbatim.
    """
    items = [{"role": m["role"], "content": m["content"]} for m in messages]
    if not chat_format.system_role:
        items = _fold_system(items)
    try:
        if chat_format.template is None:
            return _render_llama_cpp(chat_format, items, add_generation_prompt)
        return str(
            _compile(chat_format.template).render(
                messages=items,
                bos_token=bos_token,
                eos_token=eos_token,
                add_generation_prompt=add_generation_prompt,
            )
        )
    except ChatTemplateError:
        raise
    except (TemplateError, TypeError, ValueError, LookupError, AttributeError) as exc:
        raise ChatTemplateError(
            f"chat template {chat_format.name!r} failed to render: {type(exc).__name__}: {exc}. "
            f"Pass chat_format= one of {sorted(BUILTIN_FORMATS)} to use a built-in format instead."
        ) from exc


def _fold_system(items: list[dict[str, str]]) -> list[dict[str, str]]:
    systems = [m["content"] for m in items if m["role"] == "system"]
    rest = [dict(m) for m in items if m["role"] != "system"]
    if not systems:
        return rest
    first_user = next((m for m in rest if m["role"] == "user"), None)
    if first_user is None:
        return [{"role": "user", "content": "\n\n".join(systems)}, *rest]
    first_user["content"] = "\n\n".join([*systems, first_user["content"]])
    return rest


def _render_llama_cpp(fmt: ChatFormat, items: list[dict[str, str]], add_prompt: bool) -> str:
    """Render with the formatter llama-cpp-python registered under ``fmt.llama_cpp``."""
    if not add_prompt:
        raise ChatTemplateError(
            f"chat format {fmt.name!r} (llama-cpp-python's {fmt.llama_cpp!r}) always ends with "
            "the assistant's turn header, so add_generation_prompt=False cannot be honoured; "
            "use a model template or the 'phi3' format for that"
        )
    return str(_llama_cpp_formatter(str(fmt.llama_cpp))(messages=items).prompt)


#: llama-cpp-python's registered format name -> its formatter function (the registry itself
#: keeps completion handlers, which call the model, not the formatters).
_LLAMA_CPP_FORMATTERS = {
    "chatml": "format_chatml",
    "llama-3": "format_llama3",
    "gemma": "format_gemma",
    "mistral-instruct": "format_mistral_instruct",
}


@lru_cache(maxsize=16)
def _llama_cpp_formatter(name: str) -> Any:
    """The formatter behind a chat format registered in ``llama_cpp.llama_chat_format``."""
    from llama_cpp import llama_chat_format

    try:
        llama_chat_format.get_chat_completion_handler(name)
        return getattr(llama_chat_format, _LLAMA_CPP_FORMATTERS[name])
    except Exception as exc:  # not registered in this llama-cpp-python version
        raise ChatTemplateError(
            f"this llama-cpp-python has no chat format {name!r} ({exc}); "
            "upgrade it (pip install -U llama-cpp-python) or pass chat_format='phi3'"
        ) from exc


class _GenerationTag(Extension):
    """``{% generation %}...{% endgeneration %}``: transformers uses it to mark assistant text
    for training masks; for a prompt it is just its body (as in transformers/llama-cpp)."""

    tags = {"generation"}  # noqa: RUF012 (jinja2 declares it a plain set attribute)

    def parse(self, parser: Parser) -> list[nodes.Node]:
        next(parser.stream)
        return list(parser.parse_statements(("name:endgeneration",), drop_needle=True))


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    """transformers' ``tojson``: unlike Jinja's own it keeps non-ASCII text and does not
    HTML-escape, so tool schemas reach the model as written."""
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


@lru_cache(maxsize=32)
def _compile(template: str) -> Any:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_GenerationTag, loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env.from_string(template)
