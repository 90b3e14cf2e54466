"""Chat templates render as in llama-cpp-python and transformers; files without a template get
the format of their architecture from llama-cpp-python's registered formatters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from orchestrator.prompts import (
    BUILTIN_FORMATS,
    ChatFormat,
    ChatTemplateError,
    format_from_template,
    infer_chat_format,
    model_chat_format,
    render_chat,
)
from orchestrator.settings import embedded_model_path

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Café? <b>"},
]

# ---- point 2: the Jinja environment of llama-cpp-python / transformers -----------------------

LAST_USER_WITH_BREAK = (
    "{%- set ns = namespace(last_user=-1) %}"
    "{%- for message in messages[::-1] %}"
    "{%- set index = (messages|length - 1) - loop.index0 %}"
    '{%- if message.role == "user" %}{%- set ns.last_user = index %}{%- break %}{%- endif %}'
    "{%- endfor %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'system' %}{% continue %}{% endif %}"
    "[{{ loop.index0 }}{{ '*' if loop.index0 == ns.last_user else '' }}] {{ message.content }}\n"
    "{% endfor %}"
)

TOJSON_AND_GENERATION = (
    "{% for message in messages %}{{ message | tojson }}\n"
    "{% if message.role == 'assistant' %}{% generation %}{{ message.content }}"
    "{% endgeneration %}\n{% endif %}{% endfor %}"
    "{{ {'b': [1, 2], 'a': 'é'} | tojson(indent=2, sort_keys=True) }}"
    "{% if add_generation_prompt %}{{ bos_token }}>{% endif %}"
)


def _render(template: str) -> str:
    return render_chat(CONVERSATION, format_from_template(template), bos_token="<s>")


def test_break_and_continue_work() -> None:
    assert _render(LAST_USER_WITH_BREAK) == "[1] Hi\n[2] Hello!\n[3*] Café? <b>\n"


def test_tojson_is_transformers_tojson_and_generation_tag_is_its_body() -> None:
    text = _render(TOJSON_AND_GENERATION)
    assert '{"role": "user", "content": "Café? <b>"}\n' in text  # no \\u escapes, no &lt;
    assert '{"role": "assistant", "content": "Hello!"}\nHello!{"role": "user"' in text
    assert text.endswith('{\n  "a": "é",\n  "b": [\n    1,\n    2\n  ]\n}<s>>')


def test_strftime_now_is_the_current_date() -> None:
    before = datetime.now().strftime("%Y-%m-%d")
    text = _render("{{ strftime_now('%Y-%m-%d') }}")
    assert text in {before, datetime.now().strftime("%Y-%m-%d")}


def _llama_cpp_render(template: str) -> str:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter = Jinja2ChatFormatter(template, eos_token="</s>", bos_token="<s>")
    return str(formatter(messages=CONVERSATION).prompt)  # type: ignore[arg-type]


def _transformers_render(template: str) -> str:
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, _ = render_jinja_template(
        conversations=[CONVERSATION],
        chat_template=template,
        add_generation_prompt=True,
        bos_token="<s>",
        eos_token="</s>",
    )
    return str(rendered[0])


def _embedded_template() -> str:
    from orchestrator.gguf_info import read_gguf_info

    template = read_gguf_info(embedded_model_path()).chat_template
    assert template
    return template


@pytest.mark.parametrize("name", ["break", "tojson+generation", "smollm2", "trimmed blocks"])
def test_rendering_equals_llama_cpp_python_and_transformers(name: str) -> None:
    template = {
        "break": LAST_USER_WITH_BREAK,
        "tojson+generation": TOJSON_AND_GENERATION,
        "smollm2": _embedded_template(),
        "trimmed blocks": "{% for m in messages %}\n  {% if m.role == 'user' %}\n"
        "{{ m.content }}\n  {% endif %}\n{% endfor %}",
    }[name]
    ours = render_chat(
        CONVERSATION, format_from_template(template), bos_token="<s>", eos_token="</s>"
    )
    assert ours == _llama_cpp_render(template) == _transformers_render(template)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ raise_exception('System role not supported') }}", "System role not supported"),
        ("{% for x in %}", "TemplateSyntaxError"),
        ("{{ messages[0].content + 1 }}", "TypeError"),
        ("{{ messages.append(1) }}", "SecurityError"),  # the sandbox is immutable
        ("{{ messages[9].content.upper() }}", "UndefinedError"),
    ],
)
def test_a_failing_template_is_a_chat_template_error(template: str, message: str) -> None:
    with pytest.raises(ChatTemplateError, match=message) as err:
        _render(template)
    if message != "System role not supported":
        assert "chat_format=" in str(err.value)


def test_a_raising_template_reaches_the_user_as_chat_format_error_with_fix() -> None:
    from orchestrator.errors import ChatFormatError
    from orchestrator.llama.chat import render_messages

    class Model:  # the two things render_messages reads from a model
        chat_format = None

        class info:
            path = embedded_model_path()
            chat_template = "{{ raise_exception('no system role') }}"
            architecture = "llama"
            control_tokens = frozenset()
            bos_token = eos_token = ""

        class engine:
            @staticmethod
            def defuse_specials(text: str) -> str:
                return text

    with pytest.raises(ChatFormatError, match="no system role") as err:
        render_messages(Model(), CONVERSATION)  # type: ignore[arg-type]
    assert "chat_format=" in str(err.value.fix)


# ---- point 3: formats of files without a template --------------------------------------------


@pytest.mark.parametrize(
    ("architecture", "vocabulary", "expected"),
    [
        ("gemma", (), "gemma"),
        ("gemma2", (), "gemma"),
        ("gemma3", (), "gemma"),
        ("qwen", (), "chatml"),
        ("qwen2", (), "chatml"),
        ("qwen3", (), "chatml"),
        ("smollm3", (), "chatml"),
        ("phi3", (), "phi3"),
        ("mistral3", (), "mistral-instruct"),
        ("llama", ("<|begin_of_text|>", "<|start_header_id|>", "<|eot_id|>"), "llama3"),
        ("llama", ("<|im_start|>", "<|im_end|>"), "chatml"),
        ("llama", ("[INST]", "[/INST]"), "mistral-instruct"),
        ("starcoder2", ("<|im_start|>",), "chatml"),
    ],
)
def test_inferred_format(architecture: str, vocabulary: tuple[str, ...], expected: str) -> None:
    fmt = infer_chat_format(architecture, vocabulary)
    assert fmt.name == expected and fmt.source.startswith("inferred from")
    assert repr(architecture) in fmt.source


def test_unknown_architecture_falls_back_and_says_so() -> None:
    fmt = infer_chat_format("rwkv7", ["<s>", "</s>"])
    assert fmt.name == "phi3"
    assert fmt.source.startswith("fallback:") and "'rwkv7'" in fmt.source
    assert "chat_format=" in fmt.source


def test_the_files_own_template_wins() -> None:
    fmt = model_chat_format("{{ '<start_of_turn>' }}{{ '<end_of_turn>' }}", "qwen2", ())
    assert fmt.name == "gemma (from GGUF)" and fmt.source == "the GGUF's tokenizer.chat_template"
    assert fmt.end_of_turn == ("<end_of_turn>",)


def _llama_cpp_formats() -> list[ChatFormat]:
    return [fmt for fmt in BUILTIN_FORMATS.values() if fmt.llama_cpp]


@pytest.mark.parametrize("fmt", _llama_cpp_formats(), ids=lambda f: f.name)
def test_builtin_formats_are_llama_cpp_pythons_registered_formatters(fmt: ChatFormat) -> None:
    from llama_cpp import llama_chat_format

    llama_chat_format.get_chat_completion_handler(str(fmt.llama_cpp))  # registered
    by_name = {
        "chatml": llama_chat_format.format_chatml,
        "llama-3": llama_chat_format.format_llama3,
        "gemma": llama_chat_format.format_gemma,
        "mistral-instruct": llama_chat_format.format_mistral_instruct,
    }
    turns: list[Any] = CONVERSATION[1:]
    theirs = by_name[str(fmt.llama_cpp)](messages=turns)
    assert render_chat(turns, fmt) == theirs.prompt
    stops = [theirs.stop] if isinstance(theirs.stop, str) else list(theirs.stop or [])
    assert all(stop.strip() in fmt.end_of_turn for stop in stops)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "gemma",
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
            "Hello!<end_of_turn>\n<start_of_turn>user\nCafé? <b><end_of_turn>\n"
            "<start_of_turn>model\n",
        ),
        ("mistral-instruct", "[INST] Be brief.\n\nHi [/INST]Hello!</s>[INST] Café? <b> [/INST]"),
        (
            "chatml",
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nCafé? <b><|im_end|>\n"
            "<|im_start|>assistant\n",
        ),
        (
            "phi3",
            "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
            "<|user|>\nCafé? <b><|end|>\n<|assistant|>\n",
        ),
    ],
)
def test_builtin_format_rendering(name: str, expected: str) -> None:
    """Formats without a system turn (Gemma, Mistral) keep the system text: it opens the first
    user turn, as their own Hugging Face templates do, instead of being dropped."""
    assert render_chat(CONVERSATION, BUILTIN_FORMATS[name]) == expected


def test_llama_cpp_format_refuses_to_omit_the_generation_prompt() -> None:
    with pytest.raises(ChatTemplateError, match="add_generation_prompt=False"):
        render_chat(CONVERSATION, BUILTIN_FORMATS["gemma"], add_generation_prompt=False)
