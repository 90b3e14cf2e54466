"""Text the user did not write reaches the model as written through the evaluators, the CLI
and the server too (issue 18, point 8; the library's paths: ``test_verbatim_text.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from verbatim_support import (  # noqa: F401  (the *_fixture names: fixtures)
    GREEDY,
    HOSTILE,
    TEMPLATE_SYSTEM,
    as_seen,
    hostile_gguf_fixture,
    sent_fixture,
)

from orchestrator.prompts import PromptTemplate
from orchestrator.prompts.library import RAG


@pytest.mark.integration
def test_judge_and_reranker_prompts_show_the_judged_text_as_written(
    chat_llm: Any, sent: list[str]
) -> None:
    from orchestrator.evals.citations import JudgeEntailment
    from orchestrator.evals.judge import JudgeBehaviour
    from orchestrator.evals.quality import RatingMetric
    from orchestrator.retrieval.rerank import LLMReranker

    judge = JudgeBehaviour(chat_llm, max_tokens=48)
    JudgeEntailment(judge)(f"Passage {HOSTILE}", f"Claim {HOSTILE}")
    RatingMetric("fluency", judge).score(f"Reply {HOSTILE}")
    LLMReranker().score(f"Query {HOSTILE}", [f"Passage {HOSTILE}"])
    seen = as_seen(chat_llm)
    assert f"Passage:\nPassage {seen}\n\nClaim: Claim {seen}\n" in sent[0]
    assert f"Response:\nReply {seen}\n" in sent[1]
    assert f"Query: Query {seen}\n\nPassage: Passage {seen}\n" in sent[2]


# ---- the shell: CLI and server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orchestrator.retrieval import build_index

    path = tmp_path_factory.mktemp("verbatim") / "index"
    docs = [
        {"doc_id": "moon", "text": f"Zorblat is a frozen moon of Neptune. {HOSTILE}"},
        {"doc_id": "bread", "text": "Sourdough bread is leavened with wild yeast."},
    ]
    build_index(docs, path, progress=False)
    return path


@pytest.mark.integration
def test_cli_rag_sends_the_document_and_the_templates_text_as_written(
    hostile_gguf: Path, hostile_index: Path, sent: list[str]
) -> None:
    from typer.testing import CliRunner

    from orchestrator import ChatLlamaCpp
    from orchestrator.cli.app import app

    args = ["rag", "What is Zorblat?", "--index", str(hostile_index), "--mode", "bm25"]
    result = CliRunner().invoke(app, [*args, "--model", str(hostile_gguf), "--max-tokens", "4"])
    assert result.exit_code == 0, result.output
    seen = as_seen(ChatLlamaCpp(model_path=str(hostile_gguf)))
    assert sent[-1].startswith(f"<|im_start|>system\n{TEMPLATE_SYSTEM}<|im_end|>")
    assert f"Zorblat is a frozen moon of Neptune. {seen}" in sent[-1]


@pytest.fixture(scope="module")
def hostile_server(
    tmp_path_factory: pytest.TempPathFactory, hostile_gguf: Path, hostile_index: Path
) -> Iterator[Any]:
    from server_harness import running_server

    tmp = tmp_path_factory.mktemp("serve")
    with running_server(tmp, "--model", str(hostile_gguf), "--index", str(hostile_index)) as s:
        yield s


@pytest.mark.integration
@pytest.mark.slow
def test_the_server_sends_the_same_prompt_the_library_renders(
    hostile_server: Any, hostile_gguf: Path
) -> None:
    from orchestrator import ChatLlamaCpp
    from orchestrator.chains.rag import format_sources
    from orchestrator.llama.chat import render_messages

    local = ChatLlamaCpp(model_path=str(hostile_gguf))

    def tokens(content: str) -> int:
        prompt = render_messages(local, [{"role": "user", "content": content}])
        assert prompt.startswith(f"<|im_start|>system\n{TEMPLATE_SYSTEM}")
        assert as_seen(local) in prompt
        return len(local.prompt_tokens(prompt))

    client = hostile_server.client()
    plain = client.chat.completions.create(
        model=hostile_gguf.stem,
        messages=[{"role": "user", "content": HOSTILE}],
        max_tokens=4,
        **GREEDY,
    )
    assert plain.usage.prompt_tokens == tokens(HOSTILE)
    question = f"What is Zorblat? {HOSTILE}"
    rag = client.chat.completions.create(
        model="rag", messages=[{"role": "user", "content": question}], max_tokens=4, **GREEDY
    )
    sources = [Document(s["text"]) for s in rag.model_extra["sources"]]
    assert any(HOSTILE in d.page_content for d in sources)
    content = PromptTemplate.from_template(RAG).format(
        context=format_sources(sources), question=question
    )
    assert rag.usage.prompt_tokens == tokens(content)
