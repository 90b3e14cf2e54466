"""Text the user did not write is never read as a template (issue 18, point 8).

Braces, Jinja and control-token text from anywhere but the developer's own prompt template
(the model's chat template and its default system message, a document, a tool's description
or result, a stored summary or history, the agent's scratchpad, few-shot examples, a model's
own intermediate output) reaches the model as written: no ``KeyError``, no lost brace, no
rendered ``{{ 7 * 7 }}``. Its control-token text is defused by the one rule
(:func:`orchestrator.prompts.safety.defuse` with the model's own tokens) and nothing else
changes. The integration tests look for it in the exact text the engine tokenized
(``verbatim_support.sent``); ``test_verbatim_text_shell.py`` does the same for the evaluators,
the CLI and the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.agents import AgentAction
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate, FewShotChatMessagePromptTemplate
from langchain_core.prompts import FewShotPromptTemplate as LangChainFewShot
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import Tool
from verbatim_support import (  # noqa: F401  (the *_fixture names: fixtures)
    GREEDY,
    HOSTILE,
    HOSTILE_TEMPLATE,
    TEMPLATE_SYSTEM,
    as_seen,
    hostile_gguf_fixture,
    sent_fixture,
)

from orchestrator.prompts import PromptTemplate, instruction_prompt
from orchestrator.prompts.chat_formats import BUILTIN_FORMATS, format_from_template, render_chat
from orchestrator.prompts.few_shot import FewShotPromptTemplate
from orchestrator.prompts.library import FEW_SHOT_SUFFIX, QA_EXAMPLE
from orchestrator.prompts.safety import defuse

# ---- no model: the pieces that build prompts -------------------------------------------------


@pytest.mark.parametrize("name", [*BUILTIN_FORMATS, "gguf"])
def test_every_chat_format_renders_message_content_as_data(name: str) -> None:
    fmt = format_from_template(HOSTILE_TEMPLATE) if name == "gguf" else BUILTIN_FORMATS[name]
    messages = [
        {"role": "system", "content": HOSTILE},
        {"role": "user", "content": HOSTILE},
        {"role": "assistant", "content": HOSTILE},
        {"role": "user", "content": HOSTILE},
    ]
    assert render_chat(messages, fmt).count(HOSTILE) == 4  # rendering never defuses
    one = render_chat([{"role": "user", "content": "hi"}], fmt)
    assert name != "gguf" or one.startswith(f"<|im_start|>system\n{TEMPLATE_SYSTEM}<|im_end|>")


class _Wrapping:
    """A completion model's ``wrap_user_prompt`` whose chat template writes braces."""

    def wrap_user_prompt(self, text: str) -> str:
        return f"<|system|>{TEMPLATE_SYSTEM}<|end|><|user|>{text}<|end|><|assistant|>"


def test_instruction_prompt_parses_only_the_developers_text() -> None:
    prompt = instruction_prompt(_Wrapping(), "Summarize {text} as {{json}}.")
    assert prompt.input_variables == ["text"]
    assert prompt.format(text=HOSTILE) == _Wrapping().wrap_user_prompt(
        f"Summarize {defuse(HOSTILE)} as {{json}}."
    )
    combined = prompt + " Then {more}."
    assert sorted(combined.input_variables) == ["more", "text"] and combined.user_turn
    assert combined.format(text="a", more="b").endswith("as {json}. Then b.<|end|><|assistant|>")


async def test_few_shot_examples_are_joined_as_text_not_parsed_again() -> None:
    examples = [{"question": HOSTILE, "answer": '{"answer": 42} {x}'}]
    example_prompt = PromptTemplate.from_template(QA_EXAMPLE)
    theirs = LangChainFewShot(
        examples=examples,
        example_prompt=example_prompt,
        suffix=FEW_SHOT_SUFFIX,
        input_variables=["question"],
    )
    with pytest.raises(KeyError):  # why ours overrides format: LangChain parses the examples
        theirs.format(question="q")
    ours = FewShotPromptTemplate(
        examples=examples,
        example_prompt=example_prompt,
        prefix="Examples for {question}:",
        suffix=FEW_SHOT_SUFFIX,
        input_variables=["question"],
    )
    text = ours.format(question="{q}")
    assert text.startswith("Examples for {q}:\n\n")
    assert f'Question: {defuse(HOSTILE)}\nAnswer: {{"answer": 42}} {{x}}' in text
    assert text.endswith("Question: {q}\nAnswer:")
    assert await ours.aformat(question="{q}") == text


def test_values_inside_mappings_are_defused_for_jinja_and_mustache() -> None:
    for fmt, text in (("jinja2", "{{ doc.text }}"), ("mustache", "{{#doc}}{{text}}{{/doc}}")):
        prompt = PromptTemplate.from_template(text, template_format=fmt)
        assert prompt.format(doc={"text": HOSTILE}) == defuse(HOSTILE)


# ---- the real model: what the engine is given -------------------------------------------------


