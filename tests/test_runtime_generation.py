"""The generation loop on the real embedded model: protocol markup never reaches an answer
(10.2), multi-byte characters survive a cut (10.5), greedy answers do not depend on the KV
cache (10.6), and ``cache_read`` counts the tokens really not evaluated (10.11)."""

from __future__ import annotations

import asyncio
from typing import Any

import llama_cpp
import pytest
from langchain_core.messages import AIMessage, HumanMessage

from orchestrator import ChatLlamaCpp, LlamaCpp
from orchestrator.llama.chat import render_messages, turn_markers
from orchestrator.llama.engine import Usage

pytestmark = pytest.mark.integration

QUESTION = "What is 2+2?"
PHI3 = {"chat_format": "phi3", "temperature": 0.7, "seed": 11, "max_tokens": 40}


def raw_answer(llm: ChatLlamaCpp, text: str, **overrides: Any) -> str:
    """What the model generates for one user turn with no stop strings at all."""
    tokens = llm.prompt_tokens(render_messages(llm, [{"role": "user", "content": text}]))
    return "".join(llm.engine.stream(tokens, llm.sampling(overrides), stop=(), usage=Usage()))


def cut_at_first_marker(text: str, markers: tuple[str, ...]) -> str:
    hits = [text.index(m) for m in markers if m in text]
    return text[: min(hits)].strip() if hits else text.strip()


@pytest.fixture(scope="module")
def phi3_expected() -> tuple[ChatLlamaCpp, str]:
    llm = ChatLlamaCpp(**PHI3)
    raw = raw_answer(llm, QUESTION, seed=201)
    # the case: SmolLM2 under the phi3 format writes <|assistant|> as plain text,
    # one piece at a time ('<', '|', 'ass', ...), then invents the next turn
    assert "<|assistant|>" in raw and len(llm.engine.tokenize("<|assistant|>")) > 1
    return llm, cut_at_first_marker(raw, turn_markers(llm))


def test_phi3_stream_ends_before_the_invented_turn(phi3_expected: tuple[ChatLlamaCpp, str]) -> None:
    llm, expected = phi3_expected
    chunks = list(llm.stream(QUESTION, seed=201))
    text = "".join(str(c.content) for c in chunks)
    assert text == expected
    assert chunks[-1].response_metadata["finish_reason"] == "stop"
    assert not any(marker in text for marker in turn_markers(llm))


def test_invoke_stream_batch_and_async_give_the_same_answer(
    phi3_expected: tuple[ChatLlamaCpp, str],
) -> None:
    llm, expected = phi3_expected

    async def async_paths() -> tuple[str, str]:
        whole = await llm.ainvoke(QUESTION, seed=201)
        pieces = [str(c.content) async for c in llm.astream(QUESTION, seed=201)]
        return str(whole.content), "".join(pieces)

    invoked = str(llm.invoke(QUESTION, seed=201).content)
    streamed = "".join(str(c.content) for c in llm.stream(QUESTION, seed=201))
    batched = [str(m.content) for m in llm.batch([QUESTION, QUESTION], seed=201)]
    assert [invoked, streamed, *batched, *asyncio.run(async_paths())] == [expected] * 6


