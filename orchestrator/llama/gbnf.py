"""The one GBNF string-literal escaper (every grammar writer in the project uses it).

llama.cpp's GBNF parser accepts, inside ``"..."``, the escapes ``\\\\ \\" \\n \\r \\t \\xHH
\\uHHHH \\UHHHHHHHH``; anything else (JSON's ``\\b``/``\\f``) is a parse error. So the rule is:
escape backslash and quote, write the three common control characters by name and every other
control character as ``\\xHH``, and keep the rest of Unicode as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.errors import OptionError

if TYPE_CHECKING:
    from orchestrator.llama.engine import Engine

_NAMED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02X}" if code < 0x20 or code == 0x7F else char


def gbnf_literal(text: str) -> str:
    """``text`` as a GBNF string literal that produces it exactly (quotes included)."""
    return '"' + "".join(_escape(c) for c in text) + '"'


def make_grammar(engine: Engine, gbnf: str) -> Any:
    """A llama.cpp grammar, checked to parse: llama.cpp would otherwise fail at sampling time."""
    import llama_cpp
    from llama_cpp.llama_grammar import LlamaGrammar

    grammar = LlamaGrammar.from_string(gbnf, verbose=False)
    sampler = llama_cpp.llama_sampler_init_grammar(
        engine.llama._model.vocab, gbnf.encode("utf-8"), b"root"
    )
    if not sampler:
        raise OptionError(
            "the grammar did not parse in llama.cpp, so decoding would not be constrained",
            fix="check the GBNF you passed; it needs a 'root' rule",
        )
    llama_cpp.llama_sampler_free(sampler)
    return grammar
