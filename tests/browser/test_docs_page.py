"""The API page as a person sees it: /docs (Swagger UI) in headless Chromium, on the real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Page, expect
from sqlalchemy import select

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
CREATED = {"session_id": "from-the-browser", "session_name": "Browser", "session_state": {"seen": True}}


def contract_operations() -> set[tuple[str, str, str]]:
    """(METHOD, path, operationId) of every operation in openapi.yaml."""
    document = yaml.safe_load((REPO / "openapi.yaml").read_text())
    return {
        (method.upper(), path, operation["operationId"])
        for path, path_item in document["paths"].items()
        for method, operation in path_item.items()
        if method in HTTP_METHODS
    }


def listed_operations(page: Page) -> set[tuple[str, str, str]]:
    """(METHOD, path, operationId) of every operation Swagger UI lists."""
    return {
        (
            block.locator(".opblock-summary-method").inner_text(),
            block.locator(".opblock-summary-path").get_attribute("data-path"),
            # Swagger UI gives each operation's block the id operations-<tag>-<operationId>.
            block.get_attribute("id").rsplit("-", 1)[1],
        )
        for block in page.locator(".opblock").all()
    }


def test_docs_page_lists_every_operation_and_try_it_out_creates_a_session(served, page, console_errors, artifacts):
    url, direct = served
    page.goto(f"{url}/docs/")
    expect(page.locator(".opblock").first).to_be_visible()

    assert listed_operations(page) == contract_operations()

    create = page.locator(".opblock[id$='-create_session']")
    create.locator(".opblock-summary-control").click()
    create.get_by_role("button", name="Try it out").click()
    create.locator("textarea.body-param__text").fill(json.dumps(CREATED))
    create.get_by_role("button", name="Execute").click()

    response = create.locator(".live-responses-table tr.response")
    expect(response.locator(".response-col_status")).to_have_text("201")
    shown = json.loads(response.locator(".response-col_description .highlight-code pre").inner_text())
    assert {key: shown[key] for key in CREATED} == CREATED

    shot = artifacts / "docs-try-it-out-create-session.png"
    page.screenshot(path=shot, full_page=True)
    print(f"\nscreenshot of /docs after Try it out: {shot}")

    with direct.unit_of_work() as db:
        sessions = direct.models.sessions
        stored = db.execute(select(sessions).where(sessions.c.session_id == CREATED["session_id"])).one_or_none()
        assert stored is not None, "the session created in the browser is not in the database"
        assert (stored.session_type, stored.session_data) == (
            "agent",
            {"session_name": "Browser", "session_state": {"seen": True}},
        )
    assert console_errors == []
