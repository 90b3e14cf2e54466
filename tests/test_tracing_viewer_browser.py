"""The trace viewer in a real headless Chromium (Debian's ``chromium``, driven by playwright):
``orchestrator traces`` started as a process on a free loopback port over a store the
tracing library filled; the page lists the recorded run, shows its span tree on a timeline
with the model call's prompt and tokens, shows recorded HTML as text without running it, and
draws the per-pipeline summary, fetching nothing but its own app."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra)")
from playwright.sync_api import ConsoleMessage, Dialog, Page, Request, expect, sync_playwright
from ready_support import free_port, wait_until
from test_tracing_viewer import REPLY_TOKENS, XSS_PASSAGE, XSS_QUESTION, record_runs

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium() -> str:
    """Debian's Chromium, or a skip that says how to get it (no browser is downloaded)."""
    found = next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)
    if found is None:
        pytest.skip("no Chromium found: install Debian's chromium (apt-get install chromium; "
                    ".ci/run does) to run the trace viewer's browser test")  # fmt: skip
    return found


def viewer_command(store: Path, port: int) -> list[str]:
    """``orchestrator traces`` (through the app once registered, else its module)."""
    from orchestrator.cli import app

    entry = ["-m", "orchestrator.cli.app", "traces"] if "traces" in app.COMMAND_MODULES else [
        "-m", "orchestrator.cli.traces"]  # fmt: skip
    return [sys.executable, *entry, "--port", str(port), "--store", str(store)]


def listed_runs(url: str) -> int:
    with urllib.request.urlopen(url + "api/runs", timeout=5) as answer:
        return len(json.load(answer)["runs"])


@pytest.fixture
def viewer(tmp_path: Path) -> Iterator[tuple[str, str, dict[str, str]]]:
    """Chromium's path, the URL of a viewer started as a process, the recorded runs' ids."""
    executable = chromium()  # skip before recording or starting anything
    store = tmp_path / "traces.sqlite"
    ids = record_runs(store)
    port = free_port()
    env = {**os.environ, "ORCHESTRATOR_HOME": str(tmp_path), "ORCHESTRATOR_TRACE": "0"}
    env.pop("ORCHESTRATOR_API_KEY", None)
    log = tmp_path / "viewer.log"
    with log.open("wb") as out:
        process = subprocess.Popen(viewer_command(store, port), env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}/"
    try:
        ready = (urllib.error.URLError, ConnectionError)
        found = wait_until(lambda: listed_runs(url), "the viewer to list the runs", limit=60,
                           process=process, log=log, ignore=ready)  # fmt: skip
        assert found == 3
        yield executable, url, ids
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def watch(page: Page, url: str) -> list[str]:
    """What goes wrong on ``page``: dialogs (a script that ran), console errors (a resource
    refused or missing), uncaught errors, and any request beyond the viewer's own URL."""
    problems: list[str] = []

    def dialog(d: Dialog) -> None:
        problems.append(f"dialog {d.message}")
        d.dismiss()

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    def request(r: Request) -> None:
        if not r.url.startswith(url):
            problems.append(f"request to {r.url}")

    page.on("dialog", dialog)
    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", request)
    return problems


def check_run_list(page: Page, ids: dict[str, str]) -> None:
    expect(page.locator("tr.run-row")).to_have_count(3)
    expect(page.locator(f'tr.run-row[data-run-id="{ids["rag"]}"]')).to_contain_text("rag-demo")
    expect(page.locator(f'tr.run-row[data-run-id="{ids["failed"]}"]')).to_contain_text("error")


def check_run_page(page: Page) -> None:
    """The span tree on its timeline; the model call with its prompt and tokens; the
    retrieved passage; recorded HTML shown as text, none of it parsed or run."""
    model = page.locator('.span-row[data-kind="llm"]')
    expect(model).to_have_count(1)
    spans = page.locator(".span-row")
    assert spans.count() >= 4 and page.locator("#timeline .bar").count() == spans.count()
    model.click()
    expect(model).to_have_class(re.compile(r"\bselected\b"))
    detail = page.locator("#span-detail")
    expect(detail).to_contain_text(XSS_QUESTION)  # the prompt, as text
    expect(detail).to_contain_text("tokens out")
    tokens = detail.locator("dl.facts").inner_text()
    assert f"tokens out\n{REPLY_TOKENS}" in tokens and "tokens in\n" in tokens
    bar = model.locator(".bar").bounding_box()
    assert bar is not None and bar["width"] >= 1
    page.locator('.span-row[data-kind="retriever"]').click()
    expect(detail).to_contain_text(XSS_PASSAGE)
    expect(detail).to_contain_text("score 0.875")
    assert page.locator("main img, main script, main b").count() == 0
    assert page.evaluate("window.__pwned") is None


def check_summary(page: Page) -> None:
    page.locator("#nav-summary").click()
    expect(page.locator('#summary tr[data-pipeline="rag-demo"]')).to_contain_text("50.0%")
    expect(page.locator("svg.plot.latency")).to_have_count(2)
    assert page.locator("svg.plot.latency circle").count() == 3  # one per run
    assert page.locator("svg.plot.tokens rect").count() == 6  # input and output per run


def test_the_viewer_shows_a_recorded_run_in_chromium(
    viewer: tuple[str, str, dict[str, str]],
) -> None:
    executable, url, ids = viewer
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, headless=True)
        try:
            page = browser.new_page()
            problems = watch(page, url)
            page.goto(url)
            check_run_list(page, ids)
            page.locator(f'tr.run-row[data-run-id="{ids["rag"]}"]').click()
            expect(page).to_have_url(f"{url}#/run/{ids['rag']}")
            check_run_page(page)
            check_summary(page)
        finally:
            browser.close()
    assert problems == []
