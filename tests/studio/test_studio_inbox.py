"""Run Studio's inbox in a real browser: tasks answered through forms built from their schema, the admin override, events sent and listed."""

from __future__ import annotations

import asyncio
import re

import httpx
from playwright.async_api import Page, expect

from runtime_bootstrap.studio._web import csrf_token
from runtime_core.operations import LaunchRequest, TaskView
from tests.studio.conftest import ASK, WAIT, Studio

#: A task whose form has every kind of field: required string, integer with a minimum, enum, date,
#: optional boolean, a nested object with a required boolean, an array of strings, an array of objects.
RICH = {"id": "s-rich", "version": 1, "name": "Review an order", "steps": [{"id": "review", "type": "human.task", "config": {
    "taskType": "order-review", "title": {"$expr": "'Review order ' & payload.order"}, "description": {"$expr": "'Check the lines of order ' & payload.order & ' before it ships.'"},
    "contextData": {"order": {"$expr": "payload.order"}, "customer": "ACME"},
    "formSchema": {"type": "object", "required": ["reviewer", "boxes", "approval"], "properties": {
        "reviewer": {"type": "string", "title": "Reviewer", "minLength": 2},
        "boxes": {"type": "integer", "minimum": 1, "description": "How many boxes to ship."},
        "priority": {"enum": ["low", "normal", "high"]},
        "shipOn": {"type": "string", "format": "date", "title": "Ship on"},
        "fragile": {"type": "boolean"},
        "approval": {"type": "object", "title": "Approval", "required": ["approved"], "properties": {
            "approved": {"type": "boolean"}, "comments": {"type": "string", "maxLength": 500}}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "lines": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["sku", "qty"], "properties": {
            "sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}}},
    }}}}]}


async def _task(studio: Studio, run_id: str, tenant: str | None = None) -> TaskView:
    """The task a run opened (waits for the worker to open it)."""
    for _ in range(300):
        page = await studio.ops.list_tasks(tenant or studio.tenant, status=None, run_id=run_id)
        if page.items:
            return page.items[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id} opened no task")


async def _launch(studio: Studio, workflow: str, payload: dict[str, object], who: str = "a") -> str:
    run, _ = await studio.ops.launch_run(studio.tenants[who], LaunchRequest(workflowId=workflow, payload=payload))
    return run.runId


async def _phone(studio: Studio, page: Page, name: str) -> None:
    await page.set_viewport_size({"width": 390, "height": 844})
    await studio.shot(page, name)
    await page.set_viewport_size({"width": 1280, "height": 900})


async def test_answer_a_task_invalid_then_valid(studio: Studio) -> None:
    """An unanswered required boolean is refused next to its field (task stays PENDING); answering it completes the task and the run."""
    await studio.publish(ASK)
    run_id = await _launch(studio, "s-ask", {"what": "the invoice"})
    task = await _task(studio, run_id)
    page = await studio.page("operator")
    await page.goto("/tasks")
    row = page.locator(f"tr[data-task-id='{task.taskId}']")
    await expect(row).to_contain_text("Approve the invoice")
    await expect(row).to_contain_text("approve")
    await expect(row.locator(f"a[href='/runs/{run_id}']")).to_be_visible()
    await studio.shot(page, "tasks-inbox")
    await _phone(studio, page, "tasks-inbox-phone")
    await row.locator("a", has_text="Approve the invoice").click()
    await expect(page).to_have_url(re.compile(f"/tasks/{task.taskId}$"))
    await expect(page.locator("h1")).to_have_text("Approve the invoice")
    await expect(page.locator("pre.json")).to_contain_text('"what": "the invoice"')
    await expect(page.locator("#fld-ok legend")).to_contain_text("Ok")
    await studio.shot(page, "task-form")

    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await page.click("#task-form button[type=submit]")
    assert (await answer.value).status == 422
    await expect(page.locator("#fld-ok-error")).to_contain_text("required")
    await expect(page.locator("#fld-ok-yes")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#fld-ok")).to_have_attribute("aria-describedby", "fld-ok-error")
    await expect(page.locator("#form-errors")).to_contain_text("Ok")
    await expect(page.locator("#form-errors")).to_be_focused()
    await studio.shot(page, "task-invalid")
    assert (await studio.ops.get_task(studio.tenant, task.taskId)).status == "PENDING"

    await page.check("#fld-ok-yes")
    await page.click("#task-form button[type=submit]")
    await expect(page).to_have_url(re.compile(f"/runs/{run_id}$"))
    await studio.wait_for([run_id], ("SUCCEEDED",))
    done = await studio.ops.get_task(studio.tenant, task.taskId)
    assert done.status == "COMPLETED" and done.response == {"ok": True} and done.completedBy == "token:operator-a" and not done.adminOverride
    await page.goto(f"/tasks/{task.taskId}")
    await expect(page.locator("#task-status")).to_contain_text("COMPLETED")
    await expect(page.locator("#task-form")).to_have_count(0)
    await studio.shot(page, "task-completed")
    await page.goto("/tasks?status=COMPLETED")
    await expect(page.locator(f"tr[data-task-id='{task.taskId}']")).to_contain_text("COMPLETED")


async def test_a_rich_form_built_from_the_schema(studio: Studio) -> None:
    """Each kind of field renders as its input; array items are added and removed; the stored response is exactly the JSON the form stands for."""
    await studio.publish(RICH)
    run_id = await _launch(studio, "s-rich", {"order": "A-17"})
    task = await _task(studio, run_id)
    page = await studio.page("operator")
    await page.goto(f"/tasks/{task.taskId}")
    await expect(page.locator("h1")).to_have_text("Review order A-17")
    await expect(page.locator(".description")).to_contain_text("before it ships")
    await expect(page.locator("#fld-reviewer")).to_have_attribute("type", "text")
    await expect(page.locator("#fld-reviewer")).to_have_attribute("required", "")
    await expect(page.locator("label[for=fld-reviewer] .req")).to_be_visible()
    await expect(page.locator("#fld-boxes")).to_have_attribute("type", "number")
    await expect(page.locator("#fld-boxes")).to_have_attribute("min", "1")
    await expect(page.locator("#fld-boxes")).to_have_attribute("aria-describedby", "fld-boxes-hint")
    await expect(page.locator("select#fld-priority option")).to_have_text(["— choose —", "low", "normal", "high"])
    await expect(page.locator("#fld-shipOn")).to_have_attribute("type", "date")
    await expect(page.locator("#fld-fragile")).to_have_attribute("type", "checkbox")
    await expect(page.locator("fieldset#fld-approval > legend")).to_contain_text("Approval")
    await expect(page.locator("#fld-approval-approved-yes")).to_have_attribute("type", "radio")
    await expect(page.locator("textarea#fld-approval-comments")).to_be_visible()
    await expect(page.locator("#fld-tags [data-item]")).to_have_count(1)
    await expect(page.locator("#fld-lines [data-item]")).to_have_count(1)
    for element in await page.locator("#task-form input:not([type=hidden]), #task-form select, #task-form textarea").all():
        ident = await element.get_attribute("id")
        assert ident and await page.locator(f"label[for='{ident}']").count() == 1, f"no label for {ident}"
    await studio.shot(page, "rich-form")

    await page.fill("#fld-reviewer", "Grace")
    await page.fill("#fld-boxes", "0")
    await page.select_option("#fld-priority", "high")
    await page.fill("#fld-shipOn", "2030-05-17")
    await page.check("#fld-approval-approved-no")
    await page.fill("#fld-approval-comments", "box 2 is dented")
    await page.fill("#fld-tags-0", "red")
    await page.click("#fld-tags > [data-add]")
    await expect(page.locator("#fld-tags-1")).to_be_focused()
    await page.keyboard.type("blue")
    await page.click("#fld-tags > [data-add]")
    await page.fill("#fld-tags-2", "green")
    await page.locator("#fld-tags [data-item]").nth(1).locator("[data-remove]").click()
    await expect(page.locator("#fld-tags [data-item]")).to_have_count(2)
    await page.fill("#fld-lines-0-sku", "SKU-1")
    await page.fill("#fld-lines-0-qty", "2")
    await page.click("#fld-lines > [data-add]")
    await expect(page.locator("#fld-lines [data-item]")).to_have_count(2)
    await expect(page.locator("#fld-lines-1 legend")).to_contain_text("Item 2")
    await page.fill("#fld-lines-1-sku", "SKU-2")
    await page.fill("#fld-lines-1-qty", "5")
    await studio.shot(page, "rich-filled")

    await page.click("#task-form button[type=submit]")
    await expect(page.locator("#fld-boxes-error")).to_contain_text("minimum of 1")
    await expect(page.locator("#fld-boxes")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#fld-boxes")).to_have_value("0")
    await expect(page.locator("#fld-tags-1")).to_have_value("green")
    await expect(page.locator("#fld-lines-1-qty")).to_have_value("5")
    await expect(page.locator("#fld-approval-approved-no")).to_be_checked()
    await expect(page.locator("#fld-priority")).to_have_value("high")
    await studio.shot(page, "rich-invalid")
    await _phone(studio, page, "rich-invalid-phone")
    assert (await studio.ops.get_task(studio.tenant, task.taskId)).status == "PENDING"

    await page.fill("#fld-boxes", "3")
    await page.click("#task-form button[type=submit]")
    await expect(page).to_have_url(re.compile(f"/runs/{run_id}$"))
    await studio.wait_for([run_id], ("SUCCEEDED",))
    done = await studio.ops.get_task(studio.tenant, task.taskId)
    assert done.status == "COMPLETED"
    # an unticked optional checkbox answers false; empty optional fields are left out
    assert done.response == {"reviewer": "Grace", "boxes": 3, "priority": "high", "shipOn": "2030-05-17", "fragile": False,
                             "approval": {"approved": False, "comments": "box 2 is dented"}, "tags": ["red", "green"],
                             "lines": [{"sku": "SKU-1", "qty": 2}, {"sku": "SKU-2", "qty": 5}]}


async def test_admin_override_and_roles(studio: Studio) -> None:
    """Only an admin sees the override; a viewer sees no form; the server refuses a viewer's answer and an operator's override (403)."""
    await studio.publish(ASK)
    run_id = await _launch(studio, "s-ask", {"what": "a refund"})
    task = await _task(studio, run_id)
    viewer = await studio.page("viewer")
    await viewer.goto(f"/tasks/{task.taskId}")
    await expect(viewer.locator("#read-only")).to_contain_text("viewer")
    await expect(viewer.locator("#task-form")).to_have_count(0)
    await expect(viewer.locator("#override")).to_have_count(0)
    await studio.shot(viewer, "task-viewer")
    operator = await studio.page("operator")
    await operator.goto(f"/tasks/{task.taskId}")
    await expect(operator.locator("#task-form")).to_be_visible()
    await expect(operator.locator("#override")).to_have_count(0)
    for role, path in (("viewer", f"/tasks/{task.taskId}"), ("operator", f"/tasks/{task.taskId}/override")):
        token = studio.tokens[("a", role)]
        async with httpx.AsyncClient(base_url=studio.url, cookies={"wfr_session": token}) as http:
            response = await http.post(path, data={"csrf": csrf_token(token), "f.ok": "true", "response": '{"ok": true}', "reason": "because"})
        assert response.status_code == 403, (role, response.status_code)
    assert (await studio.ops.get_task(studio.tenant, task.taskId)).status == "PENDING"

    admin = await studio.page("admin")
    await admin.goto(f"/tasks/{task.taskId}")
    await admin.click("#override summary")
    await admin.fill("#o-response", '{"ok": "maybe"}')
    admin.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await admin.click("#override button[type=submit]")
    await expect(admin.locator("#o-reason-error")).to_contain_text("at least 1 character")
    await expect(admin.locator("#o-response")).to_have_value('{"ok": "maybe"}')
    await studio.shot(admin, "task-override-invalid")
    await admin.fill("#o-reason", "approved on the phone")
    await admin.click("#override button[type=submit]")
    await expect(admin).to_have_url(re.compile(f"/runs/{run_id}$"))
    await studio.wait_for([run_id], ("SUCCEEDED",))
    done = await studio.ops.get_task(studio.tenant, task.taskId)
    assert done.status == "COMPLETED" and done.adminOverride and done.response == {"ok": "maybe"} and done.completedBy == "token:admin-a"


async def test_send_an_event_that_resumes_a_waiting_run(studio: Studio) -> None:
    """An event sent from /events resumes the run waiting on its name and key; the list shows the delivery to that run."""
    await studio.publish(WAIT)
    run_id = await _launch(studio, "s-wait", {"key": "k-42"})
    await studio.wait_for([run_id], ("WAITING",))
    page = await studio.page("operator")
    await page.goto("/events")
    await studio.shot(page, "events-empty")
    await page.fill("#e-eventName", "go")
    await page.fill("#e-correlationKey", "k-42")
    await page.fill("#e-payload", '{"amount": 10')
    await expect(page.locator("[data-json-error]")).to_contain_text("Not JSON")
    await expect(page.locator("#send-form button[type=submit]")).to_be_disabled()
    await page.fill("#e-payload", '{"amount": 10}')
    await page.click("#send-form button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/events\?sent="))
    await expect(page.locator("#sent h2")).to_contain_text("Event accepted")
    await studio.wait_for([run_id], ("SUCCEEDED",))
    assert (await studio.ops.get_run(studio.tenant, run_id)).status == "SUCCEEDED"
    delivery = page.locator("#sent-deliveries [data-delivery=DELIVERED]")
    await expect(delivery).to_contain_text("DELIVERED", timeout=20_000)  # the page re-reads itself until delivered
    await expect(delivery.locator(f"a[href='/runs/{run_id}']")).to_be_visible()
    await page.reload()  # only the sent event's box re-reads itself; the list below is as of the page load
    row = page.locator("table.events tbody tr").first
    await expect(row).to_contain_text("go")
    await expect(row).to_contain_text("k-42")
    await expect(row).to_contain_text("from studio")
    await expect(row.locator(f"a[href='/runs/{run_id}']")).to_be_visible()
    await studio.shot(page, "events-sent")
    await _phone(studio, page, "events-phone")

    await page.goto("/events?eventName=nope")
    await expect(page.locator("table.events tbody")).to_contain_text("No events match")
    await page.goto("/events?eventName=go&correlationKey=k-42")
    await expect(page.locator("table.events tbody tr")).to_have_count(1)
    token = studio.tokens[("a", "viewer")]
    async with httpx.AsyncClient(base_url=studio.url, cookies={"wfr_session": token}) as http:
        response = await http.post("/events", data={"csrf": csrf_token(token), "eventName": "go", "correlationKey": "k-42", "payload": "{}"})
    assert response.status_code == 403
    viewer = await studio.page("viewer")
    await viewer.goto("/events")
    await expect(viewer.locator("#send-form")).to_have_count(0)
    await expect(viewer.locator("table.events tbody tr")).to_have_count(1)


async def test_another_tenants_task_is_not_found(studio: Studio) -> None:
    """A task id that does not exist or is another tenant's is a 404 page, and cannot be answered."""
    await studio.publish(ASK, who="b")
    run_id = await _launch(studio, "s-ask", {"what": "theirs"}, who="b")
    theirs = await _task(studio, run_id, tenant=studio.tenants["b"])
    page = await studio.page("admin")
    for task_id in (theirs.taskId, "no-such-task"):
        response = await page.goto(f"/tasks/{task_id}")
        assert response is not None and response.status == 404
        await expect(page.locator("h1")).to_contain_text("Not found")
        await expect(page.locator("body")).not_to_contain_text("theirs")
    await studio.shot(page, "task-not-found")
    token = studio.tokens[("a", "admin")]
    async with httpx.AsyncClient(base_url=studio.url, cookies={"wfr_session": token}) as http:
        response = await http.post(f"/tasks/{theirs.taskId}", data={"csrf": csrf_token(token), "f.ok": "true"})
    assert response.status_code == 404
    assert (await studio.ops.get_task(studio.tenants["b"], theirs.taskId)).status == "PENDING"
    await page.goto("/tasks")
    await expect(page.locator("table.tasks tbody")).to_contain_text("Nothing waiting")
