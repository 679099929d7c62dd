"""Run Studio basics in a real browser: signing in and out, the run list and its filters, launching, 404s, CSRF."""

from __future__ import annotations

import asyncio
import re

import httpx
from playwright.async_api import expect

from runtime_bootstrap.studio._web import csrf_token
from runtime_core.operations import LaunchRequest
from tests.studio.conftest import ECHO, Studio


async def test_sign_in_out_and_a_bad_token(studio: Studio) -> None:
    """A wrong token is refused on the form; a good one lands on /runs with an HttpOnly SameSite session; sign out ends it."""
    page = await studio.page(role=None)
    await page.goto("/runs?status=FAILED")
    await expect(page).to_have_url(re.compile(r"/login\?next=/runs%3Fstatus%3DFAILED|/login\?next=/runs\?status=FAILED"))
    await page.fill("input[name=token]", "wfr_not-a-token")
    await page.click("button[type=submit]")
    await expect(page.locator("#login-error")).to_contain_text("unknown or revoked")
    await studio.shot(page, "login-refused")
    await page.fill("input[name=token]", studio.tokens[("a", "viewer")])
    await page.click("button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/runs\?status=FAILED$"))
    (cookie,) = [c for c in await page.context.cookies() if c["name"] == "wfr_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    await expect(page.locator("header .who")).to_contain_text(f"{studio.tenant} · viewer")
    await page.click("text=Sign out")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.goto("/runs")
    await expect(page).to_have_url(re.compile(r"/login\?next=/runs$"))


async def test_run_list_filters_pagination_and_launch(studio: Studio) -> None:
    """Launch from the list (JSON checked as typed); filters survive refresh and paging; rows show status, workflow and version."""
    await studio.publish(ECHO)
    page = await studio.page("operator")
    await studio.shot(page, "runs-empty")
    await page.select_option("#l-workflow", "s-echo")
    await page.fill("#l-payload", '{"n": "x"')
    await expect(page.locator("[data-json-error]")).to_contain_text("Not JSON")
    await expect(page.locator("#launch button[type=submit]")).to_be_disabled()
    await page.fill("#l-payload", '{"n": 1}')
    await page.click("#launch button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/runs/[0-9a-f]{32}$"))
    ids = [page.url.rsplit("/", 1)[1]]
    for n in range(2, 28):
        ids.append((await studio.ops.launch_run(studio.tenant, LaunchRequest(workflowId="s-echo", payload={"n": n})))[0].runId)
    await studio.wait_for(ids)
    await page.goto("/runs?status=SUCCEEDED&workflowId=s-echo")
    await expect(page.locator("table.runs tbody tr")).not_to_have_count(0)
    rows = page.locator("table.runs tbody tr")
    first = rows.first
    await expect(first).to_contain_text("s-echo")
    await expect(first).to_contain_text("v1")
    await expect(rows).to_have_count(25)
    await page.click("#refresh")
    await expect(page).to_have_url(re.compile(r"status=SUCCEEDED&workflowId=s-echo"))
    await page.click("a[rel=next]")
    await expect(page).to_have_url(re.compile(r"status=SUCCEEDED&workflowId=s-echo&cursor="))
    await expect(rows).to_have_count(2)
    await expect(page.locator("#f-status")).to_have_value("SUCCEEDED")
    await studio.shot(page, "runs-filtered")
    await page.set_viewport_size({"width": 390, "height": 844})
    await studio.shot(page, "runs-phone")


async def test_pages_of_nothing_or_of_another_tenant_are_404(studio: Studio) -> None:
    """A run id that does not exist, or is another tenant's, is a 404 page (not a redirect, not a leak)."""
    await studio.publish(ECHO, who="b")
    theirs, _ = await studio.ops.launch_run(studio.tenants["b"], LaunchRequest(workflowId="s-echo", payload={"n": 1}))
    page = await studio.page("admin")
    for run_id in ("0123456789abcdef0123456789abcdef", theirs.runId):
        response = await page.goto(f"/runs/{run_id}")
        assert response is not None and response.status == 404
        await expect(page.locator("h1")).to_contain_text("Not found")
        await expect(page.locator("body")).not_to_contain_text(studio.tenants["b"])
    response = await page.goto("/no-such-page")
    assert response is not None and response.status == 404
    await studio.shot(page, "not-found")


