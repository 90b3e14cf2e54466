"""One namespace: the project installs ``orchestrator`` and nothing else at the top level.

openai-agents (in the test extra) installs a top-level ``agents`` package; ours is
``orchestrator.agents``, so both import side by side. The checks run in subprocesses started
from a temporary folder outside the checkout, so the checkout is not on ``sys.path`` and
only what is installed is seen. No virtual environment is created: the wheel is built from a
copy of the sources with the test environment's setuptools, and imported from a target folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("agents", "chains", "memory", "prompts", "evals")
_IMPORTS = "import " + ", ".join(f"orchestrator.{name}" for name in SUBPACKAGES)


def _python(code: str, cwd: Path, **env: str) -> dict[str, Any]:
    """Run ``code`` with the test interpreter in ``cwd``; it prints one JSON line last."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


_REPORT = f"""
import json, sys
{_IMPORTS}
import agents, orchestrator
from orchestrator.evals.report import _environment, TEMPLATE
from orchestrator.prompts import PROMPTS
print(json.dumps({{
    "ours": [sys.modules["orchestrator." + n].__name__ for n in {SUBPACKAGES!r}],
    "orchestrator_file": orchestrator.__file__,
    "agents_file": agents.__file__,
    "agents_has_Agent": hasattr(agents, "Agent"),
    "template": TEMPLATE in _environment().list_templates(),
    "prompts": len(PROMPTS),
}}))
"""


def test_installed_namespace_from_outside_the_checkout(tmp_path: Path) -> None:
    pytest.importorskip("agents", reason="openai-agents comes with the test extra")
    out = _python(_REPORT, tmp_path)
    assert out["ours"] == [f"orchestrator.{n}" for n in SUBPACKAGES]
    # ``import agents`` is openai-agents', not ours
    assert "site-packages" in out["agents_file"]
    assert not Path(out["agents_file"]).is_relative_to(ROOT)
    assert out["agents_has_Agent"] is True
    assert out["template"] is True and out["prompts"] > 0


def test_installed_distribution_has_one_top_level_package(tmp_path: Path) -> None:
    code = (
        "import json, importlib.metadata as m\n"
        "dist = m.distribution('orchestrator')\n"
        "tops = sorted(t for t, ds in m.packages_distributions().items() if 'orchestrator' in ds)\n"
        "print(json.dumps({'top_level': (dist.read_text('top_level.txt') or '').split(),"
        " 'tops': tops}))\n"
    )
    assert _python(code, tmp_path) == {"top_level": ["orchestrator"], "tops": ["orchestrator"]}


def _package_data() -> set[str]:
    """Every file the pyproject's package-data globs match in the sources, as wheel paths."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]
    found = set()
    for package, patterns in setuptools["package-data"].items():
        # a package without its own package-dir entry lies where its name says
        folder = ROOT / setuptools["package-dir"].get(package, package.replace(".", "/"))
        prefix = package.replace(".", "/")
        for pattern in patterns:
            found |= {f"{prefix}/{p.relative_to(folder).as_posix()}" for p in folder.glob(pattern)}
    assert any(name.startswith("orchestrator/evals/examples/") for name in found)
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the sources (the checkout gets no build/)."""
    source = tmp_path_factory.mktemp("source")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    folders = set(config["tool"]["setuptools"]["package-dir"].values())
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for folder in folders:
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*command, "--no-index", "-q", str(source), "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (path,) = out.glob("orchestrator-*.whl")
    return path


def test_the_wheel_holds_only_the_orchestrator_package_and_its_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    strays = [n for n in names if not n.startswith(("orchestrator/", "orchestrator-"))]
    assert strays == []
    for name in SUBPACKAGES:
        assert f"orchestrator/{name}/__init__.py" in names
    assert "orchestrator/agents/tools/__init__.py" in names
    assert "orchestrator/prompts/library.py" in names  # the named prompt library
    assert _package_data() <= set(names)
    for data in ("cranfield.yaml", "rag.yaml", "rag_qa.jsonl"):
        assert f"orchestrator/evals/examples/{data}" in names
    assert any(n.startswith("orchestrator/evals/examples/rag_docs/") for n in names)
    assert "orchestrator/evals/templates/report.html.j2" in names
    (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["orchestrator"]


def test_the_wheel_installed_alone_imports_beside_openai_agents(
    wheel: Path, tmp_path: Path
) -> None:
    """Installed into a plain folder (no venv) and put first on the path: the same checks
    against the wheel's files, package data included."""
    pytest.importorskip("agents", reason="openai-agents comes with the test extra")
    site = tmp_path / "site"
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q"]
    done = subprocess.run(
        [*command, "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in site.iterdir() if not p.name.endswith(".dist-info")) in (
        ["orchestrator"],
        ["bin", "orchestrator"],  # the console script
    )
    out = _python(_REPORT, tmp_path, PYTHONPATH=str(site))
    assert Path(out["orchestrator_file"]).is_relative_to(site)  # the wheel's copy, not ours
    assert out["ours"] == [f"orchestrator.{n}" for n in SUBPACKAGES]
    assert "site-packages" in out["agents_file"] and out["agents_has_Agent"] is True
    assert out["template"] is True and out["prompts"] > 0
