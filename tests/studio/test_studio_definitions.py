"""Run Studio's definitions pages in a real browser: the list, a workflow's versions, the validate/publish editor."""

from __future__ import annotations

import json
import re

import httpx
from playwright.async_api import expect

from runtime_bootstrap.studio._web import csrf_token
from tests.studio.conftest import ECHO, Studio

#: Three errors at once: an unknown action, a step id used twice, an expression that does not parse.
BAD = {"id": "s-bad", "version": 1, "name": "Bad", "steps": [
    {"id": "a", "type": "action.call", "config": {"actionId": "no.such-action", "version": 1, "inputMapping": {}}},
    {"id": "a", "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"n": {"$expr": "payload.n +"}}}}]}
GOOD = {"id": "s-new", "version": 1, "name": "New one", "description": "Echoes n back.", "steps": [
    {"id": "say", "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"n": {"$expr": "payload.n"}}, "saveAs": "vars.said"}}]}


async def test_publishing_an_invalid_definition_lists_every_problem(studio: Studio) -> None:
    """Every problem is a row with its step path and code; the text stays in the editor; nothing is published; bad JSON names line and column."""
    page = await studio.page("author")
    await page.goto("/definitions")
    await expect(page.locator("table.definitions tbody")).to_contain_text("No workflow is published")
    await page.click("#new-definition")
    text = json.dumps(BAD, indent=2)
    await page.fill("#d-text", text)
    await page.click("#publish")
    await expect(page).to_have_url(re.compile(r"/definitions/publish$"))
    result = page.locator("#result")
    await expect(result).to_contain_text("not published")
    rows = result.locator("tbody tr")
    codes = await result.locator("tbody tr td:nth-child(3)").all_inner_texts()
    assert "DUPLICATE_STEP_ID" in codes and "EXPRESSION_PARSE" in codes, codes
    assert any("ACTION" in c for c in codes), codes
    assert await rows.count() >= 3
    for row in await rows.all():  # each problem names where it is: the workflow and the step path
        where = await row.locator("td.where").inner_text()
        assert "s-bad" in where and re.search(r"steps\[\d\]", where), where
    await expect(result).to_contain_text("no.such-action")
    await expect(page.locator("#d-text")).to_have_value(text)
    assert await studio.ops.list_definitions(studio.tenant) == []
    await studio.shot(page, "publish-invalid")

    # validate says the same, and stores nothing either
    await page.click("#validate")
    await expect(page).to_have_url(re.compile(r"/definitions/validate$"))
    await expect(page.locator("#result")).to_contain_text("problem(s) found. Nothing was stored.")
    assert await page.locator("#result tbody tr").count() == await rows.count()
    assert await studio.ops.list_definitions(studio.tenant) == []

    # text that is not JSON: the editor says so as you type, the server names line and column
    await page.fill("#d-text", '{\n  "id": "s-x",\n  "version": \n}')
    await expect(page.locator("#d-json")).to_contain_text("Not JSON at line 4, column 1")
    await page.click("#validate")
    await expect(page.locator("#result")).to_contain_text("The text is not JSON at line 4, column 1: Expecting value")
    await expect(page.locator("#d-text")).to_have_value('{\n  "id": "s-x",\n  "version": \n}')
    await studio.shot(page, "invalid-json")


async def test_validate_publish_and_select_a_version(studio: Studio) -> None:
    """Validate stores nothing; publish lists the new version with a link; version 2 via the editor; the page selects version 1."""
    page = await studio.page("author")
    await page.goto("/definitions#editor")
    await page.fill("#d-text", json.dumps(GOOD, indent=2))
    await page.click("#validate")
    await expect(page.locator("#result")).to_contain_text("Every definition is valid")
    await expect(page.locator("#result")).to_contain_text("Nothing was stored")
    assert await studio.ops.list_definitions(studio.tenant) == []
    await studio.shot(page, "validated")

    await page.click("#publish")
    await expect(page.locator("#result")).to_contain_text("Published 1 version(s)")
    (summary,) = await studio.ops.list_definitions(studio.tenant)
    assert (summary.workflowId, summary.latestVersion) == ("s-new", 1)
    await expect(page.locator("table.definitions tbody tr[data-workflow-id=s-new]")).to_contain_text("New one")
    await studio.shot(page, "published")
    await page.click("#result a[href='/definitions/s-new?version=1']")

    await expect(page).to_have_url(re.compile(r"/definitions/s-new\?version=1$"))
    await expect(page.locator("h1")).to_contain_text("New one")
    await expect(page.locator("table.versions tbody tr")).to_have_count(1)
    await expect(page.locator("table.versions tr.selected")).to_contain_text("v1")
    (version,) = await studio.ops.list_versions(studio.tenant, "s-new")
    await expect(page.locator("dl.facts")).to_contain_text(version.hash)
    await expect(page.locator("pre.definition")).to_contain_text('"id": "s-new"')
    await expect(page.locator("#runs-link")).to_have_attribute("href", "/runs?workflowId=s-new")
    await expect(page.locator("#launch-link")).to_have_attribute("href", "/runs?workflowId=s-new#launch")

    # version 2, starting from version 1 in the editor
    await page.click("#edit-link")
    await expect(page).to_have_url(re.compile(r"/definitions\?from=s-new&version=1#editor$"))
    await expect(page.locator("#d-text")).to_have_value(re.compile(r'"id": "s-new"'))
    await page.fill("#d-text", json.dumps({**GOOD, "version": 2, "name": "New one, again"}, indent=2))
    await page.click("#publish")
    await expect(page.locator("#result")).to_contain_text("s-new version 2")
    await expect(page.locator("table.definitions tr[data-workflow-id=s-new]")).to_contain_text("v2")
    await studio.publish()  # the five test workflows beside it
    await page.goto("/definitions")
    await expect(page.locator("table.definitions tbody tr")).to_have_count(6)
    await studio.shot(page, "definitions")

    await page.click("a[href='/definitions/s-new']")
    await expect(page.locator("table.versions tbody tr")).to_have_count(2)
    await expect(page.locator("table.versions tr.selected")).to_contain_text("v2")
    await expect(page.locator("pre.definition")).to_contain_text('"version": 2')
    await page.click("table.versions a:text-is('v1')")
    await expect(page).to_have_url(re.compile(r"/definitions/s-new\?version=1$"))
    await expect(page.locator("table.versions tr.selected")).to_contain_text("v1")
    await expect(page.locator("pre.definition")).to_contain_text('"version": 1')
    await expect(page.locator("pre.definition")).not_to_contain_text("again")
    await expect(page.locator("dl.facts")).to_contain_text("latest is v2")
    await studio.shot(page, "definition-v1")
    await page.set_viewport_size({"width": 390, "height": 844})
    await studio.shot(page, "definition-phone")
    await page.goto("/definitions")
    await studio.shot(page, "definitions-phone")


async def test_a_viewer_sees_no_editor_and_the_server_refuses_its_posts(studio: Studio) -> None:
    """A viewer reads definitions without editor buttons; a POST by a viewer or an operator (with a good CSRF token) is 403."""
    await studio.publish(ECHO)
    page = await studio.page("viewer")
    await page.goto("/definitions")
    await expect(page.locator("table.definitions tbody tr[data-workflow-id=s-echo]")).to_contain_text("Echo")
    await expect(page.locator("#editor")).to_have_count(0)
    await expect(page.locator("#new-definition")).to_have_count(0)
    await expect(page.locator("button:text-is('Publish'), button:text-is('Validate')")).to_have_count(0)
    await studio.shot(page, "viewer-list")
    await page.click("a[href='/definitions/s-echo']")
    await expect(page.locator("pre.definition")).to_contain_text('"id": "s-echo"')
    await expect(page.locator("#runs-link")).to_be_visible()
    await expect(page.locator("#edit-link")).to_have_count(0)
    await expect(page.locator("#launch-link")).to_have_count(0)
    await studio.shot(page, "viewer-definition")

    document = json.dumps({**ECHO, "version": 2})
    for role in ("viewer", "operator"):
        token = studio.tokens[("a", role)]
        async with httpx.AsyncClient(base_url=studio.url, cookies={"wfr_session": token}) as http:
            for action in ("validate", "publish"):
                response = await http.post(f"/definitions/{action}", data={"definitions": document, "csrf": csrf_token(token)})
                assert response.status_code == 403, (role, action, response.status_code)
                assert "author role" in response.text
    # an author without the CSRF token is refused too
    token = studio.tokens[("a", "author")]
    async with httpx.AsyncClient(base_url=studio.url, cookies={"wfr_session": token}) as http:
        response = await http.post("/definitions/publish", data={"definitions": document})
        assert response.status_code == 403 and "CSRF" in response.text
    (summary,) = await studio.ops.list_definitions(studio.tenant)
    assert summary.latestVersion == 1


async def test_another_tenants_workflow_is_not_found(studio: Studio) -> None:
    """Another tenant's workflow, an unknown one and an unknown version answer 404, without naming the other tenant."""
    await studio.publish(ECHO, who="b")
    await studio.publish({**ECHO, "id": "s-mine"})
    page = await studio.page("admin")
    for url in ("/definitions/s-echo", "/definitions/s-echo?version=1", "/definitions/no-such", "/definitions/s-mine?version=7",
                "/definitions/s-mine?version=x", "/definitions/s-mine?version=%C2%B2", "/definitions/s-mine?version=0", "/definitions?from=s-echo"):
        response = await page.goto(url)
        assert response is not None and response.status == 404, url
        await expect(page.locator("h1")).to_contain_text("Not found")
        await expect(page.locator("body")).not_to_contain_text(studio.tenants["b"])
    await studio.shot(page, "not-found")
    await page.goto("/definitions")
    await expect(page.locator("table.definitions tbody tr")).to_have_count(1)
    await expect(page.locator("table.definitions tbody")).not_to_contain_text("s-echo")
