"""Keeping the trace store small and honest: runs of dead processes become ``interrupted``;
the oldest runs go once they are older than ``max_age_days`` or the store is over
``max_bytes``."""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import OptionError


@dataclass(frozen=True)
class Retention:
    """How long runs are kept (``None``: no limit)."""

    max_age_days: float | None = None
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.max_age_days is not None and not self.max_age_days > 0:
            raise OptionError(
                f"max_age_days={self.max_age_days} keeps nothing", fix="pass a positive number"
            )
        if self.max_bytes is not None and self.max_bytes < 1 << 16:
            raise OptionError(
                f"max_bytes={self.max_bytes} is too small for a trace store",
                fix="pass at least 65536 (64 KiB), or None for no limit",
            )


def process_started(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, Linux), to tell it from a later
    process given the same id; ``None`` where ``/proc`` is not there."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])


def process_alive(pid: int | None, started: int | None) -> bool:
    """Whether process ``pid`` (started at ``started``, when known) still runs here."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    return started is None or process_started(pid) in (None, started)


def mark_interrupted(conn: sqlite3.Connection) -> int:
    """Runs still ``running`` whose process is gone become ``interrupted``; returns how many."""
    rows = conn.execute("SELECT run_id, pid, pid_started FROM runs WHERE status = 'running'")
    dead = [
        (run_id,) for run_id, pid, started in rows.fetchall() if not process_alive(pid, started)
    ]
    if dead:
        conn.executemany("UPDATE runs SET status = 'interrupted' WHERE run_id = ?", dead)
    return len(dead)


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes the store's pages hold (free pages left out)."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * conn.execute("PRAGMA page_size").fetchone()[0])


def delete_runs(conn: sqlite3.Connection, run_ids: Sequence[str]) -> None:
    """Remove runs with their spans and texts, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for table in ("texts", "spans", "runs"):
            conn.executemany(f"DELETE FROM {table} WHERE run_id = ?", [(r,) for r in run_ids])
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def prune(conn: sqlite3.Connection, retention: Retention, now: float | None = None) -> int:
    """Delete the runs ``retention`` no longer keeps, oldest first (never one still running);
    returns how many went."""
    gone = 0
    finished = "status != 'running'"
    if retention.max_age_days is not None:
        cutoff = (now or time.time()) - retention.max_age_days * 86400
        old = conn.execute(f"SELECT run_id FROM runs WHERE started < ? AND {finished}", (cutoff,))
        ids = [r[0] for r in old.fetchall()]
        if ids:
            delete_runs(conn, ids)
            gone += len(ids)
    limit = retention.max_bytes
    while limit is not None and (used := used_bytes(conn)) > limit:
        count = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        if not count:
            break
        # drop the share of runs that is over, plus a tenth of the limit's worth of headroom
        share = (used - 0.9 * limit) / used
        oldest = conn.execute(
            f"SELECT run_id FROM runs WHERE {finished} ORDER BY started LIMIT ?",
            (max(1, math.ceil(count * share)),),
        )
        ids = [r[0] for r in oldest.fetchall()]
        if not ids:
            break
        delete_runs(conn, ids)
        gone += len(ids)
    if gone:
        conn.execute("PRAGMA incremental_vacuum")
    return gone