def test_turn_markers_of_the_active_format_the_gguf_and_eog_tokens() -> None:
    phi3 = turn_markers(ChatLlamaCpp(chat_format="phi3"))
    # phi3 builds '<|' + role + '|>' at run time; SmolLM2's own template is ChatML
    assert {"<|user|>", "<|assistant|>", "<|system|>", "<|end|>"} <= set(phi3)
    assert {"<|im_start|>", "<|im_end|>", "<|endoftext|>"} <= set(phi3)
    llama3 = turn_markers(ChatLlamaCpp(chat_format="llama3"))
    assert {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"} <= set(llama3)
    # every caller of the loop that asks a model for its stops gets them (the server does)
    for llm in (ChatLlamaCpp(chat_format="phi3", stop=["X"]), LlamaCpp(chat_format="phi3")):
        stops = llm.stop_list(["Y"])
        assert stops[: len(stops) - len(phi3)] in (["X", "Y"], ["Y"])
        assert stops[len(stops) - len(phi3) :] == list(phi3)


def test_a_control_token_turn_marker_ends_a_completion() -> None:
    llm = LlamaCpp(temperature=0, seed=0, max_tokens=8)
    prompt = "<|im_start|>user\nSay hi.<|im_end|>\n"
    tokens = llm.prompt_tokens(prompt)
    raw = "".join(llm.engine.stream(tokens, llm.sampling({}), stop=(), usage=Usage()))
    # unstopped, the model opens a new turn with the <|im_start|> token (which renders as
    # nothing) and writes the assistant's header and answer
    assert raw.startswith("assistant\n")
    generation = llm.generate([prompt]).generations[0][0]
    info = generation.generation_info or {}
    assert generation.text == ""
    assert info["finish_reason"] == "stop" and info["usage"]["completion_tokens"] == 0


# --- 10.5: UTF-8 at a cut ----------------------------------------------------------------


def test_multibyte_text_cut_at_every_length_has_no_replacement_char(
    chat_llm: ChatLlamaCpp,
) -> None:
    question = "请用中文写一句关于猫的话。"
    full = str(chat_llm.invoke(question, max_tokens=26).content)
    assert len(full) > 5
    for n in range(3, 27):
        invoked = str(chat_llm.invoke(question, max_tokens=n).content)
        streamed = "".join(str(c.content) for c in chat_llm.stream(question, max_tokens=n))
        assert "\ufffd" not in invoked, n
        assert streamed == invoked, n
        assert full.startswith(invoked), n


def test_emoji_grammar_cut_inside_the_character_gives_nothing() -> None:
    llm = LlamaCpp(temperature=0, seed=0)
    grammar = 'root ::= "🐈" "!"'
    assert len(llm.engine.tokenize("🐈")) == 3, "the emoji is three byte-level tokens"
    for n, expected in ((1, ""), (2, ""), (3, "🐈"), (4, "🐈!")):
        assert llm.invoke("Cat:", grammar=grammar, max_tokens=n) == expected
        assert "".join(llm.stream("Cat:", grammar=grammar, max_tokens=n)) == expected


# --- 10.6: repeatable greedy decoding ----------------------------------------------------

EMOJI_QUESTION = "Répondez avec des emojis 🎉🐈‍⬛: où est 東京?"


def test_greedy_answer_is_the_same_cold_warm_and_after_another_call() -> None:
    cold = ChatLlamaCpp(temperature=0, seed=0, max_tokens=40, prefix_reuse=False)
    expected = cold.invoke(EMOJI_QUESTION).content
    llm = ChatLlamaCpp(temperature=0, seed=0, max_tokens=40)
    llm.engine.reset()
    replies = [llm.invoke(EMOJI_QUESTION) for _ in range(3)]
    llm.invoke("Name a fruit.", max_tokens=4)
    replies.append(llm.invoke(EMOJI_QUESTION))
    assert [r.content for r in replies] == [expected] * 4
    cached = [r.usage_metadata["input_token_details"]["cache_read"] for r in replies]
    assert cached[0] == 0 and cached[1] > 0 and cached[2] > 0, "warm calls reused the cache"


def test_next_turn_answer_does_not_depend_on_the_cache(chat_llm: ChatLlamaCpp) -> None:
    history: list[Any] = [HumanMessage("My name is Ada. I live in a small house by the sea.")]
    history.append(chat_llm.invoke(history, max_tokens=12))
    history.append(HumanMessage("What is my name?"))
    warm = chat_llm.invoke(history, max_tokens=12)
    cold = ChatLlamaCpp(temperature=0, seed=0, prefix_reuse=False).invoke(history, max_tokens=12)
    assert isinstance(warm, AIMessage) and warm.content == cold.content
    assert warm.usage_metadata["input_token_details"]["cache_read"] > 0


# --- 10.11: cache_read is what was not evaluated -------------------------------------------


def test_cache_read_equals_the_tokens_llama_cpp_did_not_evaluate(chat_llm: ChatLlamaCpp) -> None:
    ctx = chat_llm.engine.llama._ctx.ctx

    def evaluated() -> int:
        data = llama_cpp.llama_perf_context(ctx)
        return int(data.n_p_eval + data.n_eval)

    long_q = "Tell me about the sea and the sky, please, in detail, as long as you can."
    chat_llm.invoke("Hello.", max_tokens=1)
    for question in (long_q, long_q, "Tell me about the sea."):
        before = evaluated()
        usage = chat_llm.invoke(question, max_tokens=1).usage_metadata  # 1 token: none evaluated
        assert usage is not None
        reused = usage["input_token_details"]["cache_read"]
        assert reused < usage["input_tokens"], "the last prompt token is always evaluated"
        assert evaluated() - before == usage["input_tokens"] - reused
