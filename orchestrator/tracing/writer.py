"""The span processor that writes the trace store from one background thread.

OpenTelemetry's SDK calls :meth:`StoreProcessor.on_start` and ``on_end`` in the thread that
started or ended a span; they only put the span on a queue. One writer thread takes whatever
has queued and writes it in one transaction (no fixed delay: a finished span reaches the WAL
within milliseconds, so a killed process leaves its completed spans behind). A root span's
*start* is written too (the run's row, status ``running``, with the process id), so a run cut
short is still listed, and shown ``interrupted`` once its process is gone.

BatchSpanProcessor is not used for the store because it sees only finished spans.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from orchestrator.tracing import names, rows
from orchestrator.tracing.retention import Retention, mark_interrupted, process_started, prune
from orchestrator.tracing.schema import connect

log = logging.getLogger(__name__)

#: Spans written per transaction at most (more wait for the next one).
BATCH = 512
#: Retention is applied at start and after this many runs end.
PRUNE_EVERY = 100


@dataclass
class _Flush:
    done: threading.Event


_STOP = object()


class StoreProcessor(SpanProcessor):
    """Writes runs and spans to the store at ``path``; ``retention`` prunes old runs."""

    def __init__(self, path: Path, retention: Retention | None = None) -> None:
        self.path = path
        self.retention = retention or Retention()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pid = os.getpid()
        self._pid_started = process_started(self._pid)
        self._runs: dict[str, rows.RunState] = {}
        self._hashes = rows.ModelHashes()
        self._ended = 0
        self._closed = False
        connect(path).close()  # a bad store is an error now, in the caller's thread
        self._thread = threading.Thread(target=self._work, name="orchestrator-traces", daemon=True)
        self._thread.start()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if span.parent is None and not self._closed:
            self._queue.put(rows.run_start(span, self._pid, self._pid_started))

    def on_end(self, span: ReadableSpan) -> None:
        if not self._closed:
            self._queue.put(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if self._closed or not self._thread.is_alive():
            return True
        done = threading.Event()
        self._queue.put(_Flush(done))
        return done.wait(timeout_millis / 1000)

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    def _work(self) -> None:
        conn = connect(self.path)
        try:
            self._maintain(conn)
            while True:
                items = [self._queue.get()]
                with contextlib.suppress(queue.Empty):
                    while len(items) < BATCH:
                        items.append(self._queue.get_nowait())
                stop = self._write(conn, items)
                if stop:
                    return
        finally:
            with contextlib.suppress(Exception):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            conn.close()

    def _write(self, conn: Any, items: list[Any]) -> bool:
        """Write one batch; release flush waiters once it is committed. True: stop now."""
        waiters = [i.done for i in items if isinstance(i, _Flush)]
        records = [i for i in items if i is not _STOP and not isinstance(i, _Flush)]
        try:
            if records:
                ended = self._commit(conn, records)
                self._hash_models(conn)
                if ended and self._ended // PRUNE_EVERY != (self._ended - ended) // PRUNE_EVERY:
                    self._maintain(conn)
        except Exception:  # recording must never break the program: say so once per batch
            log.exception("could not write %d trace record(s) to %s", len(records), self.path)
        for done in waiters:
            done.set()
        return any(i is _STOP for i in items)

    def _commit(self, conn: Any, records: list[Any]) -> int:
        """Insert the batch in one transaction; returns how many runs it ended."""
        ended = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            for record in records:
                if isinstance(record, rows.RunStart):
                    self._runs[record.run_id] = rows.RunState(record.root_span)
                    rows.insert_run(conn, record)
                else:
                    ended += self._end_span(conn, record)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._ended += ended
        return ended

    def _end_span(self, conn: Any, span: ReadableSpan) -> int:
        record = rows.span_record(span)
        state = self._runs.get(record.run_id)
        if state is not None:
            state.note(record)
        path = record.attributes.get(names.MODEL_PATH)
        if isinstance(path, str):
            record.attributes.update(self._hashes.stat(path))
        rows.insert_span(conn, record)
        if record.parent_id is not None:
            return 0
        state = self._runs.pop(record.run_id, None)
        rows.end_run(conn, record, state if state is not None else rows.RunState(""))
        return 1

    def _hash_models(self, conn: Any) -> None:
        """Hash model files first seen in this batch (after the commit: a large GGUF takes
        seconds, and the spans are safe on disk meanwhile)."""
        for key in self._hashes.unhashed():
            try:
                self._hashes.record(conn, key)
            except OSError as exc:
                log.warning("could not hash the model file %s: %s", key[0], exc)

    def _maintain(self, conn: Any) -> None:
        started = time.monotonic()
        mark_interrupted(conn)
        prune(conn, self.retention)
        log.debug("trace store maintenance took %.3fs", time.monotonic() - started)
