"""Sentence embeddings through ONNX Runtime, for sentence-transformers models made of a BERT
encoder, mean pooling and (optionally) normalisation: the bundled all-MiniLM-L6-v2 among them.

Why: on CPU the same network runs markedly faster in ONNX Runtime than in PyTorch (attention,
GELU and layer norms fused into single kernels, small length-sorted batches), and once the
export is cached a process embeds without importing torch at all (docs/benchmarks.md,
"Retrieval speed (issue 14)"). The fp32 vectors equal sentence-transformers' to within 1e-6
cosine (tested on real texts), so an index built by either path is queried by the other. The
int8 variant (ONNX Runtime dynamic quantisation, per-channel weights) is faster again but its
vectors differ slightly, so it carries its own embedder name.

The export runs once per model: ``torch.onnx.export`` of the encoder (eager attention, so ONNX
Runtime's BERT optimiser can fuse it), then that optimiser, written under
``<cache>/onnx/<key>/fp32/`` (and ``int8/``), where ``key`` is a SHA-256 of the model's files
and of :data:`RECIPE`. A folder holds ``model-<digest>.onnx`` and ``manifest.json`` naming
it with its SHA-256 and size. Each load re-hashes the file against the manifest: a file that
does not match (truncated, corrupted, replaced) is rebuilt, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.errors import ModelLoadError
from orchestrator.extras import require

log = logging.getLogger(__name__)

#: The export and quantisation recipe: part of the cache key, so a changed recipe never
#: reuses a file made by an older one.
RECIPE = "3:opset17:eager-attention:bert-optimizer-1:int8-dynamic-per-channel-ffn-out-fp32"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
KEY_FILES = ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer.json")
_SESSIONS: dict[tuple[str, int], Any] = {}
_SESSIONS_LOCK = threading.Lock()
_EXPORT_LOCK = threading.RLock()


@dataclass(frozen=True)
class ModelLayout:
    """What the ONNX path needs to know about a sentence-transformers folder."""

    directory: Path
    pooling_config: Path
    max_length: int
    lower_case: bool
    normalize: bool
    hidden_size: int
    num_heads: int

    def files(self) -> list[Path]:
        """The files the exported graph depends on (hashed into the cache key)."""
        named = [self.directory / name for name in (*KEY_FILES, *WEIGHT_FILES)]
        return [path for path in [*named, self.pooling_config] if path.is_file()]


def inspect_model(directory: Path) -> ModelLayout | str:
    """The model's layout, or why the ONNX path cannot reproduce it (then the caller uses
    sentence-transformers): the modules must be Transformer (a BERT encoder at the folder's
    root), Pooling (mean only) and optionally Normalize, with a fast ``tokenizer.json``."""
    try:
        modules = json.loads((directory / "modules.json").read_text())
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError) as exc:
        return f"no readable modules.json/config.json ({exc})"
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return f"modules {kinds} (only Transformer, Pooling[, Normalize] are exported)"
    if modules[0].get("path", "") not in ("", "."):
        return "the transformer sits in a sub-folder"
    if config.get("model_type") != "bert":
        return f"model_type {config.get('model_type')!r} (only BERT encoders are exported)"
    if not (directory / "tokenizer.json").is_file():
        return "no fast tokenizer (tokenizer.json)"
    pooling_config = directory / modules[1].get("path", "1_Pooling") / "config.json"
    pooling = _read_json(pooling_config)
    if not _mean_pooling(pooling):
        return f"pooling {pooling} (only mean pooling is exported)"
    st_config = _read_json(directory / "sentence_bert_config.json")
    max_length = st_config.get("max_seq_length") or config.get("max_position_embeddings", 512)
    return ModelLayout(
        directory=directory,
        pooling_config=pooling_config,
        max_length=int(max_length),
        lower_case=bool(st_config.get("do_lower_case", False)),
        normalize=kinds[-1] == "Normalize",
        hidden_size=int(config["hidden_size"]),
        num_heads=int(config["num_attention_heads"]),
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _mean_pooling(pooling: dict[str, Any]) -> bool:
    """True for mean pooling, in the old (flags) and new (``pooling_mode``) config formats."""
    mode = pooling.get("pooling_mode")
    if mode is not None:
        return mode in ("mean", ["mean"])
    flags = {k: bool(v) for k, v in pooling.items() if k.startswith("pooling_mode_")}
    return flags.get("pooling_mode_mean_tokens", False) and sum(flags.values()) == 1


def file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def cache_key(layout: ModelLayout) -> str:
    """SHA-256 over the recipe and each model file's name and content."""
    key = hashlib.sha256(RECIPE.encode())
    for path in layout.files():
        key.update(f"\0{path.relative_to(layout.directory)}\0{file_digest(path)}".encode())
    return key.hexdigest()


