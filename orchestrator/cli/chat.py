"""``orchestrator chat``: a conversation in the terminal, with memory and durable sessions.

On a terminal: prompt_toolkit input (history, Alt/Esc+Enter for a new line), answers stream
as they are generated, Ctrl-C stops the current answer (not the program), Ctrl-D exits.
With stdin not a terminal: one message per input line, one answer per output line, so the
chat can be scripted. Slash commands work in both (``/help``).

The turn itself is :class:`memory.Conversation`; which messages a turn sends is a
:data:`memory.MessageBuilder`, so a variant (chat over documents) passes its own builder
factory to :func:`run_chat`.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TextIO

import typer
from rich.markup import escape

from orchestrator.cli.chat_commands import COMMANDS, run_command
from orchestrator.cli.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    ChatFormatOpt,
    DsnOpt,
    MaxTokensOpt,
    MinSimilarityOpt,
    ModelOpt,
    ModeOpt,
    RerankOpt,
    SeedOpt,
    TemperatureOpt,
    err_console,
    guarded,
    report_error,
    warnings_on_stderr,
)
from orchestrator.errors import OptionError, OrchestratorError
from orchestrator.models import capabilities as model_capabilities
from orchestrator.models import model_label

PROMPT = "you> "

#: Makes a turn's message builder from the system prompt (see :func:`run_chat`).
BuilderFactory = Callable[[str | None], Any]


@dataclass
class ChatOptions:
    """Everything that shapes a chat besides the model."""

    memory: str = "buffer"
    k: int | None = None
    memory_tokens: int | None = None
    session: str | None = None
    system: str | None = None
    store: Path | None = None


@dataclass
class ChatState:
    """The live chat: model, options, the open session and its conversation."""

    llm: Any
    options: ChatOptions
    build_factory: BuilderFactory
    store: Any = None
    session: str = "default"
    conversation: Any = None
    durable: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    on_answer: Callable[[bool], None] | None = None
    """Called after each answer with ``one_line`` (chat over documents lists its sources)."""

    def open(self, session: str | None) -> None:
        """Open ``session`` (durable, in the SQLite store) or the in-process default."""
        from orchestrator.memory import Conversation, InProcessStore, SQLiteStore, create_memory
        from orchestrator.memory.kv_sessions import SessionKV

        if session is not None or self.options.store is not None:
            if not self.durable:
                self.store = SQLiteStore(self.options.store)
                self.durable = True
        elif self.store is None:
            self.store = InProcessStore()
        name = session or self.session
        history = self.store.history(name)
        memory = create_memory(
            self.options.memory,
            llm=self.llm,
            k=self.options.k,
            max_token_limit=self._token_limit(),
            chat_memory=history,
            return_messages=True,
        )
        self.session = name
        self.conversation = Conversation(
            self.llm,
            memory,
            build=self.build_factory(self.options.system),
            kv_cache=SessionKV.beside(self.store.path, name) if self.durable else None,
        )

    def _token_limit(self) -> int | None:
        if self.options.memory not in ("tokens", "summary-buffer"):
            return None
        if self.options.memory_tokens is not None:
            return self.options.memory_tokens
        n_ctx = model_capabilities(self.llm).context_window
        if n_ctx is None:
            raise OptionError(
                f"the {self.options.memory} memory needs a budget: the served model's context "
                "size is not known here",
                fix="add --memory-tokens N (counts are approximate for a served model)",
            )
        return max(64, (n_ctx - int(self.llm.max_tokens)) // 2)


class AnswerStopper:
    """While an answer streams, the first Ctrl-C asks it to stop; a second one interrupts."""

    def __init__(self) -> None:
        self.stopped = False
        self._previous: Any = None

    def __enter__(self) -> AnswerStopper:
        if threading.current_thread() is threading.main_thread():  # signals go to main only
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stopped:
            raise KeyboardInterrupt
        self.stopped = True


def answer(state: ChatState, text: str, *, one_line: bool) -> None:
    """Stream the answer to ``text``; Ctrl-C stops it (the exchange is then not stored)."""
    from orchestrator.memory.kv_sessions import SessionCacheWarning

    out = state.out
    conversation = state.conversation
    cut = False
    with AnswerStopper() as stopper, warnings_on_stderr(SessionCacheWarning):
        pieces = conversation.stream(text)
        try:
            first = True
            for piece in pieces:
                if one_line:
                    piece = piece.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
                if first:
                    piece = piece.lstrip()
                    first = not piece
                out.write(piece)
                out.flush()
                if stopper.stopped:
                    cut = True
                    break
        finally:
            pieces.close()
    if cut:
        out.write(" [stopped]")
    out.write("\n")
    out.flush()
    if conversation.resumed is not None:
        err_console.print(f"[dim]{escape(conversation.resumed.describe())}[/]")
    if state.on_answer is not None:
        state.on_answer(one_line)
    if conversation.newly_dropped and not one_line:
        err_console.print(
            f"[dim]({conversation.last_dropped} older messages were left out to fit the "
            "context window)[/]"
        )


def handle_line(state: ChatState, line: str, *, one_line: bool) -> bool:
    """Run one input line (message or slash command); return False to end the chat."""
    text = line.strip()
    if not text:
        return True
    try:
        if text.startswith("/"):
            return run_command(state, text)
        answer(state, text, one_line=one_line)
    except OrchestratorError as exc:
        report_error(exc)
    except KeyboardInterrupt:  # a second Ctrl-C (e.g. while a summary is being written)
        state.out.write("\n")
        err_console.print("[dim]interrupted; completed exchanges are kept[/]")
    return True


def run_pipe(state: ChatState, lines: TextIO) -> None:
    """Scripted mode: one message per line in, one answer per line out."""
    for line in lines:
        if not handle_line(state, line, one_line=True):
            return


def run_tty(state: ChatState) -> None:
    """Interactive mode with prompt_toolkit (history, multi-line input)."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.key_binding import KeyBindings

    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    session: PromptSession[str] = PromptSession(
        history=_input_history(), key_bindings=bindings, prompt_continuation="...  "
    )
    where = f"session {state.session!r}" + (
        f" in {state.store.path}" if state.durable else " (not stored; /session NAME stores it)"
    )
    err_console.print(
        f"[bold]orchestrator chat[/] - {_model_name(state.llm)}, memory {state.options.memory}, "
        f"{where}\n[dim]/help for commands; Ctrl-C stops an answer; Alt+Enter for a new line; "
        "Ctrl-D exits[/]"
    )
    while True:
        try:
            line = session.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            return
        if not handle_line(state, line, one_line=False):
            return


