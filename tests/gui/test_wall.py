"""gui/wall.WallView: tiles, grouping, colour only for abnormal tiles, readable type, paging, summary."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import pytest
from PySide6.QtGui import QColor

from core.events import BreakerState, HeartbeatStatus, RecoveryState, RecoveryStrategyName, ServiceStatus
from core.snapshot import BreakerView, RecoveryView, ServiceSnapshot
from gui import palette
from gui.wall import WallView, format_age


def make_snap(id: str, *, name: str | None = None, group: str = "rack-a",
              status: ServiceStatus = ServiceStatus.HEALTHY, failed: bool = False,
              breaker: BreakerState = BreakerState.CLOSED, maintenance: bool = False,
              paused: bool = False, recovering: bool = False, heartbeat: str = "",
              reopen_in_s: float | None = None) -> ServiceSnapshot:
    """A ServiceSnapshot with quiet defaults; only what a test cares about is named."""
    rec = RecoveryView(f"r-{id}", RecoveryStrategyName("restart"), RecoveryState("in_progress"), 2, 5, None, "") if recovering else None
    return ServiceSnapshot(
        id=id, name=name or id, group=group, endpoint="http://x", active_endpoint="http://x",
        active_endpoint_index=0, status=status, failed=failed, consecutive_failures=0,
        last_latency_ms=12.0, p50_ms=10.0, p95_ms=20.0, last_check_wall=None, last_ok_wall=None,
        last_error=None, stale=False, breaker=BreakerView(breaker, 0, 0, 1, 0, 1, 5, reopen_in_s),
        recovery=rec, paused=paused, maintenance=maintenance, maintenance_until_wall=None,
        heartbeat=heartbeat, storm_tripped=False, slow_threshold_ms=250.0, timeout_ms=1000.0,
        check_interval_s=1.0, restart_action="", checks_total=0, restarts_total=0)


def fleet(n: int, racks: int = 3, **overrides: dict) -> dict[str, ServiceSnapshot]:
    """`n` devices spread over `racks` racks; `overrides` maps an id ("d7") to make_snap kwargs."""
    out = {}
    for i in range(n):
        sid = f"d{i}"
        out[sid] = make_snap(sid, name=f"dev-{i:03d}", group=f"rack-{i * racks // n}",
                             **overrides.get(sid, {}))
    return out


@pytest.fixture
def wall(qtbot):
    w = WallView(page_interval_s=0)
    qtbot.addWidget(w)
    w.resize(1920, 1080)
    return w


def _same(a: QColor, b: str, tol: int = 6) -> bool:
    c = QColor(b)
    return all(abs(x - y) <= tol for x, y in ((a.red(), c.red()), (a.green(), c.green()),
                                             (a.blue(), c.blue())))


def _role_colours(theme: palette.Theme) -> list[str]:
    return [theme.critical, theme.warning, theme.suppressed, theme.info]


def test_object_name(wall):
    assert wall.objectName() == "wall_view"


def test_a_tile_for_every_service(wall):
    snaps = fleet(40)
    wall.update_snapshots(snaps)
    assert wall.layout_info().pages == 1
    assert all(wall.tile_rect(sid) is not None for sid in snaps)
    rects = [wall.tile_rect(sid) for sid in snaps]
    assert all(wall.rect().contains(r) for r in rects)
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])


def test_grouped_by_rack_in_stable_natural_order(wall):
    snaps = {s.id: s for s in [
        make_snap("a", name="pump-10", group="rack-10"), make_snap("b", name="pump-2", group="rack-2"),
        make_snap("c", name="pump-1", group="rack-2"), make_snap("d", name="valve", group="rack-10"),
    ]}
    wall.update_snapshots(snaps)
    assert wall.groups_in_order() == ["rack-2", "rack-10"]
    # rack-2 above rack-10; within a rack, name order (pump-1 before pump-2)
    assert wall.tile_rect("c").top() < wall.tile_rect("a").top()
    assert (wall.tile_rect("c").top(), wall.tile_rect("c").left()) < \
        (wall.tile_rect("b").top(), wall.tile_rect("b").left())
    # a state change does not move tiles
    before = wall.tile_rect("a")
    wall.update_snapshots({**snaps, "a": make_snap("a", name="pump-10", group="rack-10",
                                                   status=ServiceStatus.UNHEALTHY, failed=True)})
    assert wall.tile_rect("a") == before


@pytest.mark.parametrize("theme", [palette.DARK, palette.LIGHT], ids=["dark", "light"])
def test_unhealthy_tile_is_critical_and_healthy_tile_has_no_role_colour(qtbot, theme):
    w = WallView(theme=theme, page_interval_s=0)
    qtbot.addWidget(w)
    w.resize(1920, 1080)
    snaps = fleet(40, d5={"status": ServiceStatus.UNHEALTHY, "failed": True})
    w.update_snapshots(snaps)
    img = w.grab().toImage()
    bad, good = w.tile_rect("d5"), w.tile_rect("d6")
    # Sample near the right edge, vertically centred: fill, not text.
    bad_px = img.pixelColor(bad.right() - 4, bad.center().y())
    good_px = img.pixelColor(good.right() - 4, good.center().y())
    assert _same(bad_px, theme.critical), bad_px.name()
    assert _same(good_px, theme.surface), good_px.name()
    good_border = img.pixelColor(good.left(), good.center().y())
    for role in _role_colours(theme):
        assert not _same(good_px, role, 40) and not _same(good_border, role, 40)


def test_each_abnormal_state_gets_its_hue(wall):
    snaps = fleet(12, racks=1, d1={"status": ServiceStatus.DEGRADED}, d2={"maintenance": True},
                  d3={"recovering": True, "status": ServiceStatus.UNHEALTHY, "failed": True},
                  d4={"breaker": BreakerState.FORCED_CLOSED}, d5={"breaker": BreakerState.OPEN})
    wall.update_snapshots(snaps)
    img = wall.grab().toImage()
    t = palette.DARK

    def fill(sid: str) -> QColor:
        r = wall.tile_rect(sid)
        return img.pixelColor(r.right() - 4, r.center().y())

    assert _same(fill("d1"), t.warning)
    assert _same(fill("d2"), t.suppressed)
    assert _same(fill("d3"), t.info)
    assert _same(fill("d4"), t.suppressed)  # healthy but forced: an operator's override shows
    assert _same(fill("d5"), t.critical)
    assert _same(fill("d0"), t.surface)


def test_name_type_is_readable_at_1080p_with_40_devices(wall):
    wall.update_snapshots(fleet(40))
    info = wall.layout_info()
    assert info.font_px >= 28
    assert info.pages == 1 and info.tiles_per_page == 40


def test_type_grows_when_few_devices(wall):
    wall.update_snapshots(fleet(6, racks=2))
    assert wall.layout_info().font_px > 40


def test_300_devices_show_every_device_at_once_and_trouble_as_large_tiles(wall):
    bad = {"d250": {"status": ServiceStatus.UNHEALTHY, "failed": True, "breaker": BreakerState.OPEN},
           "d7": {"status": ServiceStatus.DEGRADED},
           "d123": {"recovering": True},
           "d200": {"maintenance": True}}
    wall.update_snapshots(fleet(300, racks=12, **bad))
    info = wall.layout_info()
    assert info.mode == "overview" and info.pages == 1
    assert wall.page_marker_text() == ""
    # Every device has a cell in the map, inside the widget, none overlapping.
    cells = [wall.cell_rect(f"d{i}") for i in range(300)]
    assert all(c is not None and wall.rect().contains(c) for c in cells)
    assert len({(c.x(), c.y()) for c in cells}) == 300
    assert info.cell_px >= 28  # large enough to read a shape across a room at 300 devices
    # The devices in trouble (not the deliberate maintenance) have large tiles, most severe first.
    assert info.trouble_total == 3 and info.trouble_shown == 3
    tiles = {sid: wall.tile_rect(sid) for sid in ("d250", "d7", "d123", "d200", "d0")}
    assert tiles["d200"] is None and tiles["d0"] is None
    assert tiles["d250"].y() <= tiles["d7"].y() and tiles["d250"].x() < tiles["d7"].x() < tiles["d123"].x()
    assert info.font_px >= 28  # the trouble tiles are readable at 5 m
    assert tiles["d250"].bottom() < cells[0].top()  # above the map, not on top of it


def test_a_failing_device_colours_its_map_cell(wall):
    theme = palette.DARK
    snaps = fleet(300, racks=12)
    wall.update_snapshots(snaps)
    wall.grab()
    cell = wall.cell_rect("d299")
    before = wall.grab().toImage().pixelColor(cell.center().x(), cell.top() + 2)
    assert not any(_same(before, c) for c in _role_colours(theme))
    snaps["d299"] = make_snap("d299", name="dev-299", group="rack-11", status=ServiceStatus.UNHEALTHY, failed=True)
    wall.update_snapshots(snaps)
    after = wall.grab().toImage().pixelColor(cell.center().x(), cell.top() + 2)
    assert _same(after, theme.critical)
    assert wall.tile_rect("d299") is not None


def test_2000_devices_fit_without_paging(wall):
    snaps = fleet(2000, racks=40, d1999={"status": ServiceStatus.UNHEALTHY, "failed": True})
    wall.update_snapshots(snaps)
    info = wall.layout_info()
    assert info.mode == "overview" and info.pages == 1
    cells = [wall.cell_rect(f"d{i}") for i in range(2000)]
    assert all(c is not None and wall.rect().contains(c) for c in cells)
    assert info.cell_px >= 12
    assert wall.tile_rect("d1999") is not None  # the last device of the last rack: no page to wait for


def test_more_trouble_than_fits_says_how_many_more_and_keeps_them_in_the_map(wall):
    snaps = fleet(600, racks=12, **{f"d{i}": {"status": ServiceStatus.UNHEALTHY, "failed": True}
                                    for i in range(0, 600, 2)})
    wall.update_snapshots(snaps)
    info = wall.layout_info()
    assert info.trouble_total == 300
    assert 0 < info.trouble_shown < 300
    assert wall._trouble_more == 300 - info.trouble_shown
    assert all(wall.cell_rect(f"d{i}") is not None for i in range(600))


def test_tiles_mode_when_everything_fits_and_the_switch_is_by_size_only(qtbot):
    w = WallView()
    qtbot.addWidget(w)
    w.resize(1920, 1080)
    w.update_snapshots(fleet(40))
    assert w.layout_info().mode == "tiles"
    assert w.cell_rect("d0") is None and w.tile_rect("d0") is not None
    w.update_snapshots(fleet(40, d3={"status": ServiceStatus.UNHEALTHY, "failed": True}))
    assert w.layout_info().mode == "tiles"  # states never change the layout
    w.update_snapshots(fleet(300, racks=10))
    assert w.layout_info().mode == "overview"


def test_summary_counts(wall):
    snaps = fleet(20, racks=2,
                  d0={"status": ServiceStatus.UNHEALTHY, "failed": True, "breaker": BreakerState.OPEN},
                  d1={"status": ServiceStatus.UNHEALTHY, "failed": True},
                  d2={"status": ServiceStatus.DEGRADED},
                  d3={"heartbeat": HeartbeatStatus.MISSED},
                  d4={"maintenance": True},
                  d5={"breaker": BreakerState.FORCED_OPEN},
                  d6={"recovering": True, "status": ServiceStatus.UNHEALTHY, "failed": True},
                  d7={"status": ServiceStatus.UNKNOWN},
                  d8={"breaker": BreakerState.HALF_OPEN, "status": ServiceStatus.DEGRADED})
    wall.update_snapshots(snaps)
    c = wall.summary_counts()
    assert c["unhealthy"] == 3  # d0, d1, d3
    assert c["degraded"] == 2  # d2, d8
    assert c["open"] == 2  # d0 open, d8 half-open
    assert c["suppressed"] == 2  # d4 maintenance, d5 forced
    assert c["recovering"] == 1
    assert c["unknown"] == 1
    assert c["healthy"] == 11
    text = wall.summary_text()
    assert "3 unhealthy" in text and "11 healthy" in text


def test_alert_age_in_summary(wall):
    wall.update_snapshots(fleet(5))
    assert "unacknowledged" not in wall.summary_text()
    wall.set_alert_age(245)
    assert "oldest unacknowledged alarm 4 min" in wall.summary_text()
    assert "oldest unacknowledged alarm 4 min" in wall.accessibleDescription()
    wall.set_alert_age(None)
    assert "unacknowledged" not in wall.summary_text()


@pytest.mark.parametrize(("s", "text"), [(5, "5 s"), (245, "4 min"), (7500, "2 h")])
def test_format_age(s, text):
    assert format_age(s) == text


def test_layout_is_not_recomputed_on_state_changes(wall, monkeypatch):
    snaps = fleet(40)
    wall.update_snapshots(snaps)
    wall.grab()  # delivers the pending resize, lays out
    calls = []
    orig = wall._compute_layout
    monkeypatch.setattr(wall, "_compute_layout", lambda: (calls.append(1), orig()))
    wall.update_snapshots({**snaps, "d1": make_snap("d1", name="dev-001", group="rack-0",
                                                    status=ServiceStatus.UNHEALTHY, failed=True)})
    wall.grab()
    assert calls == []
    wall.update_snapshots(fleet(41))
    wall.grab()
    assert calls == [1]


def test_whole_rack_down_reads_as_one_fact(wall):
    snaps = fleet(10, racks=2, **{f"d{i}": {"status": ServiceStatus.UNHEALTHY, "failed": True} for i in range(5)})
    wall.update_snapshots(snaps)
    assert wall._group_all_critical == {"rack-0": True, "rack-1": False}


def test_repaint_of_a_1000_tile_page_is_cheap(wall):
    import time
    wall.update_snapshots(fleet(1000, racks=10))
    wall.grab()  # layout
    t0 = time.perf_counter()
    for _ in range(5):
        wall.grab()
    assert (time.perf_counter() - t0) / 5 < 0.25


def test_devices_behind_a_dead_switch_are_grey_squares_in_the_map_not_tiles(wall):
    """One alarm for the switch; its children are counted as blocked and marked in the map in grey
    (neither a coloured trouble tile nor a plain healthy cell)."""
    import dataclasses

    theme = palette.DARK
    snaps = fleet(300, racks=12, d10={"status": ServiceStatus.UNHEALTHY, "failed": True,
                                      "breaker": BreakerState.OPEN})
    wall.update_snapshots(snaps)
    cell = wall.cell_rect("d11")
    centre = (cell.center().x(), cell.center().y())
    plain = wall.grab().toImage().pixelColor(*centre)
    for sid in ("d11", "d12", "d13"):
        snaps[sid] = dataclasses.replace(
            make_snap(sid, name=snaps[sid].name, group=snaps[sid].group, status=ServiceStatus.UNHEALTHY,
                      failed=True, breaker=BreakerState.OPEN), depends_on=("d10",), blocked_by="d10")
    wall.update_snapshots(snaps)
    info = wall.layout_info()
    assert info.trouble_total == 1 and wall.tile_rect("d10") is not None and wall.tile_rect("d11") is None
    assert "3 blocked" in wall.summary_text() and "1 breaker open" in wall.summary_text()
    assert ("square", "blocks 3") in wall.tile_lines(snaps["d10"])
    marked = wall.grab().toImage().pixelColor(*centre)
    assert _same(marked, theme.muted) and not _same(plain, theme.muted)
    # The switch back: the children are judged afresh (here healthy again) and the marks go.
    wall.update_snapshots(fleet(300, racks=12))
    assert _same(wall.grab().toImage().pixelColor(*centre), plain.name())
    assert all(word != "blocks 3" for _, word in wall.tile_lines(snaps["d10"]))
