"""Append-only schema migrations: the one rule of both stores Orchestrator owns, the session
store (SQLite, ``orchestrator.memory.sqlite_schema``) and the index database (PostgreSQL,
``orchestrator.retrieval.postgres.migrations``).

A migration is ``(name, sql)``. Names sort in the order the migrations run; a released one is
never edited or reordered, only followed by a new one. Each runs once, in one transaction with
the row that records it (the store runs them: a transaction is the store's own). A store that
records a migration this code does not know was migrated by newer code: it is refused, since
older code writing to a newer schema could break what the newer code relies on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from orchestrator.errors import DataError, OrchestratorError

#: ``(name, SQL)``: one step of a schema, oldest first.
Migration = tuple[str, str]


def check_order(migrations: Sequence[Migration]) -> None:
    """Fail fast (at import, in tests) on a list whose names do not sort in run order."""
    names = [name for name, _ in migrations]
    if not names or names != sorted(set(names)):
        raise ValueError(f"migration names must be unique and sort in run order: {names}")


def pending(
    migrations: Sequence[Migration],
    applied: Iterable[str],
    *,
    store: str,
    fix: str,
    error: type[OrchestratorError] = DataError,
) -> list[Migration]:
    """The migrations ``applied`` lacks, in run order.

    A store that lists a migration not in ``migrations`` is refused with ``error`` naming
    ``store`` and the unknown names, and ``fix`` (how to get newer code).
    """
    check_order(migrations)
    done = set(applied)
    unknown = sorted(done - {name for name, _ in migrations})
    if unknown:
        raise error(
            f"{store}'s Orchestrator schema is newer than this code: it has migration(s) "
            f"{', '.join(unknown)}, this code knows up to {migrations[-1][0]}",
            fix=fix,
        )
    return [(name, sql) for name, sql in migrations if name not in done]