def cache_folder(layout: ModelLayout, root: Path) -> Path:
    """``root/onnx/<key>``: one folder per model content and recipe, wherever the model sits."""
    return root / "onnx" / cache_key(layout)[:24]


def cached_onnx(layout: ModelLayout, root: Path, *, int8: bool = False) -> Path:
    """The verified ONNX file for ``layout`` (its int8 variant with ``int8``) under ``root``,
    built first when missing or when the cached file does not match its manifest."""
    folder = cache_folder(layout, root)
    with _EXPORT_LOCK:
        source = str(layout.directory)
        fp32 = verified_file(folder / "fp32") or record(
            folder / "fp32", lambda target: export(layout, target), source
        )
        if not int8:
            return fp32
        return verified_file(folder / "int8") or record(
            folder / "int8", lambda target: quantize(fp32, target), source
        )


def verified_file(folder: Path) -> Path | None:
    """The file ``manifest.json`` names if its size and SHA-256 match, else None (logged)."""
    manifest = _read_json(folder / "manifest.json")
    name, digest = manifest.get("file"), manifest.get("sha256")
    if not isinstance(name, str) or not isinstance(digest, str):
        return None
    path = folder / Path(name).name
    try:
        ok = path.stat().st_size == manifest.get("size") and file_digest(path) == digest
    except OSError:
        ok = False
    if not ok:
        log.warning("cached ONNX model %s does not match its manifest: rebuilding it", path)
    return path if ok else None


def record(folder: Path, build: Callable[[Path], None], source: str = "") -> Path:
    """Run ``build(path)`` in a scratch folder, move the result to ``model-<digest>.onnx`` and
    write the manifest last, atomically: a crash leaves no manifest naming a partial file, and
    processes building at once each write their own complete file."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as scratch:
        built = Path(scratch) / "model.onnx"
        build(built)
        digest = file_digest(built)
        target = folder / f"model-{digest[:16]}.onnx"
        os.replace(built, target)
    manifest = {"file": target.name, "sha256": digest, "size": target.stat().st_size}
    tmp = folder / f".manifest-{os.getpid()}-{threading.get_ident()}.json"
    tmp.write_text(json.dumps({**manifest, "recipe": RECIPE, "source": source}, indent=1))
    os.replace(tmp, folder / "manifest.json")
    for stale in folder.glob("model-*.onnx"):
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


def export(layout: ModelLayout, target: Path) -> None:
    """``torch.onnx.export`` of the encoder, then ONNX Runtime's BERT optimiser."""
    raw = target.with_name("raw.onnx")
    _torch_export(layout, raw)
    require("onnx", extra="rag", purpose="optimising the exported embedding model")
    from onnxruntime.transformers.optimizer import optimize_model

    optimised = optimize_model(
        str(raw),
        model_type="bert",
        num_heads=layout.num_heads,
        hidden_size=layout.hidden_size,
        opt_level=1,
    )
    optimised.save_model_to_file(str(target))


