"""Review regressions for the PostgreSQL backend (issue 12), found by trying the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import OrchestratorError
from orchestrator.retrieval.postgres.connection import redact_dsn
from orchestrator.retrieval.postgres.server import start_server


def test_redact_dsn_drops_a_password_given_as_a_uri_query_parameter() -> None:
    """libpq accepts ``?password=...`` in a URI; error messages must not print it."""
    shown = redact_dsn("postgresql://127.0.0.1:1/x?password=s3cret&user=bob")
    assert shown == "postgresql://127.0.0.1:1/x?user=bob"


def test_redact_dsn_keeps_a_socket_host_readable() -> None:
    """A DSN without a password is shown as given (``db start``'s socket DSN)."""
    dsn = "postgresql://postgres:@/postgres?host=/tmp/pg"
    assert redact_dsn(dsn) == "postgresql://postgres@/postgres?host=/tmp/pg"


def test_db_start_on_a_file_is_an_error_naming_the_fix(tmp_path: Path) -> None:
    """``db start --dir FILE`` said NotADirectoryError with a traceback."""
    target = tmp_path / "afile"
    target.write_text("x")
    with pytest.raises(OrchestratorError) as caught:
        start_server(target)
    assert "is a file" in str(caught.value) and "--dir" in (caught.value.fix or "")
    assert target.read_text() == "x"


def test_update_and_drop_index_import_from_orchestrator_retrieval() -> None:
    """The README lists ``update_index`` and ``drop_index`` beside ``build_index``."""
    import orchestrator.retrieval as retrieval
    from orchestrator.retrieval.retriever import drop_index, update_index

    assert retrieval.update_index is update_index
    assert retrieval.drop_index is drop_index
