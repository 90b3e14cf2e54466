"""Chat formats: turn a list of role/content messages into the one prompt string a model was
trained on.

A GGUF file usually carries its own Jinja chat template (``tokenizer.chat_template``); we render
that in a sandbox. Models that lack one get a built-in format chosen by name (Phi-3 by default,
since Phi-3-mini is the target model). This module imports nothing else of ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

PHI3_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


@dataclass(frozen=True)
class ChatFormat:
    """A named chat format: its Jinja template and the strings that end an assistant turn."""

    name: str
    template: str
    end_of_turn: tuple[str, ...] = field(default_factory=tuple)


BUILTIN_FORMATS: dict[str, ChatFormat] = {
    "phi3": ChatFormat("phi3", PHI3_TEMPLATE, ("<|end|>", "<|endoftext|>")),
    "chatml": ChatFormat("chatml", CHATML_TEMPLATE, ("<|im_end|>", "<|endoftext|>")),
    "llama3": ChatFormat("llama3", LLAMA3_TEMPLATE, ("<|eot_id|>", "<|end_of_text|>")),
}

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


def _raise(message: str) -> None:
    raise ChatTemplateError(message)


@lru_cache(maxsize=32)
def _compile(template: str):  # type: ignore[no-untyped-def]
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    return env.from_string(template)


def format_from_template(template: str | None, default: str = "phi3") -> ChatFormat:
    """The format for a model: its own template if it has one, else the named built-in."""
    if not template:
        if default not in BUILTIN_FORMATS:
            raise ChatTemplateError(
                f"unknown chat format {default!r}; choose one of {sorted(BUILTIN_FORMATS)}"
            )
        return BUILTIN_FORMATS[default]
    ends = tuple(marker for marker in KNOWN_END_MARKERS if marker in template)
    name = next((f.name for f in BUILTIN_FORMATS.values() if f.end_of_turn[0] in ends), "gguf")
    return ChatFormat(name=f"{name} (from GGUF)", template=template, end_of_turn=ends)


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
    try:
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
    except TemplateError as exc:
        raise ChatTemplateError(
            f"chat template {chat_format.name!r} failed to render: {exc}. "
            "Pass chat_format='phi3' (or 'chatml', 'llama3') to use a built-in format instead."
        ) from exc
