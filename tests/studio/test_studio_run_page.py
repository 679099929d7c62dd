"""Run Studio's run page in a real browser: live updates, failure and resume, replay, cancel, the step tree, stuck runs, roles."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect
from temporalio.client import Client

from runtime_bootstrap.api import serving_operations
from runtime_bootstrap.studio._web import csrf_token
from runtime_core.contract import TASK_QUEUE
from runtime_core.operations import LaunchRequest, Operations
from runtime_core.worker import temporal_runtime
from tests.studio.conftest import ECHO, FLAKY, PARENT, WAIT, Studio

#: Never polled by any worker (conftest registers it on the dev server): a run there has no worker.
QUIET = "wfr-studio-quiet"

#: Takes about three seconds: a durable timer, then an action.
SLOW = {"id": "s-slow", "version": 1, "name": "Slow", "steps": [
    {"id": "nap", "name": "Nap", "type": "time.wait", "config": {"durationMs": 3000}},
    {"id": "after", "name": "After the nap", "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"done": True}, "saveAs": "vars.after"}}]}

#: A loop over the payload's items, a branch, and a step that succeeds on its second attempt.
LOOPY = {"id": "s-loopy", "version": 1, "name": "Loop and retry", "steps": [
    {"id": "each", "name": "Each item", "type": "control.forEach", "items": {"$expr": "payload.items"}, "itemVar": "it", "body": [
        {"id": "say", "name": "Say the item", "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"item": {"$expr": "it"}}}},
        {"id": "big", "type": "control.if", "condition": {"$expr": "it > 1"},
         "then": [{"id": "note", "type": "transform.assign", "config": {"assign": {"vars.big": {"$expr": "it"}}}}]}]},
    {"id": "shaky", "name": "Shaky call", "type": "action.call", "retry": {"maxAttempts": 3, "backoffMs": 100},
     "config": {"actionId": "core.fail", "version": 1, "inputMapping": {"message": "flaky upstream", "succeedOnAttempt": 2, "category": "TransientError"}}}]}


async def _run_id(page: Page) -> str:
    match = re.search(r"/runs/([0-9a-f]{32})$", page.url)
    assert match, page.url
    return match.group(1)


async def _launch(studio: Studio, workflow_id: str, payload: dict[str, Any] | None = None) -> str:
    run, _ = await studio.ops.launch_run(studio.tenant, LaunchRequest(workflowId=workflow_id, payload=payload or {}))
    return run.runId


async def _open(page: Page, popover: str) -> None:
    """Open an action popover and wait until run.js has moved the focus into it (typing before that lands elsewhere)."""
    await page.click(f"{popover} summary")
    await page.wait_for_function("(sel) => document.querySelector(sel).contains(document.activeElement)", arg=popover)


async def test_a_run_finishes_on_its_page_without_a_reload(studio: Studio) -> None:
    """The page of an active run updates itself: RUNNING/WAITING becomes SUCCEEDED on the same document; steps fill in."""
    await studio.publish(SLOW)
    run_id = await _launch(studio, "s-slow")
    page = await studio.page("viewer")
    await page.goto(f"/runs/{run_id}")
    await expect(page.locator("#run-status")).to_contain_text(re.compile("RUNNING|WAITING"))
    await expect(page.locator("[data-live-url]")).to_have_attribute("data-live-active", "true")
    await expect(page.locator('[data-step-path="root.steps[1]"]')).to_contain_text("PENDING")
    await page.evaluate("window.__marker = 1")
    await studio.shot(page, "run-active")
    await expect(page.locator("#run-status")).to_contain_text("SUCCEEDED", timeout=30_000)
    assert await page.evaluate("window.__marker") == 1, "the page was reloaded"
    await expect(page.locator("[data-live-url]")).to_have_attribute("data-live-active", "false")
    await expect(page.locator('[data-step-path="root.steps[0]"]')).to_have_attribute("data-status", "SUCCEEDED")
    await expect(page.locator('[data-step-path="root.steps[1]"]')).to_have_attribute("data-status", "SUCCEEDED")
    await expect(page.locator(".run-head")).to_contain_text(re.compile(r"\d+\.\d s"))  # a duration in human units
    await page.locator('[data-step-path="root.steps[1]"] > details > summary').click()
    await expect(page.locator('[data-step-path="root.steps[1]"] pre.json').first).to_contain_text('"done": true')
    await studio.shot(page, "run-succeeded")
    await page.set_viewport_size({"width": 390, "height": 844})
    await studio.shot(page, "run-succeeded-phone")


async def test_a_failed_run_shows_its_error_on_the_failing_step_and_resume_makes_it_succeed(studio: Studio) -> None:
    """FLAKY fails at its second step: the banner says why and links the step, which shows the error; Resume ends it SUCCEEDED."""
    await studio.publish(FLAKY)
    run_id = await _launch(studio, "s-flaky")
    await studio.wait_for([run_id])
    page = await studio.page("operator")
    await page.goto(f"/runs/{run_id}")
    await expect(page.locator("#run-status")).to_contain_text("FAILED")
    await expect(page.locator("#run-error")).to_contain_text("the mail server is down")
    failing = page.locator('[data-step-path="root.steps[1]"]')
    await expect(failing).to_have_class(re.compile("failing"))
    await expect(failing.locator(".step-error")).to_contain_text("the mail server is down")
    await expect(page.locator('[data-step-path="root.steps[0]"]')).to_have_attribute("data-status", "SUCCEEDED")
    await expect(page.locator("#act-cancel")).to_be_hidden()
    await page.click("#to-failing-step")
    await expect(page).to_have_url(re.compile(r"#step-root-steps-1$"))
    await expect(failing.locator("> details")).to_have_attribute("open", "")
    await studio.shot(page, "run-failed")
    await _open(page, "#act-resume")
    await page.fill("#resume-reason", "mail server is back")
    await page.click("#act-resume button[type=submit]")
    await expect(page).to_have_url(re.compile(rf"/runs/{run_id}$"))
    await expect(page.locator("#run-status")).to_contain_text("SUCCEEDED", timeout=30_000)
    await expect(page.locator("#history")).to_contain_text("mail server is back")
    await expect(page.locator("#act-resume")).to_be_hidden()
    await studio.shot(page, "run-resumed")


async def test_replay_lands_on_the_new_run_and_an_edited_payload_is_checked_before_sending(studio: Studio) -> None:
    """Replay with the original input opens the new run ("replay of"); an edited payload is checked as typed: invalid disables the button."""
    await studio.publish(ECHO)
    original = await _launch(studio, "s-echo", {"n": 1})
    await studio.wait_for([original])
    page = await studio.page("operator")
    await page.goto(f"/runs/{original}")
    await _open(page, "#act-replay")
    await studio.shot(page, "replay-open")
    await page.click("#replay-original button[type=submit]")
    await expect(page).not_to_have_url(re.compile(rf"/runs/{original}$"))
    first = await _run_id(page)
    await expect(page.locator("#replay-of-link")).to_have_attribute("href", f"/runs/{original}")
    await expect(page.locator("#run-status")).to_contain_text("SUCCEEDED", timeout=30_000)
    await studio.shot(page, "replayed")

    await page.goto(f"/runs/{original}")
    await expect(page.locator(".replayed-as")).to_have_attribute("href", f"/runs/{first}")
    await _open(page, "#act-replay")
    await page.fill("#replay-payload", '{"n": "five"}')
    await expect(page.locator("#replay-errors")).to_contain_text("payload.n")
    await expect(page.locator("#replay-edited button[type=submit]")).to_be_disabled()
    await studio.shot(page, "replay-invalid-payload")
    await page.fill("#replay-payload", '{"n": 5}')
    await expect(page.locator("#replay-errors")).to_be_empty()
    await expect(page.locator("#replay-edited button[type=submit]")).to_be_enabled()
    await page.click("#replay-edited button[type=submit]")
    await expect(page).not_to_have_url(re.compile(rf"/runs/({original}|{first})$"))
    second = await _run_id(page)
    await studio.wait_for([second])
    assert (await studio.ops.get_run(studio.tenant, second)).vars["said"] == {"n": 5}
    assert len((await studio.ops.get_run(studio.tenant, original)).history) == 2  # the check launched nothing

    async with page.expect_download() as download_info:
        await page.click("#export")
    download = await download_info.value
    assert download.suggested_filename == f"run-{second}.json"
    document = json.loads(Path(await download.path()).read_text(encoding="utf-8"))
    assert document["run"]["runId"] == second and document["run"]["replayOfRunId"] == original


async def test_cancel_a_waiting_run_with_a_reason(studio: Studio) -> None:
    """A WAITING run cancelled from its page (confirmed) ends CANCELED; the history shows who and why."""
    await studio.publish(WAIT)
    run_id = await _launch(studio, "s-wait", {"key": "k-cancel"})
    await studio.wait_for([run_id], ("WAITING",))
    page = await studio.page("operator")
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.goto(f"/runs/{run_id}")
    await expect(page.locator("#waits")).to_contain_text("go")
    # keyboard: Enter opens the popover on its reason field, Escape closes it back onto its button
    await page.focus("#act-cancel summary")
    await page.keyboard.press("Enter")
    await expect(page.locator("#cancel-reason")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.locator("#act-cancel")).not_to_have_attribute("open", "")
    await expect(page.locator("#act-cancel summary")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#cancel-reason")).to_be_focused()
    await page.keyboard.type("customer withdrew the order")
    await studio.shot(page, "cancel-open")
    await page.keyboard.press("Enter")  # submits the form (after the confirmation)
    await expect(page.locator("#run-status")).to_contain_text("CANCELED", timeout=30_000)
    await expect(page.locator("#run-error")).to_contain_text("customer withdrew the order")
    await expect(page.locator("#history")).to_contain_text("customer withdrew the order")
    await expect(page.locator("#history")).to_contain_text("cancel")
    await expect(page.locator("#act-cancel")).to_be_hidden()
    await studio.shot(page, "canceled")
    history = (await studio.ops.get_run(studio.tenant, run_id)).history
    assert [(h.action, h.reason) for h in history] == [("cancel", "customer withdrew the order")]


async def test_a_loop_shows_one_group_per_item_and_a_retried_step_its_attempts(studio: Studio) -> None:
    """The tree follows the definition: a forEach has one group per item (each with its branch), a retried step shows its attempts."""
    await studio.publish(LOOPY)
    run_id = await _launch(studio, "s-loopy", {"items": [1, 2, 3]})
    await studio.wait_for([run_id])
    assert (await studio.ops.get_run(studio.tenant, run_id)).status == "SUCCEEDED"
    page = await studio.page("viewer")
    await page.goto(f"/runs/{run_id}")
    loop = page.locator('[data-step-path="root.steps[0]"]')
    groups = loop.locator(":scope > .groups > .group")
    await expect(groups).to_have_count(3)
    await expect(groups.nth(0).locator(":scope > .group-label")).to_have_text("item 0")
    await expect(groups.nth(2).locator(":scope > .group-label")).to_have_text("item 2")
    for i in range(3):
        item = groups.nth(i).locator('[data-step-path="root.steps[0].body.steps[0]"]')
        await expect(item).to_have_attribute("data-status", "SUCCEEDED")
    # the branch of item 0 (it = 1) was not taken, those of items 1 and 2 were
    await expect(groups.nth(0).locator('[data-step-path="root.steps[0].body.steps[1].then.steps[0]"]')).to_contain_text("NOT RUN")
    await expect(groups.nth(2).locator('[data-step-path="root.steps[0].body.steps[1].then.steps[0]"]')).to_have_attribute("data-status", "SUCCEEDED")
    shaky = page.locator('[data-step-path="root.steps[1]"]')
    await expect(shaky).to_contain_text("2 attempts")
    await shaky.locator("> details > summary").click()
    await expect(shaky.locator("table.mini")).to_contain_text("core.fail")
    await expect(page.locator("#invocations tbody tr")).to_have_count(4)
    await studio.shot(page, "loop-and-retry")


async def test_a_parent_links_its_child_and_the_child_its_parent(studio: Studio) -> None:
    """A callWorkflow step links the child run it started; the child's page links back to its parent."""
    await studio.publish(ECHO, PARENT)
    parent = await _launch(studio, "s-parent")
    await studio.wait_for([parent])
    (child,) = await studio.ops.run_children(studio.tenant, parent)
    page = await studio.page("viewer")
    await page.goto(f"/runs/{parent}")
    await expect(page.locator('[data-step-path="root.steps[0]"] .step-children a')).to_have_attribute("href", f"/runs/{child.runId}")
    await expect(page.locator("#children tbody tr")).to_have_count(1)
    await page.click(f'#children a[href="/runs/{child.runId}"]')
    await expect(page.locator("#parent-link")).to_have_attribute("href", f"/runs/{parent}")
    await expect(page.locator("#run-status")).to_contain_text("SUCCEEDED")
    await studio.shot(page, "child")