async def test_a_form_without_the_csrf_token_changes_nothing(studio: Studio) -> None:
    """A POST with the session cookie but without the page's CSRF token (or from another origin) is refused 403."""
    await studio.publish(ECHO)
    token = studio.tokens[("a", "operator")]
    async with httpx.AsyncClient(base_url=studio.url, cookies={"wfr_session": token}) as http:
        before = len((await studio.ops.list_runs(studio.tenant)).items)
        response = await http.post("/runs", data={"workflowId": "s-echo", "payload": "{}"})
        assert response.status_code == 403 and "CSRF" in response.text
        response = await http.post("/runs", data={"workflowId": "s-echo", "payload": "{}", "csrf": csrf_token(token)}, headers={"Origin": "https://evil.example"})
        assert response.status_code == 403
        assert len((await studio.ops.list_runs(studio.tenant)).items) == before


async def test_instants_in_the_viewers_zone_with_utc_on_hover_and_human_durations(studio: Studio) -> None:
    """A viewer in Tokyo sees start times in Tokyo time, UTC in the title; durations read as ms/s/min."""
    await studio.publish(ECHO)
    run, _ = await studio.ops.launch_run(studio.tenant, LaunchRequest(workflowId="s-echo", payload={"n": 1}))
    await studio.wait_for([run.runId])
    detail = await studio.ops.get_run(studio.tenant, run.runId)
    assert detail.startedAt is not None
    page = await studio.page("viewer", timezone="Asia/Tokyo")
    cell = page.locator(f"tr[data-run-id='{run.runId}'] time")
    await expect(cell).to_have_attribute("title", re.compile(r"UTC$"))
    utc_title = await cell.get_attribute("title")
    assert utc_title is not None
    shown = await cell.inner_text()
    tokyo = await page.evaluate("(iso) => new Date(iso).toLocaleString('en-GB', {timeZone: 'Asia/Tokyo', hour: '2-digit', minute: '2-digit', second: '2-digit'})", detail.startedAt)
    assert tokyo in shown and "UTC" not in shown, (shown, tokyo, utc_title)
    duration = await page.locator(f"tr[data-run-id='{run.runId}'] td").nth(4).inner_text()
    assert re.fullmatch(r"\d+ ms|\d+\.\d s|\d+ m \d\d s", duration), duration


_UNLABELLED = """() => Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))
    .filter(el => el.offsetParent !== null || el.closest('details'))
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
    .map(el => el.outerHTML.slice(0, 120))"""


async def test_every_page_labels_its_inputs_and_works_from_the_keyboard(studio: Studio) -> None:
    """Each page, as an admin on a laptop and a phone: every input has a label, no page scrolls sideways, Tab reaches the main navigation."""
    await studio.publish()
    asked, _ = await studio.ops.launch_run(studio.tenant, LaunchRequest(workflowId="s-ask", payload={"what": "the invoice"}))
    echo, _ = await studio.ops.launch_run(studio.tenant, LaunchRequest(workflowId="s-echo", payload={"n": 1}))
    await studio.wait_for([echo.runId])
    for _ in range(100):
        tasks = await studio.ops.list_tasks(studio.tenant, run_id=asked.runId)
        if tasks.items:
            break
        await asyncio.sleep(0.1)
    (task,) = tasks.items
    paths = ["/runs", f"/runs/{echo.runId}", f"/runs/{asked.runId}", "/tasks", f"/tasks/{task.taskId}", "/events", "/definitions", "/definitions/s-ask"]
    for width, height in ((1280, 900), (390, 844)):
        page = await studio.page("admin", width=width, height=height)
        for path in paths:
            response = await page.goto(path)
            assert response is not None and response.status == 200, path
            assert await page.evaluate(_UNLABELLED) == [], path
            overflow = await page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 1, f"{path} scrolls sideways by {overflow}px at {width}px"
            name = path.strip("/").replace("/", "-")
            await studio.shot(page, f"{name[:40]}-{width}")
        await page.goto("/runs")
        await page.keyboard.press("Tab")  # the skip link first, then the brand and the navigation
        assert await page.evaluate("() => document.activeElement.textContent") == "Skip to content"
        for _ in range(2):
            await page.keyboard.press("Tab")
        assert await page.evaluate("() => document.activeElement.getAttribute('href')") == "/runs"
