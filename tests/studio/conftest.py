"""Run Studio in a real browser: Debian's chromium driven by Playwright, against the real app and stack.

The app is served by ``runtime_bootstrap.api.serving`` (uvicorn, in this event loop) over the
shared SQLite stack; Studio is a thin face over the operations that ``tests/test_api.py``
exercises on both databases. Every test gets a fresh browser context; :meth:`Studio.shot`
saves a full-page screenshot under ``.artifacts/studio/<test>/`` (look at them when a page
changes), and a test fails if the page logged a console error or an uncaught exception.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from runtime_bootstrap._stack import Stack
from runtime_bootstrap.api import serving
from runtime_core.operations import ROLES, Operations

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("WFR_STUDIO_ARTIFACTS") or ROOT / ".artifacts" / "studio")
CHROMIUM = os.environ.get("WFR_CHROMIUM") or "/usr/lib/chromium/chromium"
# A loaded 2-core CI machine runs Temporal, the worker, the app and chromium at once: give each
# expectation 15 s (the default 5 s made assertions on live pages flaky there).
expect.set_options(timeout=15_000)

ECHO = {"id": "s-echo", "version": 1, "name": "Echo", "payloadSchema": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "steps": [{"id": "say", "name": "Say it", "type": "action.call",
                   "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"n": {"$expr": "payload.n"}}, "saveAs": "vars.said"}}]}
WAIT = {"id": "s-wait", "version": 1, "name": "Wait for go", "steps": [
    {"id": "w", "type": "event.wait", "config": {"eventName": "go", "correlationKey": {"$expr": "payload.key"}, "assign": {"vars.got": {"$expr": "vars.event"}}}}]}
ASK = {"id": "s-ask", "version": 1, "name": "Ask", "steps": [{"id": "t", "type": "human.task", "config": {
    "taskType": "approve", "title": {"$expr": "'Approve ' & payload.what"}, "contextData": {"what": {"$expr": "payload.what"}},
    "formSchema": {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}}}]}
#: Fails its first attempt (no retry policy), succeeds when resumed.
FLAKY = {"id": "s-flaky", "version": 1, "name": "Flaky", "steps": [
    {"id": "first", "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"n": 1}, "saveAs": "vars.first"}},
    {"id": "boom", "type": "action.call", "config": {"actionId": "core.fail", "version": 1, "inputMapping": {"message": "the mail server is down", "succeedOnAttempt": 2}}}]}
PARENT = {"id": "s-parent", "version": 1, "name": "Parent", "steps": [
    {"id": "kid", "type": "control.callWorkflow", "workflowId": "s-echo", "workflowVersion": 1, "inputMapping": {"n": 7}}]}
DEFINITIONS = (ECHO, WAIT, ASK, FLAKY, PARENT)



@pytest.fixture
def stack(sqlite_stack: Stack) -> Stack:
    """Studio runs on the SQLite stack only: the operations under it are tested on both databases."""
    return sqlite_stack


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One chromium for the session (Debian's package: ``apt-get install -y chromium``)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium) or set WFR_CHROMIUM", pytrace=False)
    async with async_playwright() as p:
        found = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield found
        finally:
            await found.close()


class Studio:
    """The served app, an operations object on its stack, two tenants with a token per role."""

    def __init__(self, stack: Stack, url: str, ops: Operations) -> None:
        self.stack = stack
        self.url = url
        self.ops = ops
        self.tenants = {"a": f"s-{uuid.uuid4().hex[:8]}", "b": f"s-{uuid.uuid4().hex[:8]}"}
        self.tokens: dict[tuple[str, str], str] = {}
        self.pages: list[Page] = []
        self.problems: list[str] = []
        self.shots: Path = ARTIFACTS
        self._contexts: list[BrowserContext] = []
        self._browser: Browser | None = None

    @property
    def tenant(self) -> str:
        return self.tenants["a"]

    async def setup(self) -> None:
        for key, tenant in self.tenants.items():
            for role in ROLES:
                self.tokens[(key, role)] = (await self.ops.create_token(tenant, role, f"{role}-{key}")).token

    async def page(self, role: str | None = "admin", who: str = "a", *, width: int = 1280, height: int = 900, timezone: str | None = None) -> Page:
        """A new browser page; signed in through the login form as ``role`` of tenant ``who`` unless ``role`` is None."""
        assert self._browser is not None
        context = await self._browser.new_context(viewport={"width": width, "height": height}, base_url=self.url, timezone_id=timezone, locale="en-GB")
        self._contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(15_000)
        # a 4xx page the test asked for logs "Failed to load resource"; broken assets are caught by status instead
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                if m.type == "error" and not m.text.startswith("Failed to load resource: the server responded with a status of 4") else None)
        page.on("response", lambda r: self.problems.append(f"asset {r.url} answered {r.status}") if "/static/" in r.url and r.status >= 400 else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.pages.append(page)
        if role is not None:
            await self.sign_in(page, self.tokens[(who, role)])
        return page

    async def sign_in(self, page: Page, token: str) -> None:
        await page.goto("/login")
        await page.fill("input[name=token]", token)
        await page.click("button[type=submit]")
        await page.wait_for_url(re.compile(r".*/runs$"))

    async def shot(self, page: Page, name: str) -> Path:
        """Save a full-page screenshot ``<test>/<name>.png``."""
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path

    async def publish(self, *documents: dict[str, Any], who: str = "a") -> None:
        """Publish ``documents`` (default: every definition above) for tenant ``who``."""
        documents = documents or DEFINITIONS
        result = await self.ops.publish(self.tenants[who], list(documents))
        assert len(result.published) == len(documents), result.problems

    async def wait_for(self, run_ids: list[str], statuses: tuple[str, ...] = ("SUCCEEDED", "FAILED", "CANCELED"), timeout: float = 60) -> None:
        """Wait until every run has one of ``statuses`` in the read model."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [(await self.ops.get_run(self.tenant, r)).status for r in run_ids]
            if all(s in statuses for s in found):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"runs never reached {statuses}: {found}")
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        for context in self._contexts:
            await context.close()


@pytest.fixture
async def studio(stack: Stack, browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Studio]:
    """The app served on a free port over the stack, and a browser to walk it."""
    ops = Operations(stack.database, stack.client, registry=stack.registry)
    async with serving(stack, "127.0.0.1", 0) as url:
        found = Studio(stack, url, ops)
        found._browser = browser
        found.shots = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        await found.setup()
        try:
            yield found
        finally:
            await found.close()
        assert not found.problems, "the page logged errors:\n" + "\n".join(found.problems)
