"""Where an index lives: :class:`IndexSpec`, the one value every layer passes around.

An index is a folder (FAISS + BM25 files) or an index *named* inside a PostgreSQL database
(pgvector). The spec says which and where; :data:`orchestrator.retrieval.stores.INDEX_BACKENDS`
turns it into a store. :meth:`IndexSpec.of` is the one resolver from what a user typed
(``--index`` and ``--dsn``, or a path) to a spec, so its rules are written once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.errors import OptionError

#: The backend names, as :data:`~orchestrator.retrieval.stores.INDEX_BACKENDS` keys them.
BackendName = Literal["folder", "postgres"]


def check_dsn(dsn: str) -> str:
    """``dsn`` stripped, if it is a ``postgresql://`` URI or ``key=value`` pairs; anything
    else (a path typed there by mistake) is an :class:`OptionError`."""
    text = dsn.strip()
    if not (text.startswith(("postgresql://", "postgres://")) or "=" in text):
        raise OptionError(
            "--dsn must be a PostgreSQL connection string",
            fix="e.g. --dsn postgresql://USER:PASSWORD@HOST:5432/DB (orchestrator db start "
            "prints one for a local server)",
        )
    return text


def check_name(name: str) -> str:
    """A PostgreSQL index name, stripped: 1-200 characters."""
    name = str(name).strip()
    if not name or len(name) > 200:
        raise OptionError(
            f"index name {name!r} must be 1-200 characters", fix="--index NAME, e.g. docs"
        )
    return name


class IndexSpec(BaseModel):
    """An index location: a folder (``path``), or the index ``name`` in the PostgreSQL
    database at ``dsn``. Closed and frozen, so it can key caches and sit in pipeline specs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: BackendName = "folder"
    path: str | None = None
    name: str | None = None
    dsn: str | None = Field(default=None, repr=False)  # may hold a password

    @model_validator(mode="after")
    def _check(self) -> IndexSpec:
        if self.backend == "folder":
            if self.name is not None or self.dsn is not None:
                raise OptionError(
                    "a folder index takes a path, not a name or DSN",
                    fix="IndexSpec(backend='folder', path=DIR), or backend='postgres' with "
                    "name and dsn",
                )
            if not self.path or not str(self.path).strip():
                raise OptionError("a folder index needs a path", fix="--index DIR")
        else:
            if self.path is not None:
                raise OptionError(
                    "a PostgreSQL index takes a name and DSN, not a path",
                    fix="IndexSpec(backend='postgres', name=NAME, dsn=DSN)",
                )
            if self.dsn is None or self.name is None:
                raise OptionError(
                    "a PostgreSQL index needs both a name and a DSN",
                    fix="--index NAME --dsn postgresql://USER:PASSWORD@HOST/DB",
                )
        return self

    @field_validator("dsn")
    @classmethod
    def _dsn(cls, dsn: str | None) -> str | None:
        return None if dsn is None else check_dsn(dsn)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        return None if name is None else check_name(name)

    @classmethod
    def of(cls, index: str | Path | IndexSpec, dsn: str | None = None) -> IndexSpec:
        """THE resolver for ``--index``/``--dsn``: without a DSN ``index`` is a folder; with
        one, its text as typed is the name of an index in that database. A spec is returned
        as it is (a DSN given with it must agree)."""
        if isinstance(index, IndexSpec):
            if dsn is None or (index.backend == "postgres" and index.dsn == check_dsn(dsn)):
                return index
            raise OptionError(
                f"the index {index.label!r} is already located; a separate DSN cannot move it",
                fix="pass the IndexSpec alone, or a name with the DSN",
            )
        if dsn is None:
            return cls(backend="folder", path=str(index))
        return cls(backend="postgres", name=str(index), dsn=dsn)

    @property
    def label(self) -> str:
        """The folder's path or the index's name (no DSN, so safe to print)."""
        return str(self.path if self.backend == "folder" else self.name)

    @property
    def where(self) -> str:
        """The location for messages: the folder, or ``index NAME in DSN`` (password hidden)."""
        if self.backend == "folder":
            return str(self.path)
        from orchestrator.retrieval.postgres.connection import redact_dsn

        return f"index {self.name!r} in {redact_dsn(str(self.dsn))}"

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready data, with only the fields its backend uses."""
        return self.model_dump(exclude_none=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexSpec:
        """A spec from :meth:`to_dict`'s data; an unknown key is an :class:`OptionError`."""
        from orchestrator.errors import reject_unknown_options

        reject_unknown_options(data, cls)
        return cls.model_validate(data)
