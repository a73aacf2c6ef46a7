"""The maintenance board: open and upcoming `[[maintenance]]` windows with the services they cover,
from a real Engine on a FakeClock, over the real HTTP API (GET /api/maintenance) and through a
RemoteEngine, as an attached console reads them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from core.api import ApiServer
from core.events import ActionEvent
from core.maintenance_board import MaintenanceWindowView, from_wire, to_wire, views
from core.remote import RemoteEngine
from core.schedule import ActiveWindow
from engine_harness import BASE, EngineHarness, service

TOKEN = "maintenance-board-token"
# The harness clock starts at 2026-05-28 22:26:40 Europe/Berlin.
WINDOWS = ('[[maintenance]]\nname = "nightly"\ngroups = ["rack"]\nstart = "22:28"\nrepeat = "daily"\n'
           'duration_minutes = 5\ntime_zone = "Europe/Berlin"\n'
           '[[maintenance]]\nname = "pumps"\ntags = ["pump"]\nstart = "09:00"\nrepeat = "weekly"\n'
           'days = ["fri", "mon"]\nduration_minutes = 30\ntime_zone = "Europe/Berlin"\n')
FLEET = BASE + service("plc") + service("pump-1", group="yard", tags='["pump"]') + service("other", group="yard")


def _svc(group: str, tags: tuple[str, ...] = ()) -> SimpleNamespace:
    return SimpleNamespace(cfg=SimpleNamespace(group=group, tags=tags))


def test_views_list_each_occurrence_once_open_first_with_services_resolved() -> None:
    services = {"a": _svc("r1"), "b": _svc("r2", ("pump",)), "c": _svc("r2")}
    now_open = ActiveWindow("w1", (), ("r1",), (), 100.0, 200.0, "daily")
    later = ActiveWindow("w2", ("c",), (), ("pump",), 500.0, 600.0, "weekly mon")
    # MaintenanceSchedule.upcoming repeats the open occurrence: it must not be listed twice.
    out = views([now_open], [later, now_open], services)
    assert [(w.name, w.active, w.services, w.repeat) for w in out] == [
        ("w1", True, ("a",), "daily"), ("w2", False, ("b", "c"), "weekly mon")]
    assert out[1].targets == "c, tag pump" and out[1].duration_s == 100.0


def test_wire_round_trip_and_unreadable_bodies_say_what_is_wrong() -> None:
    w = MaintenanceWindowView("n", "group rack", ("plc",), 1.0, 61.0, "cron 0 2 * * *", False)
    assert from_wire(to_wire([w])) == [w]
    with pytest.raises(ValueError, match="expected"):
        from_wire([])
    with pytest.raises(ValueError, match="window 0"):
        from_wire({"windows": [{"name": "x"}]})


async def test_engine_shows_upcoming_then_open_windows_and_journals_start_and_end(tmp_path: Path) -> None:
    async with EngineHarness(FLEET + WINDOWS, tmp_path) as h:
        await h.advance(1)
        board = await h.engine.scheduled_maintenance()
        nightly = board[0]
        assert (nightly.name, nightly.active, nightly.services, nightly.repeat) == \
            ("nightly", False, ("plc",), "daily")
        assert nightly.start_wall - h.clock.wall() == pytest.approx(79, abs=1)
        assert nightly.duration_s == 300
        pumps = next(w for w in board if w.name == "pumps")
        assert (pumps.services, pumps.repeat, pumps.active) == (("pump-1",), "weekly mon fri", False)
        # Thursday night: the Friday 09:00 window is within the week, not within an hour.
        assert [w.name for w in await h.engine.scheduled_maintenance(3600)] == ["nightly"]
        await h.advance(85)  # 22:28:06
        board = await h.engine.scheduled_maintenance()
        assert [(w.name, w.active) for w in board][:1] == [("nightly", True)]
        assert sum(1 for w in board if w.name == "nightly") == 2  # open now, and tomorrow's
        await h.advance(300)
        assert not any(w.active for w in await h.engine.scheduled_maintenance())
        # Journaled, not only published: the journal file has both.
        journaled = [e.command for e in h.journal.events(limit=500) if isinstance(e, ActionEvent)]
        assert "maintenance_window_start" in journaled and "maintenance_window_end" in journaled


async def test_api_and_remote_engine_serve_the_board(tmp_path: Path) -> None:
    async with EngineHarness(FLEET + WINDOWS, tmp_path) as h:
        await h.advance(86)  # nightly is open
        server = ApiServer(h.engine, h.engine.beat, TOKEN, port=0)
        await server.start()
        remote = RemoteEngine(server.url, TOKEN)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{server.url}/api/maintenance") as resp:
                    assert resp.status == 200
                    body = await resp.json()
                async with session.get(f"{server.url}/api/maintenance?horizon=bogus") as resp:
                    assert resp.status == 400
                    assert "horizon" in (await resp.json())["error"]
                async with session.get(f"{server.url}/api/maintenance?horizon=60") as resp:
                    short = await resp.json()
            assert [w["name"] for w in short["windows"]] == ["nightly"]  # only the open one
            assert body["windows"][0] == {"name": "nightly", "targets": "group rack", "services": ["plc"],
                                          "start_wall": body["windows"][0]["start_wall"],
                                          "end_wall": body["windows"][0]["start_wall"] + 300.0,
                                          "repeat": "daily", "active": True}
            got = await remote.scheduled_maintenance()
            assert got == await h.engine.scheduled_maintenance()
        finally:
            await remote.stop()
            await server.stop()


class _Member:
    """An engine for the composite: a name, snapshots, and its windows (or a failure)."""

    def __init__(self, name: str, services: list[str], board: list[MaintenanceWindowView] | None) -> None:
        from test_remote import _snapshot

        self.name = name
        self._snaps = {sid: _snapshot(id=sid) for sid in services}
        self._board = board

    def snapshots(self) -> dict[str, Any]:
        return self._snaps

    async def scheduled_maintenance(self, horizon_s: float = 0.0) -> list[MaintenanceWindowView]:
        if self._board is None:
            raise ConnectionError(f"{self.name}: HTTP 502 for /api/maintenance")
        return self._board


async def test_the_composite_qualifies_attached_windows_and_leaves_out_an_unreachable_engine() -> None:
    from core.multi import MultiEngine

    local = _Member("here", ["plc"], [MaintenanceWindowView("later", "plc", ("plc",), 500.0, 600.0, "once", False)])
    site = _Member("site-a", ["pump"], [MaintenanceWindowView("now", "pump", ("pump",), 0.0, 900.0, "daily", True)])
    down = _Member("site-b", ["x"], None)
    multi = MultiEngine(local)  # type: ignore[arg-type]
    multi.add(site)  # type: ignore[arg-type]
    multi.add(down)  # type: ignore[arg-type]
    multi.snapshots()  # labels are fixed when the composite first reads an engine's services
    got = await multi.scheduled_maintenance()
    assert [(w.name, w.services, w.active) for w in got] == [
        ("site-a: now", ("site-a/pump",), True), ("later", ("plc",), False)]
    assert multi.maintenance_unavailable == {"site-b": "site-b: HTTP 502 for /api/maintenance"}