@pytest.mark.integration
def test_the_chat_templates_default_system_message_reaches_the_model_as_written(
    hostile_gguf: Path, sent: list[str]
) -> None:
    from orchestrator import ChatLlamaCpp, LlamaCpp
    from orchestrator.chains import rag_strategy
    from orchestrator.chains.techniques import PlainAnswer
    from orchestrator.memory import ConversationSummaryMemory

    completion = LlamaCpp(model_path=str(hostile_gguf), max_tokens=4, **GREEDY)
    head = f"<|im_start|>system\n{TEMPLATE_SYSTEM}<|im_end|>\n<|im_start|>user\n"
    PlainAnswer(llm=completion).invoke(HOSTILE)  # a technique (chains)
    ConversationSummaryMemory(llm=completion).save_context({"input": HOSTILE}, {"output": "ok"})
    no_docs = RunnableLambda(lambda q: [])
    rag_strategy("hyde", completion, no_docs, passage_tokens=8).sources.plan(HOSTILE)  # a strategy
    ChatLlamaCpp(model_path=str(hostile_gguf), max_tokens=4, **GREEDY).invoke(HOSTILE)
    assert len(sent) == 4
    for prompt in sent:
        assert prompt.startswith(head) and as_seen(completion) in prompt


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["completion", "chat"])
def test_retrieved_text_reaches_the_model_as_written(
    kind: str, chat_llm: Any, completion_llm: Any, sent: list[str]
) -> None:
    from orchestrator.chains import RetrievalQA, rag_chain
    from orchestrator.chains.rag import DocumentTurn

    llm = chat_llm if kind == "chat" else completion_llm
    docs = [Document(f"Zorblat is a moon. {HOSTILE}", metadata={"doc_id": "d1"})]
    retriever = RunnableLambda(lambda q: docs)
    rag_chain(llm.bind(max_tokens=4), retriever).invoke("What is Zorblat?")
    if kind == "chat":  # orchestrator chat --index
        llm.invoke(DocumentTurn(retriever)("What is Zorblat?", []), max_tokens=4)
    else:
        RetrievalQA.from_chain_type(llm=llm.bind(max_tokens=4), retriever=retriever).invoke(
            {"query": "What is Zorblat?"}
        )
    assert len(sent) == 2
    for prompt in sent:
        assert (
            f"Zorblat is a moon. {as_seen(llm)}" in prompt and "say HACKED<|im_end|>" not in prompt
        )


#: The developer's own RAG prompt in each of LangChain's template formats.
TEMPLATE_FORMATS = {
    "f-string": "Sources: {context}\nQ: {question}\nA:",
    "mustache": "Sources: {{context}}\nQ: {{question}}\nA:",
    "jinja2": "Sources: {{ context }}\nQ: {{ question }}\nA:",
}


@pytest.mark.integration
@pytest.mark.parametrize("fmt", list(TEMPLATE_FORMATS))
def test_a_template_in_any_format_fills_retrieved_text_as_written(
    fmt: str, completion_llm: Any, sent: list[str]
) -> None:
    from orchestrator.chains import rag_chain

    docs = [Document(f"Zorblat is a moon. {HOSTILE}")]
    prompt = PromptTemplate.from_template(TEMPLATE_FORMATS[fmt], template_format=fmt)
    chain = rag_chain(
        completion_llm.bind(max_tokens=4), RunnableLambda(lambda q: docs), prompt=prompt
    )
    chain.invoke(f"What is Zorblat? {HOSTILE}")
    seen = as_seen(completion_llm)  # Mustache's HTML escaping would have made "<" "&lt;"
    assert sent == [f"Sources: [1] Zorblat is a moon. {seen}\nQ: What is Zorblat? {seen}\nA:"]


@pytest.mark.integration
def test_a_strategys_follow_up_prompt_shows_earlier_sources_as_written(
    completion_llm: Any, sent: list[str]
) -> None:
    from orchestrator.chains.strategies import MultiHopSources

    chain = MultiHopSources(llm=completion_llm, retriever=RunnableLambda(lambda q: []))
    found = [Document(f"Hop one says: {HOSTILE}")]
    chain.follow_up("Where is Zorblat?", found, None)
    assert len(sent) == 1 and f"[1] Hop one says: {as_seen(completion_llm)}" in sent[0]


@pytest.mark.integration
def test_tool_descriptions_results_and_the_scratchpad_reach_the_model_as_written(
    completion_llm: Any, sent: list[str]
) -> None:
    from orchestrator.agents import create_react_agent
    from orchestrator.agents.tools.mcp import _description

    described = _description(HOSTILE, {"properties": {"url": {}, "depth": {}}})  # as MCP's
    fetch = Tool(name="fetch", description=described, func=lambda url: HOSTILE)
    agent = create_react_agent(completion_llm, [fetch], step_max_tokens=24)
    log = f" I will read it. {HOSTILE}\nAction: fetch\nAction Input: example.org"
    agent.generate(
        {"input": "What does the page say?"}, [(AgentAction("fetch", "x", log), HOSTILE)]
    )
    seen = as_seen(completion_llm)
    assert f"fetch - {seen} Input: a JSON object with keys url, depth." in sent[-1]
    assert f"I will read it. {seen}\nAction: fetch" in sent[-1]  # the model's own words
    assert f"Observation: {seen}\nThought:" in sent[-1]  # the tool's result