def _torch_export(layout: ModelLayout, target: Path) -> None:
    torch = require("torch", extra="rag", purpose="exporting the embedding model to ONNX")
    transformers = require("transformers", extra="rag", purpose="exporting the embedding model")
    bert = transformers.AutoModel.from_pretrained(
        str(layout.directory), local_files_only=True, attn_implementation="eager"
    ).eval()

    class Encoder(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    dummy = tuple(torch.ones(2, 16, dtype=torch.long) for _ in names)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes about Python-side shape checks
        torch.onnx.export(
            Encoder(),
            dummy,
            str(target),
            dynamo=False,  # the TorchScript exporter: no onnxscript needed
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
        )


def quantize(source: Path, target: Path) -> None:
    """ONNX Runtime dynamic int8 quantisation, per-channel signed weights, except the
    feed-forward output projections (the MatMuls fed by GELU), which stay fp32.

    Measured on Cranfield (docs/benchmarks.md): quantising everything moved vectors to a mean
    cosine of 0.9941 with fp32 and the default hybrid MAP by -0.4% to -1.3% depending on
    batching; keeping those six projections fp32 halves the error (cosine 0.9971, MAP -0.2% to
    -0.6%) for about a quarter of int8's speed. 7-bit ``reduce_range`` weights lost 1.5%.
    """
    onnx = require("onnx", extra="rag", purpose="quantising the embedding model")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    gelu = {out for n in graph.node if "Gelu" in n.op_type for out in n.output}
    keep = [n.name for n in graph.node if n.op_type == "MatMul" and n.input[0] in gelu]
    if not keep or len(keep) != sum("Gelu" in n.op_type for n in graph.node):
        raise ModelLoadError(
            f"{source}: could not find the feed-forward output projections to keep in fp32 "
            f"(found {len(keep)})",
            fix="use backend='onnx' (fp32) or 'torch'",
        )
    root = logging.getLogger()
    was, root.disabled = root.disabled, True
    try:  # the quantiser logs a "consider pre-processing" warning on the root logger
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=keep,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.disabled = was


def session(path: Path, threads: int) -> Any:
    """One ONNX Runtime session per (file, thread count) in this process (``run`` is
    thread-safe)."""
    ort = require("onnxruntime", extra="rag", purpose="fast embeddings")
    key = (str(path), threads)
    with _SESSIONS_LOCK:
        found = _SESSIONS.get(key)
        if found is not None:
            return found
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            found = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime raises its own exception types
            raise ModelLoadError(
                f"ONNX Runtime could not load {path}: {exc}",
                fix=f"delete {path.parent} (it is rebuilt on next use)",
            ) from exc
        _SESSIONS[key] = found
        return found


class OnnxEncoder:
    """Tokenises with the model's fast tokenizer, runs the encoder in ONNX Runtime, mean-pools
    and normalises as sentence-transformers does. Texts are sorted by token count and run in
    small batches: little padding, and activations that stay in cache (measured faster than
    sentence-transformers' batches of 32)."""

    def __init__(self, layout: ModelLayout, onnx_file: Path) -> None:
        tokenizers = require("tokenizers", extra="rag", purpose="fast embeddings")
        self.layout, self.onnx_file = layout, onnx_file
        tokenizer = tokenizers.Tokenizer.from_file(str(layout.directory / "tokenizer.json"))
        self.pad_id = int((tokenizer.padding or {}).get("pad_id", 0))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=layout.max_length)
        self.tokenizer = tokenizer

    def encode(
        self, texts: Sequence[str], *, threads: int, batch_size: int = 4, spread: bool = True
    ) -> np.ndarray:
        """float32 vectors of shape (len(texts), hidden size), in input order.

        With several threads and several batches (``spread``), each thread runs whole batches
        on a single-threaded session, instead of every batch being split across threads:
        small batches leave little to split, and a text's vector stays the same either way.
        """
        out = np.zeros((len(texts), self.layout.hidden_size), np.float32)
        if not texts:
            return out
        items = [t.lower() for t in texts] if self.layout.lower_case else list(texts)
        encodings = self.tokenizer.encode_batch(items)
        order = sorted(range(len(items)), key=lambda i: len(encodings[i].ids), reverse=True)
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        workers = min(threads, len(batches)) if spread else 1
        runner = session(self.onnx_file, 1 if workers > 1 else threads)

        def run(rows: list[int]) -> np.ndarray:
            return self._run(runner, [encodings[i].ids for i in rows])

        if workers > 1:
            with ThreadPoolExecutor(workers, thread_name_prefix="onnx-embed") as pool:
                vectors = list(pool.map(run, batches))
        else:
            vectors = [run(rows) for rows in batches]
        for rows, block in zip(batches, vectors, strict=True):
            out[rows] = block
        return out

    def _run(self, runner: Any, token_ids: list[list[int]]) -> np.ndarray:
        width = max(len(ids) for ids in token_ids)
        ids = np.full((len(token_ids), width), self.pad_id, np.int64)
        mask = np.zeros_like(ids)
        for row, tokens in enumerate(token_ids):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        wanted = {i.name for i in runner.get_inputs()}
        hidden = runner.run(None, {k: v for k, v in feed.items() if k in wanted})[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        if self.layout.normalize:
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            pooled = pooled / np.maximum(norms, 1e-12)
        return np.asarray(pooled, dtype=np.float32)