async def test_a_run_without_a_worker_shows_the_stuck_banner(studio: Studio) -> None:
    """A run on a namespace nobody polls: the banner says no worker polls the queue and to start workflow-worker."""
    await studio.publish(ECHO)
    assert studio.stack.server is not None
    client = await Client.connect(studio.stack.server.address, namespace=QUIET, runtime=temporal_runtime())
    quiet = Operations(studio.stack.database, client, registry=studio.stack.registry, stuck_after_seconds=0.5, diagnosis_cache_seconds=0)
    run, _ = await quiet.launch_run(studio.tenant, LaunchRequest(workflowId="s-echo", payload={"n": 1}))
    try:
        await asyncio.sleep(1)
        async with serving_operations(quiet, "127.0.0.1", 0) as url:
            page = await studio.page("operator")  # the session cookie is for 127.0.0.1, whatever the port
            await page.goto(f"{url}/runs/{run.runId}")
            banner = page.locator("#stuck-banner")
            await expect(banner).to_contain_text(f"No worker is polling {TASK_QUEUE}")
            await expect(banner).to_contain_text("Start workflow-worker")
            await expect(banner).to_contain_text("NO_WORKER")
            await expect(page.locator("#run-status")).to_contain_text("RUNNING")
            await studio.shot(page, "stuck-no-worker")
            await page.close()
    finally:
        await client.get_workflow_handle(f"workflow-runtime-v2:run:{run.runId}").terminate()


