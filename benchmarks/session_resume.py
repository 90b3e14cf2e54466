"""Turn 1 of a resumed stored session: loading its saved KV state vs reading the history again.

A session of about ``--tokens`` prompt tokens is stored in an SQLite store (a scripted history
plus one real turn, whose KV state is saved as ``orchestrator chat --session`` saves it). Then,
in one process, rounds alternate (order flipped each round) between:

- resumed: the engine forgets every cache (as a new process starts), and the next turn loads
  the saved state (sidecar check, state file hash, ``load_prefix``) before generating;
- re-prefill: the engine forgets every cache and the same turn reads its whole prompt.

Both time the whole first turn (time to first token and to the last of ``--max-tokens``), the
resumed one including everything the resume does (its share is shown apart); figures are
medians. The save after a turn and the one-off model
file hash (once per process) are timed apart.

    ORCHESTRATOR_THREADS=2 python -m benchmarks.session_resume --tokens 2000 --rounds 6
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

SYSTEM = "You are a helpful assistant. Answer briefly."
TOPICS = ["the sea", "mountains", "bread", "bridges", "rivers", "forests", "trains", "clocks"]
NEW = "Thanks. Now summarise what we discussed in one sentence."


def history(llm: Any, target: int) -> list[BaseMessage]:
    """A scripted conversation whose next prompt costs about ``target`` tokens."""
    from orchestrator.memory.conversation import prompt_token_count

    messages: list[BaseMessage] = []
    i = 0
    while prompt_token_count(llm, [*messages, HumanMessage(NEW)]) < target:
        topic = TOPICS[i % len(TOPICS)]
        messages.append(HumanMessage(f"Question {i + 1}: what is interesting about {topic}?"))
        messages.append(AIMessage(" ".join(
            f"Point {j + 1} about {topic}: people have studied {topic} for centuries, and each "
            f"generation finds something new to say about how {topic} shape daily life."
            for j in range(4)
        )))
        i += 1
    return messages


def conversation(llm: Any, store: Any, kv: bool) -> Any:
    from orchestrator.memory import Conversation, create_memory
    from orchestrator.memory.kv_sessions import SessionKV

    memory = create_memory("buffer", chat_memory=store.history("bench"), return_messages=True)
    cache = SessionKV.beside(store.path, "bench") if kv else None
    return Conversation(llm, memory, system=SYSTEM, kv_cache=cache)


def timed_turn(llm: Any, store: Any, kv: bool, max_tokens: int) -> dict[str, Any]:
    """One first turn after the engine forgot everything; nothing is stored."""
    llm.engine.reset()
    conv = conversation(llm, store, kv)
    start = time.perf_counter()
    messages = conv.begin_turn(NEW)
    begun = time.perf_counter() - start
    first = None
    final: Any = None
    for chunk in llm.stream(messages, max_tokens=max_tokens):
        first = first if first is not None else time.perf_counter() - start
        final = chunk if final is None else final + chunk
    total = time.perf_counter() - start
    usage = final.usage_metadata or {}
    cached = int((usage.get("input_token_details") or {}).get("cache_read", 0))
    if kv and (conv.resumed is None or cached != conv.resumed.loaded):
        raise RuntimeError(f"the saved state was not used: {conv.resumed}, cache_read {cached}")
    return {"begin_s": begun, "ttft_s": first or total, "turn_s": total,
            "prompt_tokens": usage.get("input_tokens"), "cached_tokens": cached}


def prepare(llm: Any, store: Any, target: int) -> dict[str, Any]:
    """Store the scripted history and save the KV state its last turn left, as ``end_turn``
    does: the previous turn's prompt is evaluated, then saved."""
    from orchestrator.retrieval.storage import sha256_file

    store.history("bench").add_messages(history(llm, target))
    conv = conversation(llm, store, kv=True)
    previous = conv.next_messages(NEW)[:-2]  # system, history up to the last question
    llm.invoke(previous, max_tokens=1)
    saves = []
    for _ in range(3):
        start = time.perf_counter()
        conv.kv_cache.save(llm, previous)
        saves.append(time.perf_counter() - start)
    start = time.perf_counter()
    sha256_file(Path(llm.engine.key.path))
    model_hash = time.perf_counter() - start
    sidecar = json.loads(conv.kv_cache.sidecar_path.read_text())
    return {"saved_tokens": sidecar["tokens"], "state_bytes": sidecar["kv_bytes"],
            "save_s": statistics.median(saves), "model_hash_s": model_hash}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000, help="prompt tokens of the session")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    from orchestrator import ChatLlamaCpp
    from orchestrator.memory import SQLiteStore

    llm = ChatLlamaCpp(temperature=0.0, seed=0, max_tokens=args.max_tokens)
    with tempfile.TemporaryDirectory() as tmp, SQLiteStore(Path(tmp) / "sessions.db") as store:
        setup = prepare(llm, store, args.tokens)
        runs: dict[str, list[dict[str, Any]]] = {"resumed": [], "re-prefill": []}
        for i in range(args.rounds):
            order = [True, False] if i % 2 == 0 else [False, True]
            for kv in order:
                runs["resumed" if kv else "re-prefill"].append(
                    timed_turn(llm, store, kv, args.max_tokens)
                )
    median = {k: {m: statistics.median(r[m] for r in v) for m in ("begin_s", "ttft_s", "turn_s")}
              for k, v in runs.items()}
    resumed, cold = median["resumed"], median["re-prefill"]
    print(f"\n{runs['resumed'][0]['prompt_tokens']} prompt tokens, {setup['saved_tokens']} in the "
          f"saved state ({setup['state_bytes'] / 2**20:.1f} MiB); {args.rounds} rounds, "
          f"max_tokens {args.max_tokens}; n_threads {llm.engine.key.n_threads}, "
          f"load average {os.getloadavg()}")
    print("| first turn | history + resume (ms) | TTFT (ms) | whole turn (ms) | cached tokens |")
    print("|---|---|---|---|---|")
    for name, row in median.items():
        print(f"| {name} | {row['begin_s'] * 1000:.0f} | {row['ttft_s'] * 1000:.0f} "
              f"| {row['turn_s'] * 1000:.0f} | {runs[name][0]['cached_tokens']} |")
    print(f"\nspeed-up: TTFT {cold['ttft_s'] / resumed['ttft_s']:.1f}x, whole turn "
          f"{cold['turn_s'] / resumed['turn_s']:.1f}x; saving the state after a turn "
          f"{setup['save_s'] * 1000:.0f} ms; model file hash (once per process) "
          f"{setup['model_hash_s'] * 1000:.0f} ms")
    if args.json:
        args.json.write_text(json.dumps({"setup": setup, "runs": runs, "median": median}, indent=1))


if __name__ == "__main__":
    main()
