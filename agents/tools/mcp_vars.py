"""``${VAR}`` references in an ``mcpServers`` config: the one expansion rule.

The forms other MCP clients write, so one config file works in all of them:

- ``${NAME}``: the environment variable ``NAME`` (Claude Code, Claude Desktop);
- ``${NAME:-default}``: ``NAME``, or ``default`` when it is unset or empty (Claude Code,
  as in the shell);
- ``${env:NAME}`` and ``${env:NAME:-default}``: the same (Cursor and VS Code spell it so);
- ``${userHome}``: the user's home folder (Cursor, VS Code).

A bare ``$NAME`` or a lone ``$`` stays as written (a ``$`` in a password is not a
reference), and the value a variable holds is never expanded again. Every ``${`` starts a
reference: an unset variable without a default, or a form Orchestrator cannot fill in
(``${workspaceFolder}``, ``${input:...}``, the shell's ``${NAME%suffix}``), is a
:class:`VariableError` rather than text sent to the server as written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

#: Where references are expanded: a stdio server's and an HTTP server's string fields.
EXPANDED_FIELDS = ("command", "args", "env", "cwd", "url", "headers")
FORMS = "${NAME}, ${NAME:-default}, ${env:NAME} or ${userHome}"
_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_NAME = re.compile(r"(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
_ELSEWHERE = {
    "workspaceFolder": "Orchestrator has no workspace: write the folder's absolute path",
    "workspaceFolderBasename": "Orchestrator has no workspace: write the folder's name",
}


class VariableError(ValueError):
    """A reference that cannot be expanded: ``missing`` lists unset variables (without a
    default); otherwise ``reference`` is a form that is not supported and ``fix`` says why."""

    def __init__(self, *, missing: list[str], reference: str = "", fix: str = "") -> None:
        self.missing, self.reference, self.fix = missing, reference, fix
        super().__init__(
            f"unset variable(s) {', '.join(missing)}" if missing else f"cannot expand {reference}"
        )


def expand_variables(value: str, environ: Mapping[str, str] | None = None) -> str:
    """``value`` with every reference replaced (see the module doc for the forms).

    ``environ`` defaults to ``os.environ``. Every unset variable of ``value`` is named in
    one :class:`VariableError`; an unsupported form raises at once.
    """
    env = os.environ if environ is None else environ
    if "${" not in value:
        return value
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        body = match.group(1)
        if body == "userHome":
            return str(Path.home())
        parsed = _NAME.fullmatch(body)
        if parsed is None or "${" in body or body in _ELSEWHERE:
            raise _unsupported(match.group(0), body)
        name, default = parsed.group(1), parsed.group(2)
        found = env.get(name)
        if default is not None:
            return found if found else default
        if found is None:
            missing.append(name)
            return ""
        return found

    for text in _REFERENCE.split(value)[::2]:  # the text between references
        if "${" in text:  # a reference with no closing brace
            raise _unsupported(text[text.index("${") :], "")
    expanded = _REFERENCE.sub(replace, value)
    if missing:
        raise VariableError(missing=list(dict.fromkeys(missing)))
    return expanded


def _unsupported(reference: str, body: str) -> VariableError:
    if body in _ELSEWHERE:
        why = _ELSEWHERE[body]
    elif body.startswith("input:"):
        why = "VS Code asks for ${input:...} values; Orchestrator reads them from variables"
    elif not reference.endswith("}"):
        why = "the reference has no closing brace"
    elif "${" in body:
        why = "references cannot be nested"
    else:
        why = "only these forms are expanded"
    return VariableError(missing=[], reference=reference, fix=f"{why}: use {FORMS}")
