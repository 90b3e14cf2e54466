"""The import contract (issue 19): layers, the shell's two halves, private names, file size.

An AST scan of every product module, as installed (``memory/x.py`` is ``orchestrator.memory.x``).
It counts imports at module level and inside functions, resolves relative imports, and reads the
string tables behind ``lazy_getattr`` and every ``importlib.import_module`` call, because those
are imports the interpreter makes later. Each failure names the file:line, the rule and the fix.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"orchestrator": "orchestrator", **{f: f"orchestrator.{f}" for f in (
    "prompts", "memory", "chains", "agents", "evals")}}
LAYERS = ("prompts", "core", "memory", "chains", "agents", "evals", "shell")
SHELL = ("orchestrator.cli", "orchestrator.server")
SERVER_STACK = ("fastapi", "uvicorn", "starlette", "prometheus_client")
MAX_LINES = 400


@dataclass(frozen=True)
class Edge:
    """One import in ``path`` at ``line``: ``target`` (a module), and ``names`` taken from it."""

    path: str
    line: int
    target: str
    names: tuple[str, ...] = ()


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = [FOLDERS[relative.parts[0]], *relative.parts[1:]]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    if module.startswith(tuple(f"{s}." for s in SHELL)) or module in SHELL:
        return "shell"
    head = module.split(".")[1] if module.count(".") else ""
    return head if head in LAYERS else "core"


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in prefixes)


def _string_prefix(node: ast.expr) -> str | None:
    """A literal module path, or the package an f-string like ``f"pkg.{name}"`` names."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return str(node.values[0].value).rpartition(".")[0] or None
    return None


def edges(path: Path, source: str | None = None) -> list[Edge]:
    """Every import ``path`` makes, at any depth, including lazy tables and importlib calls."""
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"))
    module, rel = module_name(path), path.relative_to(ROOT).as_posix()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tables = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign)
              and isinstance(n.value, ast.Dict) for t in n.targets if isinstance(t, ast.Name)}
    found: list[Edge] = []
    bound: dict[str, str] = {}  # local name -> the module (or module.name) it was imported as
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Edge(rel, node.lineno, a.name) for a in node.names]
            bound |= {a.asname or a.name.split(".")[0]: a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            found.append(Edge(rel, node.lineno, base, tuple(a.name for a in node.names)))
            bound |= {a.asname or a.name: f"{base}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "import_module" and (target := _string_prefix(node.args[0])):
                found.append(Edge(rel, node.lineno, target))
            elif name == "lazy_getattr" and len(node.args) > 1:
                table = node.args[1]
                table = tables.get(table.id, table) if isinstance(table, ast.Name) else table
                if isinstance(table, ast.Dict):
                    found += [Edge(rel, v.lineno, v.value, (str(getattr(k, "value", "")),))
                              for k, v in zip(table.keys, table.values, strict=True)
                              if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    found += [Edge(rel, n.lineno, bound[n.value.id], (n.attr,)) for n in ast.walk(tree)
              if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
              and n.value.id in bound]  # `settings._chosen_threads` takes a private name too
    return sorted(found, key=lambda e: e.line)


def product_files() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def violations() -> list[str]:
    return [v for path in product_files() for v in file_violations(path)]


def file_violations(path: Path, source: str | None = None) -> list[str]:
    """What ``path`` (or ``source`` standing in for it) breaks, one line per import."""
    found: list[str] = []
    module = module_name(path)
    own = layer(module)
    is_server = _within(module, ("orchestrator.server",)) or path.stem.startswith("mcp_server")
    for e in edges(path, source):
        where = f"{e.path}:{e.line}: imports {e.target}"
        if e.target.startswith("orchestrator"):
            theirs = layer(e.target)
            if LAYERS.index(theirs) > LAYERS.index(own):
                found.append(f"{where}: layer {own} imports the higher layer {theirs} (order "
                             f"{' <- '.join(LAYERS)}). Fix: move what it needs down into "
                             f"{own} or below, or pass it in from above.")
            if is_server and _within(e.target, ("orchestrator.cli",)):
                found.append(f"{where}: the HTTP/MCP server imports the CLI. Fix: move the "
                             "shared code into the library (core, chains or agents).")
            private = [n for n in e.names if n.startswith("_") and not n.startswith("__")]
            if private and e.target != module:
                found.append(f"{where}: takes the private name(s) {', '.join(private)}. "
                             "Fix: make it public (drop the underscore, document it) or "
                             "move the caller next to it.")
        elif own != "shell" and _within(e.target, SERVER_STACK):
            found.append(f"{where}: the server stack below the shell. Fix: import it only "
                         "in orchestrator/server/ or orchestrator/cli/.")
    lines = len((source if source is not None else path.read_text("utf-8")).splitlines())
    if lines > MAX_LINES:
        found.append(f"{path.relative_to(ROOT).as_posix()}: {lines} lines, over the "
                     f"{MAX_LINES}-line limit. Fix: split it by concept into modules.")
    return found


def test_the_scan_sees_lazy_tables_function_imports_and_importlib_calls() -> None:
    targets = {e.target for e in edges(ROOT / "orchestrator" / "__init__.py")}
    assert "orchestrator.llama.chat" in targets
    assert "orchestrator.evals.runner" in {e.target for e in edges(ROOT / "evals/__init__.py")}
    assert "orchestrator.cli" in {e.target for e in edges(ROOT / "orchestrator/cli/app.py")}
    assert layer("orchestrator.memory.sqlite_store") == "memory"
    assert layer("orchestrator.retrieval.index") == layer("orchestrator") == "core"
    assert layer("orchestrator.server.app") == layer("orchestrator.cli") == "shell"


def test_each_rule_catches_its_violation() -> None:
    server_app = ROOT / "orchestrator" / "server" / "app.py"
    source = ("def f():\n    from orchestrator.cli.retrieval import open_rag_retriever\n"
              "from orchestrator.chains import rag\nx = rag._question\nimport fastapi\n")
    found = "\n".join(file_violations(server_app, source))
    assert "app.py:2: imports orchestrator.cli.retrieval: the HTTP/MCP server imports" in found
    assert "app.py:4: imports orchestrator.chains.rag: takes the private name(s) _question" in found
    memory = ROOT / "memory" / "sqlite_store.py"
    found = "\n".join(file_violations(memory, "import uvicorn\n" + "from orchestrator.agents "
                                      "import tools\n" * 400))
    assert ("sqlite_store.py:2: imports orchestrator.agents: layer memory imports the higher "
            "layer agents") in found
    assert "the server stack below the shell" in found and "401 lines, over" in found


@pytest.mark.parametrize("rule", ["layer", "CLI", "private", "lines", "server stack"])
def test_import_contract(rule: str) -> None:
    marks = {"layer": "higher layer", "CLI": "server imports the CLI", "private": "private name",
             "lines": "-line limit", "server stack": "server stack below"}
    broken = [v for v in violations() if marks[rule] in v]
    assert not broken, "\n" + "\n".join(broken)
