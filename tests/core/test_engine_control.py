"""Issue 13 in the engine: dependencies, scheduled maintenance and notifications, on a FakeClock with
scripted devices (tests/core/engine_harness.py) and, for notifications, a real json:// receiver."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable

import pytest
from aiohttp import web

from core.events import ActionEvent, AlertEvent, NotifyEvent, ServiceStatus
from engine_harness import BASE, EngineHarness, service

PLCS = [f"plc-{i}" for i in range(1, 11)]


def line() -> str:
    text = BASE + service("switch-3", group="line-1")
    for plc in PLCS:
        text += service(plc, group="line-1", depends_on='["switch-3"]')
    return text


def firing(h: EngineHarness) -> list[str]:
    return [e.alert_id for e in h.of(AlertEvent) if e.state == "firing"]


async def test_a_switch_down_gives_one_alert_no_child_restarts_and_blocked_rows(tmp_path: Path) -> None:
    async with EngineHarness(line(), tmp_path) as h:
        await h.advance(3)
        for sid in ["switch-3", *PLCS]:
            h.dev(sid).healthy = False
            h.dev(sid).heal_on_restart = False
        await h.advance(20)
        shown = h.engine.alerts()
        assert {a.service for a in shown} == {"switch-3"}  # nothing else fired, not even for a moment
        unhealthy = next(a for a in shown if a.rule == "unhealthy")
        assert unhealthy.message.endswith("10 devices behind it blocked")
        assert not any(a.rule == "group_down" for a in shown)
        restarted = {key for _, key in h.fleet.restarts}
        assert restarted == {"http://switch-3.test"}  # no PLC was power-cycled
        snaps = h.engine.snapshots()
        assert all(snaps[p].blocked_by == "switch-3" for p in PLCS)
        assert snaps["plc-1"].depends_on == ("switch-3",)
        # The switch comes back and its PLCs with it: nothing fires for them, nothing is blocked.
        for sid in ["switch-3", *PLCS]:
            h.dev(sid).healthy = True
        await h.advance(30)
        assert not any(a.startswith("unhealthy:plc") for a in firing(h))
        assert all(h.engine.snapshots()[p].blocked_by == "" for p in PLCS)




async def test_devices_checked_more_often_than_their_switch_are_not_restarted_first(tmp_path: Path) -> None:
    # The switch is checked every 5 s, its PLCs every second: they fail (and their 1 s restart
    # backoff runs out) before the switch's next check shows it down.
    slow = "[services.fault_detection]\ncheck_interval_seconds = 5\n"
    text = BASE + service("switch-3", group="line-1") + slow
    for plc in PLCS:
        text += service(plc, group="line-1", depends_on='["switch-3"]')
    async with EngineHarness(text, tmp_path) as h:
        await h.advance(6)
        for sid in ["switch-3", *PLCS]:
            h.dev(sid).healthy = False
            h.dev(sid).heal_on_restart = False
        await h.advance(12)
        assert all(h.engine.snapshots()[p].blocked_by == "switch-3" for p in PLCS)
        assert {key for _, key in h.fleet.restarts} == {"http://switch-3.test"}


async def test_devices_back_with_their_switch_are_not_restarted(tmp_path: Path) -> None:
    async with EngineHarness(line(), tmp_path) as h:
        await h.advance(3)
        for sid in ["switch-3", *PLCS]:
            h.dev(sid).healthy = False
            h.dev(sid).heal_on_restart = False
        await h.advance(20)
        back = h.clock.monotonic()
        for sid in ["switch-3", *PLCS]:
            h.dev(sid).healthy = True
        await h.advance(30)
        assert [key for t, key in h.fleet.restarts if t > back and key != "http://switch-3.test"] == []
        assert not any(e.state == "firing" and e.service.startswith("plc") for e in h.of(AlertEvent))


async def test_a_child_still_down_after_its_parent_returns_is_judged_afresh(tmp_path: Path) -> None:
    async with EngineHarness(line(), tmp_path) as h:
        await h.advance(3)
        for sid in ["switch-3", *PLCS]:
            h.dev(sid).healthy = False
            h.dev(sid).heal_on_restart = sid not in ("plc-7", "switch-3")  # the switch stays down
        await h.advance(10)
        assert {key for _, key in h.fleet.restarts} == {"http://switch-3.test"}
        back = h.clock.monotonic()
        h.dev("switch-3").healthy = True
        for plc in PLCS:
            h.dev(plc).healthy = plc != "plc-7"
        await h.advance(40)
        assert {key for t, key in h.fleet.restarts if t > back and key != "http://switch-3.test"} == \
            {"http://plc-7.test"}  # its own failure, judged after the switch came back
        assert "unhealthy:plc-7" in firing(h)
        assert h.engine.snapshots()["plc-7"].blocked_by == ""


async def test_a_scheduled_window_holds_recovery_and_is_journaled(tmp_path: Path) -> None:
    # The harness clock starts at 2026-05-28 22:26:40 Europe/Berlin; the window opens at 22:28 for 5 min.
    window = ('[[maintenance]]\nname = "nightly"\ngroups = ["rack"]\nstart = "22:28"\nrepeat = "daily"\n'
              'duration_minutes = 5\ntime_zone = "Europe/Berlin"\n')
    async with EngineHarness(BASE + service("plc") + window, tmp_path) as h:
        await h.advance(60)
        assert not h.engine.snapshots()["plc"].maintenance
        await h.advance(25)  # 22:28:05
        started = [e for e in h.of(ActionEvent) if e.command == "maintenance_window_start"]
        assert [(e.origin, e.detail.split(":")[0]) for e in started] == [("schedule", "nightly")]
        assert h.engine.snapshots()["plc"].maintenance
        h.dev("plc").healthy = False
        h.dev("plc").heal_on_restart = True
        await h.advance(60)
        assert h.fleet.restarts == [] and h.engine.alerts() == []
        await h.advance(5 * 60)  # the window has ended: recovery goes ahead
        ended = [e for e in h.of(ActionEvent) if e.command == "maintenance_window_end"]
        assert [e.origin for e in ended] == ["schedule"]
        await h.advance(30)
        assert h.fleet.restarts


async def test_an_alert_is_notified_through_apprise_with_recovery_and_journaled(tmp_path: Path) -> None:
    posts: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        posts.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/oncall", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    notify = f'[[notify]]\nname = "oncall"\nurl = "json://127.0.0.1:{port}/oncall"\nmin_severity = "critical"\n'
    try:
        async with EngineHarness(BASE + service("plc") + notify, tmp_path) as h:
            await h.advance(3)
            h.dev("plc").healthy = False
            h.dev("plc").heal_on_restart = False
            await h.advance(8)
            await until(lambda: any(p["title"].endswith("— unhealthy") for p in posts))
            post = next(p for p in posts if p["title"].endswith("— unhealthy"))
            assert post["title"] == "[CRITICAL] FIRING: plc — unhealthy"
            assert "Recovery: restart" in post["message"]
            await until(lambda: any(e.outcome == "sent" for e in h.of(NotifyEvent)))
            sent = [e for e in h.of(NotifyEvent) if e.outcome == "sent"]
            assert sent[0].channel == "oncall" and sent[0].service == "plc"
    finally:
        await runner.cleanup()


async def until(cond: Callable[[], bool], limit_s: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not cond():
        assert loop.time() < deadline, "gave up waiting"
        await asyncio.sleep(0.01)