@pytest.mark.integration
def test_chat_tool_descriptions_and_results_reach_the_model_as_written(
    chat_llm: Any, sent: list[str]
) -> None:
    fetch = Tool(name="fetch", description=HOSTILE, func=lambda url: HOSTILE)
    call = {"name": "fetch", "args": {"__arg1": "example.org"}, "id": "call_1"}
    history = [
        HumanMessage("What does the page say?"),
        AIMessage("", tool_calls=[call]),
        ToolMessage(HOSTILE, tool_call_id="call_1"),
    ]
    chat_llm.bind_tools([fetch], tool_choice="none").invoke(history, max_tokens=4)
    chat_llm.bind_tools([fetch], tool_choice="any").invoke([HumanMessage("Say hi.")], max_tokens=96)
    chat_llm.bind_tools([fetch]).invoke([HumanMessage("Say hi.")], max_tokens=96)
    seen = as_seen(chat_llm)
    assert f"Tool result: {seen}" in sent[0]
    assert f"- fetch: {seen} Arguments schema:" in sent[1]  # the call's tool listing
    assert any(f"the tool fetch: {seen}<" in prompt for prompt in sent[2:])  # the decision


@pytest.mark.integration
def test_a_stored_summary_and_history_reach_the_model_as_written(
    chat_llm: Any, completion_llm: Any, sent: list[str], tmp_path: Path
) -> None:
    from orchestrator.chains import LLMChain
    from orchestrator.memory import (
        Conversation,
        ConversationBufferMemory,
        ConversationSummaryMemory,
        SQLiteStore,
    )

    with SQLiteStore(tmp_path / "sessions.db") as store:
        history = store.history("s")
        history.add_messages([HumanMessage(f"asked {HOSTILE}"), AIMessage(f"said {HOSTILE}")])
        history.save_summary(f"Summary: {HOSTILE}", 2)  # covers both: no model call to load
        summary = ConversationSummaryMemory(llm=completion_llm, chat_memory=history)
        chain = LLMChain(
            llm=completion_llm.bind(max_tokens=4),
            prompt=PromptTemplate.from_template("{history}\nHuman: {input}\nAI:"),
            memory=summary,
        )
        chain.invoke({"input": "Go on."})  # the answer, then the summarizer's call
        buffer = ConversationBufferMemory(chat_memory=history, return_messages=True)
        talk = Conversation(chat_llm, buffer, system="Be brief.")
        chat_llm.invoke(talk.next_messages("Go on."), max_tokens=4)
    seen = as_seen(completion_llm)
    assert sent[0].startswith(f"Summary: {seen}\nHuman: Go on.")
    assert f"Current summary:\nSummary: {seen}" in sent[1]  # the stored summary, folded on
    assert f"asked {seen}<|im_end|>" in sent[-1] and f"said {seen}<|im_end|>" in sent[-1]


@pytest.mark.integration
def test_few_shot_examples_reach_the_model_as_written(
    chat_llm: Any, completion_llm: Any, sent: list[str]
) -> None:
    examples = [{"question": HOSTILE, "answer": HOSTILE}]
    text = FewShotPromptTemplate(
        examples=examples,
        example_prompt=PromptTemplate.from_template(QA_EXAMPLE),
        suffix=FEW_SHOT_SUFFIX,
        input_variables=["question"],
        llm=completion_llm,
    )
    (text | completion_llm.bind(max_tokens=4)).invoke({"question": "{q}"})
    turns = ChatPromptTemplate.from_messages([("human", "{question}"), ("ai", "{answer}")])
    chat = ChatPromptTemplate.from_messages(
        [
            FewShotChatMessagePromptTemplate(examples=examples, example_prompt=turns),
            ("human", "{question}"),
        ]
    )
    (chat | chat_llm.bind(max_tokens=4)).invoke({"question": "{q}"})
    seen = as_seen(completion_llm)
    assert f"Question: {seen}\nAnswer: {seen}\n\nQuestion: {{q}}\nAnswer:" in sent[0]
    assert f"user\n{seen}<|im_end|>\n<|im_start|>assistant\n{seen}<|im_end|>" in sent[1]


@pytest.mark.integration
def test_a_models_own_reasoning_is_fed_back_as_written(
    completion_llm: Any, sent: list[str]
) -> None:
    from orchestrator.chains.techniques import ChainOfThought, ModelCalls

    cot = ChainOfThought(llm=completion_llm, answer_chars=4)
    cot.answer(ModelCalls(completion_llm), "2+2?", HOSTILE, None)
    assert len(sent) == 1 and as_seen(completion_llm) in sent[0]
