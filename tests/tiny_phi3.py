"""Test GGUF files: a tiny Phi-3 model with random weights and a real SentencePiece-style vocab,
metadata-only files of any architecture, and a copy of a real model with another chat template.

The tiny Phi-3 carries no chat template, so loading it exercises the Phi-3 format inferred from
its architecture, and its ``<|end|>`` token is the end-of-generation token, as in Phi-3-mini.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPECIALS = [
    "<unk>",
    "<s>",
    "</s>",
    "<|endoftext|>",
    "<|user|>",
    "<|assistant|>",
    "<|system|>",
    "<|end|>",
]
WORDS = ["hello", "world", "the", "a", "cat", "dog", "is", "blue", "sky", "what", "name"]


def _vocab() -> tuple[list[str], list[float], list[int]]:
    from gguf import TokenType

    tokens = list(SPECIALS)
    types = [TokenType.UNKNOWN] + [TokenType.CONTROL] * (len(SPECIALS) - 1)
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [TokenType.BYTE] * 256
    pieces = ["\u2581"] + [f"\u2581{w}" for w in WORDS] + list("abcdefghijklmnopqrstuvwxyz")
    tokens += pieces
    types += [TokenType.NORMAL] * len(pieces)
    scores = [0.0] * len(SPECIALS) + [0.0] * 256 + [-float(i) for i in range(len(pieces))]
    return tokens, scores, [int(t) for t in types]


def build_tiny_phi3(
    path: Path,
    *,
    n_embd: int = 64,
    n_layer: int = 2,
    n_ff: int = 128,
    chat_template: str | None = None,
) -> Path:
    """Write the model to ``path`` and return it (with ``chat_template`` if one is given)."""
    from gguf import GGUFWriter

    rng = np.random.default_rng(0)
    n_head = 4
    tokens, scores, types = _vocab()
    n_vocab = len(tokens)
    writer = GGUFWriter(str(path), "phi3")
    writer.add_name("tiny-phi3-random")
    writer.add_context_length(256)
    writer.add_embedding_length(n_embd)
    writer.add_feed_forward_length(n_ff)
    writer.add_block_count(n_layer)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(SPECIALS.index("<s>"))
    writer.add_eos_token_id(SPECIALS.index("<|end|>"))
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    if chat_template is not None:
        writer.add_chat_template(chat_template)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    writer.add_tensor("token_embd.weight", weight(n_vocab, n_embd))
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.attn_qkv.weight", weight(3 * n_embd, n_embd))
        writer.add_tensor(f"blk.{i}.attn_output.weight", weight(n_embd, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(2 * n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(n_embd, n_ff))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", weight(n_vocab, n_embd))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_metadata_only(
    path: Path,
    architecture: str,
    *,
    tokens: tuple[str, ...] = ("<unk>", "<s>", "</s>"),
    control: tuple[str, ...] = (),
    chat_template: str | None = None,
    block_count: int = 4,
    context_length: int = 2048,
) -> Path:
    """A GGUF holding metadata only (no tensors): enough for everything that reads the header
    (model construction, ``orchestrator models``, chat-format inference), not for loading.
    ``control`` tokens are appended to ``tokens`` and typed CONTROL, as converters do."""
    from gguf import GGUFWriter, TokenType

    writer = GGUFWriter(str(path), architecture)
    writer.add_name(f"metadata-only-{architecture}")
    writer.add_context_length(context_length)
    writer.add_block_count(block_count)
    vocab = [*tokens, *control]
    writer.add_tokenizer_model("llama")
    writer.add_token_list(vocab)
    writer.add_token_types(
        [int(TokenType.NORMAL)] * len(tokens) + [int(TokenType.CONTROL)] * len(control)
    )
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def copy_with_chat_template(source: Path, target: Path, chat_template: str) -> Path:
    """Copy a real GGUF (all metadata and tensors) with ``tokenizer.chat_template`` replaced,
    through the logic of gguf's own ``gguf_new_metadata`` script."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    reader = gguf.GGUFReader(source, "r")
    architecture = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(str(target), architecture, endianess=reader.endianess)
    alignment = reader.fields.get(gguf.Keys.General.ALIGNMENT)
    if alignment is not None:
        writer.data_alignment = alignment.contents()
    template = MetadataDetails(gguf.GGUFValueType.STRING, chat_template)
    copy_with_new_metadata(reader, writer, {gguf.Keys.Tokenizer.CHAT_TEMPLATE: template}, [])
    return target