async def test_a_viewer_sees_no_actions_and_the_server_refuses_them(studio: Studio) -> None:
    """A viewer's page has Export only; the action forms posted with a valid CSRF token as a viewer are refused 403."""
    await studio.publish(WAIT)
    run_id = await _launch(studio, "s-wait", {"key": "k-viewer"})
    await studio.wait_for([run_id], ("WAITING",))
    page = await studio.page("viewer")
    await page.goto(f"/runs/{run_id}")
    await expect(page.locator("#run-status")).to_contain_text("WAITING")
    await expect(page.locator("#export")).to_be_visible()
    for action in ("#act-cancel", "#act-resume", "#act-replay"):
        await expect(page.locator(action)).to_have_count(0)
    await expect(page.locator("#run-actions form")).to_have_count(0)
    await studio.shot(page, "viewer")
    token = studio.tokens[("a", "viewer")]
    async with httpx.AsyncClient(base_url=studio.url, cookies={"wfr_session": token}) as http:
        for action, data in (("cancel", {"reason": "x"}), ("resume", {}), ("replay", {}), ("replay/check", {"payload": "{}"})):
            response = await http.post(f"/runs/{run_id}/{action}", data={**data, "csrf": csrf_token(token)})
            assert response.status_code == 403, (action, response.status_code)
        fragment = await http.get(f"/runs/{run_id}", headers={"X-Studio-Fragment": "1"})
        assert fragment.status_code == 200 and fragment.text.lstrip().startswith('<div id="run-live"') and "<html" not in fragment.text
    assert (await studio.ops.get_run(studio.tenant, run_id)).status == "WAITING"
    await studio.ops.cancel_run(studio.tenant, run_id, actor="test", reason="cleanup")


async def test_another_tenants_run_is_not_found(studio: Studio) -> None:
    """Another tenant's run id, its export and its actions answer 404, and nothing of it shows."""
    await studio.publish(ECHO, who="b")
    theirs, _ = await studio.ops.launch_run(studio.tenants["b"], LaunchRequest(workflowId="s-echo", payload={"n": 1}))
    page = await studio.page("admin")
    for path in (f"/runs/{theirs.runId}", f"/runs/{theirs.runId}/export", "/runs/0123456789abcdef0123456789abcdef"):
        response = await page.goto(path)
        assert response is not None and response.status == 404, path
        await expect(page.locator("h1")).to_contain_text("Not found")
        await expect(page.locator("body")).not_to_contain_text(studio.tenants["b"])
    token = studio.tokens[("a", "admin")]
    async with httpx.AsyncClient(base_url=studio.url, cookies={"wfr_session": token}) as http:
        response = await http.post(f"/runs/{theirs.runId}/replay", data={"csrf": csrf_token(token)})
        assert response.status_code == 404
    await studio.shot(page, "not-found")
