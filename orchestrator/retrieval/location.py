"""Where an index lives: :class:`IndexSpec`, the one value every layer passes around.

An index is a folder (FAISS + BM25 files) or an index *named* inside a PostgreSQL database
(pgvector). The spec says which and where; :data:`orchestrator.retrieval.stores.INDEX_BACKENDS`
turns it into a store. :meth:`IndexSpec.of` is the one resolver from what a user typed
(``--index`` and ``--dsn``, or a path) to a spec, so its rules are written once.

Secrets: a DSN may be written ``${VAR}`` (or hold ``${VAR}`` parts), read from the environment
when the spec is made (:func:`expand_dsn`, the one rule for spec files, suites and flags);
:meth:`IndexSpec.to_dict` writes it as written, and a password written literally is left out
(:func:`printable_dsn`): libpq then reads it from ``PGPASSWORD`` or ``~/.pgpass``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    field_validator,
    model_validator,
)

from orchestrator.errors import OptionError

#: The backend names, as :data:`~orchestrator.retrieval.stores.INDEX_BACKENDS` keys them.
BackendName = Literal["folder", "postgres"]


#: A ``${VAR}`` reference in a DSN (the braced form only: a literal ``$`` in a password stays).
DSN_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: How to give a database password without writing it into a spec, suite or printed spec.
PASSWORD_HELP = (
    "give the password in PGPASSWORD or ~/.pgpass (libpq reads both), or write the DSN as "
    '"${VAR}" (e.g. dsn: "${PG_DSN}") and set VAR in the environment'
)


def expand_dsn(dsn: str) -> str:
    """``dsn`` with each ``${VAR}`` replaced by the environment's value: the one expansion
    rule for spec files, suites and flags. An unset (or empty) variable is an
    :class:`OptionError` naming it."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = os.environ.get(name)
        if not found:
            raise OptionError(
                f"{name} is not set (the DSN is written as ${{{name}}})",
                fix=f"export {name}=postgresql://USER@HOST:5432/DB (the password in "
                "PGPASSWORD or ~/.pgpass), or write the DSN itself",
            )
        return found

    return DSN_VARIABLE.sub(value, dsn)


def check_dsn(dsn: str) -> str:
    """``dsn`` expanded (:func:`expand_dsn`) and stripped, if it is a ``postgresql://`` URI
    or ``key=value`` pairs; anything else (a path typed there by mistake) is an
    :class:`OptionError`."""
    text = expand_dsn(dsn).strip()
    if not (text.startswith(("postgresql://", "postgres://")) or "=" in text):
        shown = text if "@" not in text and "password" not in text.lower() else "the DSN"
        raise OptionError(
            f"dsn {shown!r} is not a PostgreSQL connection string (a postgresql:// URI or "
            "key=value pairs)",
            fix='e.g. --dsn postgresql://USER@HOST:5432/DB, or dsn: "${PG_DSN}" in a spec or '
            "suite file (orchestrator db start prints one for a local server)",
        )
    return text


def _password(dsn: str) -> str | None:
    """The password written in ``dsn`` (URI or ``key=value``), or ``None``."""
    if "://" in dsn:
        from urllib.parse import parse_qsl, urlsplit

        parts = urlsplit(dsn)
        query = dict(parse_qsl(parts.query))
        return parts.password or query.get("password")
    try:
        from psycopg.conninfo import conninfo_to_dict

        found = conninfo_to_dict(dsn).get("password")
    except Exception:  # not parseable (or no psycopg): nothing to tell apart
        return None
    return None if found is None else str(found)


def printable_dsn(dsn: str) -> str:
    """``dsn`` as it may be printed or written to a file: as written when its password is
    absent or a ``${VAR}``; else without the password (see :data:`PASSWORD_HELP`)."""
    secret = _password(dsn)
    if secret is None or DSN_VARIABLE.fullmatch(secret):
        return dsn
    from orchestrator.retrieval.postgres.connection import redact_dsn

    return redact_dsn(dsn)


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
    """The connection string, ``${VAR}`` parts expanded (:func:`expand_dsn`)."""
    _written_dsn: str | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _expand(cls, data: Any, handler: ModelWrapValidatorHandler[IndexSpec]) -> IndexSpec:
        """Expand the DSN's ``${VAR}`` parts; keep it as written for :meth:`to_dict`."""
        written = data.get("dsn") if isinstance(data, dict) else None
        if not isinstance(written, str) or not DSN_VARIABLE.search(written):
            return handler(data)
        spec = handler({**data, "dsn": expand_dsn(written)})
        spec._written_dsn = written
        return spec

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

    @property
    def written_dsn(self) -> str | None:
        """The DSN as written (``${VAR}`` parts unexpanded)."""
        return self._written_dsn or self.dsn

    @property
    def hides_password(self) -> bool:
        """Whether :meth:`to_dict` leaves out a password written in the DSN."""
        written = self.written_dsn
        return written is not None and printable_dsn(written) != written

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready data, with only the fields its backend uses; the DSN as
        written, never a literal password (:func:`printable_dsn`)."""
        data = self.model_dump(exclude_none=True)
        if self.written_dsn is not None:
            data["dsn"] = printable_dsn(self.written_dsn)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexSpec:
        """A spec from :meth:`to_dict`'s data; an unknown key is an :class:`OptionError`."""
        from orchestrator.errors import reject_unknown_options

        reject_unknown_options(data, cls)
        return cls.model_validate(data)
