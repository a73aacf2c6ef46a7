"""http checks with the keys of issue 10 (method, expect_status, body_contains, json path/equals), read
from TOML and run through the registry against an aiohttp server on loopback."""

from __future__ import annotations

from typing import AsyncIterator

import pytest
from aiohttp import web

from core.checks.base import CheckContext, CheckResult, execute
from core.checks.registry import check_types
from core.config import parse_config
from core.events import FailureType, ServiceStatus
from core.probe import make_session

STATE = {"status": {"state": "running", "temp": 41.5}, "items": [{"ok": True}]}


@pytest.fixture
async def web_device() -> AsyncIterator[tuple[str, list[str]]]:
    """A device with several health pages; yields (base URL, methods seen)."""
    seen: list[str] = []

    async def state(request: web.Request) -> web.Response:
        seen.append(request.method)
        return web.json_response(STATE)

    async def stopped(request: web.Request) -> web.Response:
        return web.json_response({"status": {"state": "stopped"}})

    async def text(request: web.Request) -> web.Response:
        return web.Response(text="pump 3: all ok")

    async def nothing(request: web.Request) -> web.Response:
        seen.append(request.method)
        return web.Response(status=204)

    async def teapot(request: web.Request) -> web.Response:
        return web.Response(status=418, text="short and stout")

    async def binary(request: web.Request) -> web.Response:
        return web.Response(body=b"\xff\xfe\x00garbage", content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/state", state)
    app.router.add_get("/stopped", stopped)
    app.router.add_get("/text", text)
    app.router.add_route("*", "/nothing", nothing)
    app.router.add_get("/teapot", teapot)
    app.router.add_get("/binary", binary)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def _check(base: str, path: str, check: str) -> CheckResult:
    config = parse_config(f'[[services]]\nid = "panel"\nendpoint = "{base}"\nhealth_path = "{path}"\n'
                          f"check = {check}\n", label="t.toml")
    svc = config.services[0]
    session = make_session()
    try:
        ctx = CheckContext(session)
        made = check_types()[svc.check_type].make(svc.check, ctx, svc)
        return await execute(made, svc.endpoint, check_type=svc.check_type, timeout_s=3.0, slow_ms=2000.0)
    finally:
        await session.close()


async def test_issue_example_status_list_and_body(web_device) -> None:
    base, seen = web_device
    check = '{ type = "http", method = "GET", expect_status = [200, 204], body_contains = "ok" }'
    assert (await _check(base, "/text", check)).status is ServiceStatus.HEALTHY
    # 204 is in the list but has no body, so it cannot contain "ok"
    empty = await _check(base, "/nothing", check)
    assert empty.status is ServiceStatus.UNHEALTHY and empty.error == "body does not contain 'ok'"
    teapot = await _check(base, "/teapot", check)
    assert teapot.status is ServiceStatus.UNHEALTHY and teapot.error == "HTTP 418" and teapot.http_status == 418


async def test_expect_status_accepts_a_non_2xx_code(web_device) -> None:
    base, _ = web_device
    result = await _check(base, "/teapot", '{ type = "http", expect_status = [418] }')
    assert result.status is ServiceStatus.HEALTHY and result.http_status == 418
    refused = await _check(base, "/state", '{ type = "http", expect_status = [204] }')
    assert refused.status is ServiceStatus.UNHEALTHY and refused.error == "HTTP 200"


async def test_method_is_sent(web_device) -> None:
    base, seen = web_device
    for method in ("HEAD", "POST", "GET"):
        result = await _check(base, "/nothing", f'{{ type = "http", method = "{method}" }}')
        assert result.status is ServiceStatus.HEALTHY, result
    assert seen == ["HEAD", "POST", "GET"]


async def test_issue_example_json_path_equals(web_device) -> None:
    base, _ = web_device
    check = '{ type = "http", json = { path = "status.state", equals = "running" } }'
    ok = await _check(base, "/state", check)
    assert ok.status is ServiceStatus.HEALTHY and ok.value == "running" and ok.check == "http"
    stopped = await _check(base, "/stopped", check)
    assert stopped.status is ServiceStatus.UNHEALTHY and stopped.value == "stopped"
    assert stopped.error == "status.state is 'stopped', expected 'running'"


async def test_json_path_reads_numbers_and_list_items(web_device) -> None:
    base, _ = web_device
    temp = await _check(base, "/state", '{ type = "http", json = { path = "status.temp" } }')
    assert temp.status is ServiceStatus.HEALTHY and temp.value == 41.5
    item = await _check(base, "/state", '{ type = "http", json = { path = "items.0.ok", equals = true } }')
    assert item.status is ServiceStatus.HEALTHY and item.value is True
    missing = await _check(base, "/state", '{ type = "http", json = { path = "status.pressure" } }')
    assert missing.status is ServiceStatus.UNHEALTHY and missing.error == "no 'status.pressure' in the body"
    assert missing.failure_type is FailureType.DATA_CORRUPTION


async def test_hostile_bodies_are_verdicts(web_device) -> None:
    base, _ = web_device
    binary = await _check(base, "/binary", '{ type = "http", json = { path = "a" } }')
    assert binary.status is ServiceStatus.UNHEALTHY and binary.error == "health body is not text"
    text = await _check(base, "/text", '{ type = "http", json = { path = "a" } }')
    assert text.status is ServiceStatus.UNHEALTHY and text.error == "health body is not valid JSON"
