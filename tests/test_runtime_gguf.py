"""GGUF metadata through gguf.GGUFReader, chat formats of files without a template, GPU offload
counted by one function, and a real model whose template needs ``{% break %}``."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import gguf
import pytest
from tiny_phi3 import build_tiny_phi3, copy_with_chat_template, write_metadata_only

from orchestrator.errors import ModelLoadError
from orchestrator.gguf_info import read_gguf_info
from orchestrator.llama.engine import gpu_layers_offloaded
from orchestrator.settings import embedded_model_path

# ---- point 1: metadata through GGUFReader; bad files stay ModelLoadError ---------------------


@pytest.fixture(scope="module")
def embedded_reader() -> gguf.GGUFReader:
    """The plain reader on the embedded model, parsed once for the module (a parse of its
    49k-token arrays takes seconds)."""
    return gguf.GGUFReader(embedded_model_path())


def test_embedded_model_metadata_matches_gguf_reader(embedded_reader: gguf.GGUFReader) -> None:
    info = read_gguf_info(embedded_model_path())
    fields = embedded_reader.fields
    tokens = fields["tokenizer.ggml.tokens"]
    assert info.architecture == fields["general.architecture"].contents() == "llama"
    assert info.context_length == fields["llama.context_length"].contents() == 8192
    assert info.n_layers == fields["llama.block_count"].contents() == 30
    assert info.chat_template == fields["tokenizer.chat_template"].contents()
    assert info.bos_token == tokens.contents(fields["tokenizer.ggml.bos_token_id"].contents())
    assert (info.bos_token, info.eos_token) == ("<|im_start|>", "<|im_end|>")
    assert {"<|im_start|>", "<|im_end|>", "<|endoftext|>"} <= info.control_tokens
    assert "hello" not in info.control_tokens and len(info.control_tokens) == 17


def test_metadata_only_file_reads_what_was_written(tmp_path: Path) -> None:
    path = write_metadata_only(
        tmp_path / "m.gguf", "qwen3", control=("<|im_start|>",), block_count=7,
        context_length=32768, chat_template="{{ 'x' }}",
    )
    info = read_gguf_info(path)
    assert (info.architecture, info.n_layers, info.context_length) == ("qwen3", 7, 32768)
    assert (info.chat_template, info.bos_token, info.eos_token) == ("{{ 'x' }}", "<s>", "</s>")
    assert info.control_tokens == frozenset({"<|im_start|>"})
    assert info.name == "metadata-only-qwen3" and info.size_bytes == path.stat().st_size


def test_read_is_cached_per_file_version(tmp_path: Path) -> None:
    path = write_metadata_only(tmp_path / "m.gguf", "gemma3")
    assert read_gguf_info(path) is read_gguf_info(path)
    write_metadata_only(tmp_path / "m.gguf", "qwen2", block_count=5)
    assert read_gguf_info(path).architecture == "qwen2"


def _expect_load_error(path: Path, match: str) -> ModelLoadError:
    with pytest.raises(ModelLoadError, match=match) as err:
        read_gguf_info(path)
    assert err.value.fix
    return err.value


def test_missing_and_directory(tmp_path: Path) -> None:
    _expect_load_error(tmp_path / "nope.gguf", "not found")
    _expect_load_error(tmp_path, "directory")


@pytest.mark.parametrize("content", [b"", b"GG", b"PK\x03\x04 this is a zip"])
def test_not_a_gguf_file(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(content)
    error = _expect_load_error(bad, "not a GGUF file")
    assert "convert" in str(error.fix)


@pytest.fixture(scope="module")
def cut_points(embedded_reader: gguf.GGUFReader) -> dict[str, int]:
    reader = embedded_reader
    return {
        "version": 6,
        "key/value section": reader.fields["tokenizer.chat_template"].offset + 20,
        "tensor infos": reader.tensors[0].field.offset + 5,
        "tensor data": reader.data_offset + 1000,
        "one byte short": embedded_model_path().stat().st_size - 1,
    }


@pytest.mark.parametrize(
    "where", ["version", "key/value section", "tensor infos", "tensor data", "one byte short"]
)
def test_truncated_file_is_a_load_error(
    tmp_path: Path, where: str, cut_points: dict[str, int]
) -> None:
    cut = tmp_path / "cut.gguf"
    with embedded_model_path().open("rb") as src:
        cut.write_bytes(src.read(cut_points[where]))
    error = _expect_load_error(cut, "truncated or has a malformed GGUF header")
    assert "re-download" in str(error.fix)


def test_corrupted_header_is_a_load_error(tmp_path: Path) -> None:
    data = bytearray(embedded_model_path().read_bytes()[:4096])
    data[4:8] = (99).to_bytes(4, "little")  # unsupported version
    bad = tmp_path / "v99.gguf"
    bad.write_bytes(bytes(data))
    _expect_load_error(bad, "malformed")
    data[4:8] = (3).to_bytes(4, "little")
    data[24:32] = (2**40).to_bytes(8, "little")  # first key claims a 1 TB name
    bad.write_bytes(bytes(data))
    _expect_load_error(bad, "malformed")


@pytest.fixture
def unix_socket_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "model.gguf"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    yield path
    server.close()


def test_unreadable_file_is_a_load_error(unix_socket_file: Path) -> None:
    error = _expect_load_error(unix_socket_file, "cannot read model file")
    assert "permissions" in str(error.fix)


def test_memory_map_failure_is_a_load_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_metadata_only(tmp_path / "m.gguf", "llama")

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(gguf.GGUFReader, "__init__", refuse)
    _expect_load_error(path, "cannot read model file .*Permission denied")


# ---- point 3: a file without a template gets its architecture's format ----------------------


def test_gemma3_without_template_gets_gemma_tags(tmp_path: Path) -> None:
    from orchestrator import ChatLlamaCpp
    from orchestrator.llama.chat import chat_format_of
    from orchestrator.prompts import render_chat

    path = write_metadata_only(
        tmp_path / "gemma3.gguf", "gemma3", control=("<start_of_turn>", "<end_of_turn>")
    )
    fmt = chat_format_of(ChatLlamaCpp(model_path=str(path)))
    assert fmt.name == "gemma" and "architecture 'gemma3'" in fmt.source
    prompt = render_chat([{"role": "user", "content": "hello"}], fmt)
    assert prompt == "<start_of_turn>user\nhello<end_of_turn>\n<start_of_turn>model\n"
    assert "<|user|>" not in prompt and "<end_of_turn>" in fmt.end_of_turn


@pytest.mark.parametrize(
    ("architecture", "control", "expected", "said"),
    [
        ("gemma3", (), "gemma", "inferred from architecture 'gemma3'"),
        ("qwen2", (), "chatml", "inferred from architecture 'qwen2'"),
        ("llama", ("<|start_header_id|>",), "llama3", "<|start_header_id|> token"),
        ("llama", ("<|im_start|>",), "chatml", "<|im_start|> token"),
        ("rwkv7", (), "phi3", "fallback: the file has no chat template"),
    ],
)
def test_describe_model_says_where_the_format_came_from(
    tmp_path: Path, architecture: str, control: tuple[str, ...], expected: str, said: str
) -> None:
    from orchestrator.llama.info import describe_model

    path = write_metadata_only(tmp_path / "m.gguf", architecture, control=control)
    described = describe_model(str(path))
    assert described["chat_format"] == expected and said in described["chat_format_source"]
    assert described["chat_template_in_file"] is False


def test_describe_embedded_model_says_the_template_is_the_files() -> None:
    from orchestrator.llama.info import describe_model

    described = describe_model()
    assert described["chat_format"] == "chatml (from GGUF)"
    assert described["chat_format_source"] == "the GGUF's tokenizer.chat_template"


@pytest.mark.integration
def test_models_cli_states_an_inferred_and_a_fallback_format(tmp_path: Path) -> None:
    def models(path: Path, *extra: str) -> str:
        cmd = [sys.executable, "-m", "orchestrator.cli.app", "models", "--model", str(path)]
        proc = subprocess.run([*cmd, *extra], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    gemma = write_metadata_only(tmp_path / "gemma.gguf", "gemma2")
    payload = json.loads(models(gemma, "--json"))
    assert payload["chat_format"] == "gemma"
    assert payload["chat_format_source"].startswith("inferred from architecture 'gemma2'")
    unknown = write_metadata_only(tmp_path / "unknown.gguf", "rwkv7")
    table = " ".join(models(unknown).split())
    assert "chat format: fallback: the file has no chat template" in table
    assert "'rwkv7'" in table


# ---- point 4: one GPU-offload function, used by the engine and by describe_model ------------


@pytest.mark.parametrize(
    ("requested", "gpu", "expected"),
    [(0, True, 0), (-1, True, 31), (10, True, 10), (99, True, 31), (-1, False, 0), (5, False, 0)],
)
def test_gpu_layers_offloaded(requested: int, gpu: bool, expected: int) -> None:
    assert gpu_layers_offloaded(requested, 30, gpu) == expected


@pytest.mark.integration
def test_engine_and_describe_model_count_offload_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator import ChatLlamaCpp
    from orchestrator.llama import base, engine, info, registry

    path = build_tiny_phi3(tmp_path / "tiny.gguf")  # 2 blocks
    for module in (base, engine, info, registry):  # as if this build had a GPU backend
        monkeypatch.setattr(module, "gpu_backend_available", lambda: True)
    llm = ChatLlamaCpp(model_path=str(path), n_gpu_layers=-1)
    described = info.describe_model(str(path), n_gpu_layers=-1)
    try:
        assert llm.engine.gpu_layers_offloaded == described["gpu_layers_offloaded"] == 3
    finally:
        engine.release_engines()


# ---- point 5: a real model whose template finds the last user turn with {% break %} ---------

QWEN_STYLE = (
    "{%- set ns = namespace(last_user=-1) %}"
    "{%- for message in messages[::-1] %}"
    "{%- set index = (messages|length - 1) - loop.index0 %}"
    '{%- if message.role == "user" %}{%- set ns.last_user = index %}{%- break %}{%- endif %}'
    "{%- endfor %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' and loop.index0 < ns.last_user %}"
    "{{- '<|im_start|>assistant\\n' + message.content.split('</think>')[-1].lstrip('\\n')"
    " + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


@pytest.fixture(scope="module")
def qwen_style_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("qwen") / "smollm2-qwen-template.gguf"
    return copy_with_chat_template(embedded_model_path(), target, QWEN_STYLE)


@pytest.mark.integration
def test_reversed_loop_with_break_template_answers(qwen_style_copy: Path) -> None:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    from orchestrator import ChatLlamaCpp
    from orchestrator.llama.chat import render_messages

    llm = ChatLlamaCpp(model_path=str(qwen_style_copy), temperature=0, seed=0, max_tokens=12)
    assert llm.info.chat_template == QWEN_STYLE and llm.info.n_layers == 30
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>greet</think>\nHello!"},
        {"role": "user", "content": "What is 2+2?"},
    ]
    assert render_messages(llm, messages) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n"  # thinking dropped: before the last user
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    )
    reply = llm.invoke(
        [SystemMessage("Be brief."), HumanMessage("Hi"), AIMessage("Hello!"),
         HumanMessage("What is 2+2?")]
    )
    assert isinstance(reply.content, str) and reply.content.strip()
    assert "<|im_end|>" not in reply.content
    assert 0 < reply.usage_metadata["output_tokens"] <= 12
