"""The chat REPL's slash commands (``/help``, ``/history``, ``/memory``, ...)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import OptionError, OrchestratorError

if TYPE_CHECKING:
    from orchestrator.cli.chat import ChatState

#: Command -> (argument, what it does). The order is the order of ``/help``.
COMMANDS: dict[str, tuple[str, str]] = {
    "/help": ("", "show the commands"),
    "/history": ("", "the whole stored conversation of this session"),
    "/memory": ("", "what the model will see of the conversation next turn"),
    "/reset": ("", "forget this session's conversation (deletes it from the store)"),
    "/session": ("[NAME]", "switch to (or start) a stored session; alone: list the sessions"),
    "/save": ("FILE", "write the conversation to FILE (.json: JSON, else text)"),
    "/exit": ("", "leave the chat (also /quit, Ctrl-D)"),
}
_ALIASES = {"/quit": "/exit", "/q": "/exit", "/?": "/help"}
_ROLES = {"human": "you", "ai": "ai", "system": "system"}


def run_command(state: ChatState, text: str) -> bool:
    """Run a slash command line; return False when the chat should end."""
    name, _, arg = text.partition(" ")
    name = _ALIASES.get(name.lower(), name.lower())
    arg = arg.strip()
    if name == "/exit":
        return False
    handler = _HANDLERS.get(name)
    if handler is None:
        close = difflib.get_close_matches(name, [*COMMANDS, *_ALIASES], n=1)
        raise OptionError(
            f"unknown command {name}",
            fix=(f"did you mean {close[0]}? " if close else "") + "/help lists the commands",
        )
    handler(state, arg)
    return True


def _say(state: ChatState, text: str = "") -> None:
    print(text, file=state.out, flush=True)


def _help(state: ChatState, arg: str) -> None:
    for name, (args, what) in COMMANDS.items():
        _say(state, f"{(name + ' ' + args).strip():<18} {what}")
    _say(state, "Anything else is a message to the model. Ctrl-C stops an answer.")


def _lines(messages: Sequence[Any]) -> list[str]:
    return [f"{_ROLES.get(m.type, m.type)}: {m.content}" for m in messages]


def _history(state: ChatState, arg: str) -> None:
    messages = state.conversation.memory.messages
    if not messages:
        _say(state, f"(session {state.session!r} is empty)")
    for line in _lines(messages):
        _say(state, line)


def _memory(state: ChatState, arg: str) -> None:
    """What the next turn shows the model, without running a turn: no retrieval (with
    ``--index`` that would search for an empty query and replace the last sources)."""
    from langchain_core.messages import SystemMessage

    seen, dropped = state.conversation.preview()
    if state.options.system:
        seen = [SystemMessage(content=state.options.system), *seen]
    kind = state.options.memory
    _say(state, f"[{kind} memory, session {state.session!r}] the model will see:")
    if not seen:
        _say(state, "(nothing but your next message)")
    for line in _lines(seen):
        _say(state, line)
    if dropped:
        _say(state, f"({dropped} older messages left out to fit the context)")


def _reset(state: ChatState, arg: str) -> None:
    n = len(state.conversation.memory.messages)
    state.conversation.memory.clear()
    if state.conversation.kv_cache is not None:  # its saved KV state is of the old history
        state.conversation.kv_cache.forget()
    _say(state, f"session {state.session!r} cleared ({n} messages forgotten)")


def _session(state: ChatState, arg: str) -> None:
    if not arg:
        where = f"stored in {state.store.path}" if state.durable else "not stored"
        _say(state, f"current session: {state.session!r} ({where})")
        if state.durable:
            for info in state.store.sessions():
                _say(state, f"  {info.name}: {info.messages} messages")
        return
    from orchestrator.memory import validate_session_id

    validate_session_id(arg)
    carried = [] if state.durable else state.conversation.memory.messages
    state.open(arg)
    history = state.conversation.memory.chat_memory
    had = len(history.messages)
    if carried:  # /session NAME stores the chat so far; nothing typed is dropped
        history.add_messages(carried)
        if had:
            _say(state, f"the unsaved chat ({len(carried)} messages) was appended to {arg!r}")
    n = len(history.messages)
    _say(state, f"session {arg!r} ({n} messages) in {state.store.path}")


def _save(state: ChatState, arg: str) -> None:
    if not arg:
        raise OptionError("/save needs a file name", fix="e.g. /save chat.json or /save chat.txt")
    path = Path(arg).expanduser()
    messages = state.conversation.memory.messages
    if path.suffix.lower() == ".json":
        rows = [{"role": _ROLES.get(m.type, m.type), "content": m.content} for m in messages]
        body = json.dumps(
            {"session": state.session, "messages": rows}, indent=2, ensure_ascii=False
        )
    else:
        body = "\n".join(_lines(messages))
    try:
        with path.open("x", encoding="utf-8") as fh:  # never overwrite an existing file
            fh.write(body + "\n")
    except FileExistsError:
        raise OrchestratorError(
            f"{path} already exists; it was not overwritten", fix="choose another file name"
        ) from None
    except OSError as exc:
        raise OrchestratorError(
            f"cannot write {path}: {exc.strerror or exc}", fix="check the directory exists"
        ) from exc
    _say(state, f"saved {len(messages)} messages to {path}")


_HANDLERS: dict[str, Callable[[ChatState, str], None]] = {
    "/help": _help,
    "/history": _history,
    "/memory": _memory,
    "/reset": _reset,
    "/session": _session,
    "/save": _save,
}