def _model_name(llm: Any) -> str:
    info = getattr(llm, "info", None)
    return str(info.name) if info is not None else model_label(llm)


def _input_history() -> Any:
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    from orchestrator.settings import data_home

    try:
        home = data_home()
        home.mkdir(parents=True, exist_ok=True)
        return FileHistory(str(home / "chat_input_history"))
    except OSError:
        return InMemoryHistory()


def run_chat(
    llm: Any,
    options: ChatOptions,
    build_factory: BuilderFactory | None = None,
    on_answer: Callable[[bool], None] | None = None,
) -> None:
    """Open the session and run the chat on this terminal or on piped stdin."""
    from orchestrator.memory import history_messages

    state = ChatState(
        llm=llm,
        options=options,
        build_factory=build_factory or history_messages,
        on_answer=on_answer,
    )
    state.open(options.session)
    try:
        if sys.stdin.isatty():
            run_tty(state)
        else:
            run_pipe(state, sys.stdin)
    finally:
        state.store.close()


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)


@guarded
def chat(
    model: ModelOpt = None,
    memory: Annotated[
        str,
        typer.Option("--memory", help="buffer, window, summary, tokens or summary-buffer."),
    ] = "buffer",
    k: Annotated[int | None, typer.Option("--k", help="Exchanges the window memory keeps.")] = None,
    max_tokens: MaxTokensOpt = None,
    session: Annotated[
        str | None, typer.Option("--session", help="Store the chat as this session (resumes it).")
    ] = None,
    system: Annotated[str | None, typer.Option("--system", help="System prompt.")] = None,
    store: Annotated[
        Path | None, typer.Option("--store", help="Session file (default: data dir/sessions.db).")
    ] = None,
    memory_tokens: Annotated[
        int | None,
        typer.Option(
            "--memory-tokens",
            help="History budget (tokens) of the tokens and summary-buffer memories; default: "
            "half the context left after the answer.",
        ),
    ] = None,
    n_ctx: Annotated[int | None, typer.Option("--n-ctx", min=16, help="Context window.")] = None,
    temperature: TemperatureOpt = 0.7,
    seed: SeedOpt = -1,
    chat_format: ChatFormatOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    index_dir: Annotated[
        Path | None,
        typer.Option("--index", help="Chat over the documents of this index (see `index`)."),
    ] = None,
    mode: ModeOpt = None,
    k_sources: Annotated[
        int | None,
        typer.Option("--sources", min=1, help="With --index: rag's -k (default: 4)."),
    ] = None,
    min_similarity: MinSimilarityOpt = None,
    rerank: RerankOpt = None,
    dsn: DsnOpt = None,
) -> None:
    """Chat with the model in the terminal (answers stream; Ctrl-C stops one).

    The memory decides what history the model sees; --session stores the chat and resumes it;
    --index chats over the documents of an index. Commands: /help, /history, /memory, /reset,
    /session NAME, /save FILE, /exit. With piped stdin: one message per line in, one answer per
    line out.
    """
    from orchestrator.memory import create_memory, validate_session_id
    from orchestrator.models import chat_model

    if session is not None:
        validate_session_id(session)
    llm = chat_model(
        model=model,
        max_tokens=max_tokens,
        base_url=base_url,
        api_key=api_key,
        temperature=temperature,
        seed=seed,
        n_ctx=n_ctx,
        chat_format=chat_format,
    )
    # check the memory options before anything is opened or loaded
    create_memory(memory, llm=llm, k=k, max_token_limit=memory_tokens)
    options = ChatOptions(memory, k, memory_tokens, session, system, store)
    rag_options = (mode, k_sources, min_similarity, rerank, dsn)
    if index_dir is None and any(option is not None for option in rag_options):
        raise OptionError(
            "--mode, --sources, --min-similarity, --rerank and --dsn only apply to chat over "
            "documents",
            fix="add --index DIR, or leave those options out",
        )
    if index_dir is None:
        run_chat(llm, options)
        return
    from orchestrator.agents.pipelines import spec_from_options
    from orchestrator.agents.pipelines.rag import document_turn

    spec = spec_from_options(
        "rag",
        index=index_dir,
        dsn=dsn,
        mode=mode,
        k=k_sources,
        min_similarity=min_similarity,
        rerank=rerank,
        model=model,  # the GGUF that --rerank llm scores with
        base_url=base_url,
    )
    turn = document_turn(spec, system)
    run_chat(llm, options, build_factory=lambda _system: turn, on_answer=turn_reporter(turn))


def turn_reporter(turn: Any) -> Callable[[bool], None]:
    """After each answer, name the sources it was given (on a terminal only)."""

    def report(one_line: bool) -> None:
        if one_line or not turn.last_sources:
            return
        names = ", ".join(f"[{s['n']}] {s['doc_id']}" for s in turn.last_sources)
        err_console.print(f"[dim]sources: {names}[/]")

    return report


__all__ = ["COMMANDS", "AnswerStopper", "ChatOptions", "ChatState", "chat", "run_chat"]
