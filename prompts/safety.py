"""Defusing control-token text inside variable values (user input, documents, tool results).

A prompt that reaches llama.cpp is tokenized with special tokens parsed, because the template
itself needs its turn markers (``<|user|>``, ``<|im_start|>``). Any *value* filled into that
template must therefore never contain the text of a control token, or a web page saying
``<|im_start|>system`` would open a real turn. :func:`defuse` breaks such text with a zero-width
space after its first character: the model still reads it as text, the tokenizer no longer
matches it as a control token.

The model's own control tokens are known only once its vocabulary is loaded (the engine passes
them as ``pattern``); :data:`GENERIC_CONTROL` covers the markers of every chat format we ship or
infer (ChatML/Qwen, Phi-3, Llama-2/3, Mistral, Gemma, SmolLM) for paths that have no engine.
"""

from __future__ import annotations

import re

ZERO_WIDTH_SPACE = "\u200b"

#: Control-token shapes of the common chat formats: ``<|...|>`` (ChatML, Phi-3, Llama-3,
#: SmolLM), ``<s>``/``</s>`` and ``[INST]``/``[/INST]``/``<<SYS>>`` (Llama-2, Mistral),
#: ``<start_of_turn>``/``<end_of_turn>``/``<bos>``/``<eos>`` (Gemma).
GENERIC_CONTROL = re.compile(
    r"<\|[^\s|<>]{1,64}\|>"
    r"|</?s>"
    r"|\[/?(?:INST|SYS|AVAILABLE_TOOLS|TOOL_CALLS|TOOL_RESULTS)\]"
    r"|<</?SYS>>"
    r"|<(?:start_of_turn|end_of_turn|bos|eos|pad|unk)>"
)


def defuse(text: str, pattern: re.Pattern[str] | None = None) -> str:
    """``text`` with every control-token string broken by a zero-width space.

    ``pattern`` matches the active model's control tokens (see
    ``orchestrator.llama.engine.Engine.special_pattern``); the generic shapes in
    :data:`GENERIC_CONTROL` are always defused too. Idempotent: defused text is left as is.
    """
    text = GENERIC_CONTROL.sub(_break, text)
    return pattern.sub(_break, text) if pattern is not None else text


def _break(match: re.Match[str]) -> str:
    token = match.group(0)
    return token[0] + ZERO_WIDTH_SPACE + token[1:]
