"""gui/service_model + gui/bridge: rows from snapshots, batched dataChanged, inserts/removals, the
filter/sort proxy, words in tooltips/accessible text, and the bridge's diffing."""

from __future__ import annotations

import dataclasses
import time

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QTableView

from core.events import RecoveryState, RecoveryStrategyName, BreakerState, ServiceStatus
from core.snapshot import RecoveryView
from gui import palette
from gui.bridge import EngineBridge
from gui.delegates import IndicatorDelegate, SparklineDelegate
from gui.service_model import (INDICATOR_ROLE, SORT_ROLE, Column, ServiceFilterProxy, ServiceTableModel,
                               checked_text, recovery_text, status_counts)
from fake_engine import START_WALL, FakeEngine, demo_rack, make_breaker, make_snapshot

DISPLAY = Qt.ItemDataRole.DisplayRole
TOOLTIP = Qt.ItemDataRole.ToolTipRole
ACCESSIBLE = Qt.ItemDataRole.AccessibleTextRole


def five() -> dict:
    return {f"s{i}": make_snapshot(f"s{i}", f"Device {i}", "rack-a" if i < 3 else "rack-b") for i in range(5)}


@pytest.fixture
def model(qapp) -> ServiceTableModel:
    m = ServiceTableModel(now=lambda: START_WALL)
    m.update_snapshots(five())
    return m


def cell(m, sid: str, col: Column, role=DISPLAY):
    return m.index(m.row_of(sid), col).data(role)


def test_model_fills_from_snapshots(model):
    assert model.rowCount() == 5
    assert model.columnCount() == len(Column)
    assert cell(model, "s3", Column.NAME) == "Device 3"
    assert cell(model, "s3", Column.GROUP) == "rack-b"
    assert cell(model, "s3", Column.STATUS) == "HEALTHY"
    assert cell(model, "s3", Column.BREAKER) == "CLOSED"
    assert cell(model, "s3", Column.P95_MS) == "34"
    assert cell(model, "s3", Column.CHECKED) == "2 s ago"
    assert cell(model, "s3", Column.ENDPOINT) == "primary"


def test_data_changed_only_for_changed_rows_with_roles(qtbot, model):
    emitted: list[tuple[int, int, int, int, list]] = []
    model.dataChanged.connect(lambda tl, br, roles: emitted.append((tl.row(), br.row(), tl.column(), br.column(),
                                                                     list(roles))))
    s1 = dataclasses.replace(model.snapshot("s1"), status=ServiceStatus.DEGRADED)
    s2 = dataclasses.replace(model.snapshot("s2"), consecutive_failures=2)
    s4 = dataclasses.replace(model.snapshot("s4"), p95_ms=900.0)
    model.update_snapshots({"s4": s4, "s1": s1, "s2": s2})
    # One full-width row each (a sorted proxy would turn a range into a span of unchanged rows too);
    # rows 0 and 3 untouched.
    assert [(a, b) for a, b, *_ in emitted] == [(1, 1), (2, 2), (4, 4)]
    for _, _, c0, c1, roles in emitted:
        assert (c0, c1) == (0, len(Column) - 1)
        assert DISPLAY in roles and TOOLTIP in roles and SORT_ROLE in roles
    assert cell(model, "s1", Column.STATUS) == "DEGRADED"


def test_refresh_times_touches_only_time_columns(qtbot, model):
    emitted = []
    model.dataChanged.connect(lambda tl, br, roles: emitted.append((tl.column(), br.column(), tl.row(), br.row())))
    model.refresh_times()
    assert {c0 for c0, c1, *_ in emitted} == {Column.CHECKED, Column.RECOVERY, Column.BREAKER}
    assert all(c0 == c1 and r0 == 0 and r1 == 4 for c0, c1, r0, r1 in emitted)


def test_rows_inserted_and_removed_on_service_set_changes(qtbot, model):
    inserted, removed = [], []
    model.rowsInserted.connect(lambda _p, a, b: inserted.append((a, b)))
    model.rowsRemoved.connect(lambda _p, a, b: removed.append((a, b)))
    model.update_snapshots({"new-1": make_snapshot("new-1"), "new-2": make_snapshot("new-2")})
    assert inserted == [(5, 6)]
    model.remove_services(["s1", "s2", "s4"])
    assert removed == [(4, 4), (1, 2)]  # highest range first, so earlier rows stay valid
    assert model.ids() == ["s0", "s3", "new-1", "new-2"]
    assert [model.row_of(i) for i in model.ids()] == [0, 1, 2, 3]
    assert model.row_of("s1") is None


def test_sync_removes_gone_and_adds_new(qtbot, model):
    snaps = {k: v for k, v in model_snaps(model).items() if k != "s0"}
    snaps["x"] = make_snapshot("x")
    model.sync(snaps)
    assert sorted(model.ids()) == sorted(snaps)


def model_snaps(model) -> dict:
    return {s.id: s for s in model.snapshots()}


def proxy_names(proxy) -> list[str]:
    return [proxy.index(r, Column.NAME).data() for r in range(proxy.rowCount())]


def test_proxy_groups_by_rack_then_name_by_default(qtbot, qapp):
    m = ServiceTableModel(now=lambda: START_WALL)
    m.update_snapshots({s.id: s for s in [make_snapshot("b2", "Beta", "rack-b"), make_snapshot("a2", "Zulu", "rack-a"),
                                          make_snapshot("a1", "Alpha", "rack-a"), make_snapshot("b1", "Able", "rack-b")]})
    proxy = ServiceFilterProxy()
    proxy.setSourceModel(m)
    proxy.sort(Column.NAME, Qt.SortOrder.AscendingOrder)
    assert proxy_names(proxy) == ["Alpha", "Zulu", "Able", "Beta"]
    proxy.set_group_by_rack(False)
    proxy.sort(Column.NAME, Qt.SortOrder.AscendingOrder)
    assert proxy_names(proxy) == ["Able", "Alpha", "Beta", "Zulu"]


def test_proxy_sorts_on_raw_values_not_text(qtbot, qapp):
    m = ServiceTableModel(now=lambda: START_WALL)
    m.update_snapshots({s.id: s for s in [make_snapshot("a", "A", p95_ms=900.0), make_snapshot("b", "B", p95_ms=95.0),
                                          make_snapshot("c", "C", p95_ms=12000.0)]})
    proxy = ServiceFilterProxy()
    proxy.setSourceModel(m)
    proxy.set_group_by_rack(False)
    proxy.sort(Column.P95_MS, Qt.SortOrder.DescendingOrder)
    assert proxy_names(proxy) == ["C", "A", "B"]  # "12 s" > "900" > "95" numerically
    assert proxy.index(0, Column.P95_MS).data() == "12 s"


def test_proxy_sorts_status_worst_first(qtbot, qapp):
    m = ServiceTableModel(now=lambda: START_WALL)
    m.update_snapshots(demo_rack())
    proxy = ServiceFilterProxy()
    proxy.setSourceModel(m)
    proxy.set_group_by_rack(False)
    proxy.sort(Column.STATUS, Qt.SortOrder.AscendingOrder)
    assert proxy.index(0, Column.STATUS).data() == "FAILED"
    assert proxy.index(1, Column.STATUS).data() == "DEGRADED"


def test_proxy_filters_by_name_group_and_state_word(qtbot, qapp):
    m = ServiceTableModel(now=lambda: START_WALL)
    m.update_snapshots(demo_rack())
    proxy = ServiceFilterProxy()
    proxy.setSourceModel(m)
    proxy.sort(Column.NAME, Qt.SortOrder.AscendingOrder)
    proxy.set_filter_text("pump")
    assert proxy_names(proxy) == ["Pump 1", "Pump 2"]
    proxy.set_filter_text("RACK-C")
    assert len(proxy_names(proxy)) == 5
    proxy.set_filter_text("forced open")
    assert proxy_names(proxy) == ["Camera 1"]
    proxy.set_filter_text("degraded")
    assert proxy_names(proxy) == ["Pump 1"]
    proxy.set_filter_text("")
    assert proxy.rowCount() == len(demo_rack())


def test_breaker_cell_says_forced_open_in_tooltip_and_accessible_text(model):
    snap = model.snapshot("s2")
    model.update_snapshots({"s2": dataclasses.replace(snap, breaker=make_breaker(BreakerState.FORCED_OPEN))})
    idx = model.index(model.row_of("s2"), Column.BREAKER)
    assert idx.data(DISPLAY) == "FORCED OPEN"
    assert "FORCED OPEN" in idx.data(TOOLTIP)
    assert "FORCED OPEN" in idx.data(ACCESSIBLE)
    indicator = idx.data(INDICATOR_ROLE)
    assert (indicator.shape, indicator.role) == ("lock", "suppressed")


def test_status_light_has_no_text_but_word_in_tooltip_and_accessible_text(qapp):
    m = ServiceTableModel(now=lambda: START_WALL)
    m.update_snapshots(demo_rack())
    idx = m.index(m.row_of("comp"), Column.STATUS_LIGHT)
    assert idx.data(DISPLAY) is None
    assert "FAILED" in idx.data(TOOLTIP) and "HTTP 503" in idx.data(TOOLTIP)
    assert "FAILED" in idx.data(ACCESSIBLE)
    assert idx.data(INDICATOR_ROLE).shape == "triangle"
    healthy = m.index(m.row_of("plc-1"), Column.STATUS_LIGHT).data(INDICATOR_ROLE)
    assert (healthy.role, healthy.shape) == ("normal", "circle")


def test_healthy_row_is_grey_and_trouble_is_coloured(qapp):
    m = ServiceTableModel(now=lambda: START_WALL, theme=palette.LIGHT)
    m.update_snapshots(demo_rack())
    fg = Qt.ItemDataRole.ForegroundRole
    assert m.index(m.row_of("plc-1"), Column.STATUS).data(fg).name() == palette.LIGHT.muted
    assert m.index(m.row_of("comp"), Column.STATUS).data(fg).name() == palette.LIGHT.critical
    assert m.index(m.row_of("chiller"), Column.STATUS).data(fg).name() == palette.LIGHT.info  # recovering
    assert m.index(m.row_of("pump-1"), Column.STATUS).data(fg).name() == palette.LIGHT.warning
    assert m.index(m.row_of("pump-1"), Column.P95_MS).data(fg).name() == palette.LIGHT.warning


def test_stale_values_are_greyed_and_say_stale(qapp):
    m = ServiceTableModel(now=lambda: START_WALL)
    m.update_snapshots(demo_rack())
    row = m.row_of("chiller")
    assert m.index(row, Column.CHECKED).data() == "stale 42 s"
    assert "last-known-good" in m.index(row, Column.CHECKED).data(TOOLTIP)
    assert m.index(row, Column.P95_MS).data(Qt.ItemDataRole.ForegroundRole).name() == palette.LIGHT.muted


def test_recovery_and_endpoint_texts(qapp):
    m = ServiceTableModel(now=lambda: START_WALL)
    m.update_snapshots(demo_rack())
    assert m.index(m.row_of("chiller"), Column.RECOVERY).data() == "restart 2/3 in 4 s"
    assert m.index(m.row_of("gw"), Column.RECOVERY).data() == "failover → backup 1 ok"
    assert m.index(m.row_of("gw"), Column.ENDPOINT).data() == "backup 1"


@pytest.mark.parametrize("state, text", [
    ("waiting", "restart 1/3 in 10 s"), ("in_progress", "restart 1/3 running"),
    ("gave_up", "restart gave up 1/3"), ("verifying", "restart 1/3 verifying"),
])
def test_recovery_text(state, text):
    rec = RecoveryView("r", RecoveryStrategyName("restart"), RecoveryState(state), 1, 3, START_WALL + 10, "")
    assert recovery_text(rec, None, START_WALL) == text


def test_checked_text_ages():
    snap = make_snapshot("a", last_check_wall=START_WALL - 150)
    assert checked_text(snap, START_WALL) == "2 min ago"
    assert checked_text(make_snapshot("b", last_check_wall=None, last_ok_wall=None), START_WALL) == "never"


def test_status_counts():
    # One category per device (gui/presentation.py), the same as the wall's: the recovering chiller
    # has an open breaker (unhealthy), the half-open scale is degraded, forced/maintenance/paused
    # devices are suppressed, and the forced, maintenance and paused ones are also counted by why.
    counts = status_counts(demo_rack().values())
    assert (counts["unhealthy"], counts["degraded"], counts["suppressed"], counts["recovering"]) == (2, 2, 3, 0)
    assert counts["forced"] == 1 and counts["maintenance"] == 1 and counts["paused"] == 1
    assert counts["healthy"] == len(demo_rack()) - 7


def test_delegates_paint_without_errors(qtbot):
    m = ServiceTableModel(now=lambda: START_WALL)
    m.update_snapshots(demo_rack())
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(m)
    ind = IndicatorDelegate(palette.LIGHT, view)
    view.setItemDelegateForColumn(Column.STATUS_LIGHT, ind)
    view.setItemDelegateForColumn(Column.BREAKER, ind)
    view.setItemDelegateForColumn(Column.TREND, SparklineDelegate(palette.LIGHT, view))
    view.resize(1200, 400)
    image = view.grab().toImage()
    assert not image.isNull()
    # The compressor's red triangle is somewhere in the status-light column.
    critical = palette.LIGHT.critical
    col_x = view.columnViewportPosition(Column.STATUS_LIGHT) + view.verticalHeader().width()
    row_y = view.rowViewportPosition(m.row_of("comp")) + view.horizontalHeader().height()
    found = {image.pixelColor(x, y).name() for x in range(col_x, col_x + view.columnWidth(0))
             for y in range(row_y, row_y + view.rowHeight(0))}
    assert critical in found


def test_update_of_1000_rows_is_cheap(qapp):
    m = ServiceTableModel(now=lambda: START_WALL)
    snaps = {f"d{i:04}": make_snapshot(f"d{i:04}", group=f"rack-{i // 40}") for i in range(1000)}
    m.update_snapshots(snaps)
    proxy = ServiceFilterProxy()
    proxy.setSourceModel(m)
    proxy.sort(Column.NAME, Qt.SortOrder.AscendingOrder)
    changed = {k: dataclasses.replace(v, last_latency_ms=30.0, checks_total=v.checks_total + 1)
               for k, v in snaps.items()}
    t0 = time.perf_counter()
    m.update_snapshots(changed)
    m.refresh_times()
    elapsed = time.perf_counter() - t0
    assert proxy.rowCount() == 1000
    assert elapsed < 0.5, f"updating 1,000 rows took {elapsed:.3f} s"


# ---------------------------------------------------------------- bridge

def test_bridge_emits_only_changed_snapshots_and_removals(qtbot):
    engine = FakeEngine()
    bridge = EngineBridge(engine)
    with qtbot.waitSignal(bridge.snapshots_changed) as first:
        bridge.poll()
    assert set(first.args[0]) == set(engine.snapshots())

    got: list[dict] = []
    bridge.snapshots_changed.connect(got.append)
    bridge.poll()
    assert got == []  # nothing changed: nothing emitted

    engine.update("pump-2", last_latency_ms=99.0)
    bridge.poll()
    assert len(got) == 1 and set(got[0]) == {"pump-2"}

    removed: list[list] = []
    bridge.services_removed.connect(removed.append)
    engine.remove("conv-2")
    bridge.poll()
    assert removed == [["conv-2"]]


def test_bridge_equal_but_new_snapshot_objects_are_not_changes(qtbot):
    engine = FakeEngine()
    bridge = EngineBridge(engine)
    bridge.poll()
    engine.set_snapshot(dataclasses.replace(engine.snapshots()["plc-1"]))  # equal value, new object
    got: list[dict] = []
    bridge.snapshots_changed.connect(got.append)
    bridge.poll()
    assert got == []


def test_bridge_events_alerts_stats(qtbot):
    engine = FakeEngine()
    bridge = EngineBridge(engine)
    events, alerts, stats = [], [], []
    bridge.events_arrived.connect(events.append)
    bridge.alerts_changed.connect(alerts.append)
    bridge.stats_changed.connect(stats.append)
    bridge.poll()
    assert events == [] and alerts == [] and len(stats) == 1
    engine.add_alert("a1", "chiller")
    engine.publish(engine_event(engine))
    bridge.poll()
    assert len(events) == 1 and len(events[0]) == 1
    assert len(alerts) == 1 and alerts[0][0].id == "a1"
    bridge.poll()
    assert len(alerts) == 1  # unchanged list: no second emission


def test_bridge_timer_is_single_and_named(qtbot):
    bridge = EngineBridge(FakeEngine(), interval_ms=150)
    assert bridge.timer.objectName() == "bridge_timer"
    assert 100 <= bridge.timer.interval() <= 200
    with qtbot.waitSignal(bridge.ticked, timeout=2000):
        bridge.start()
    bridge.stop()
    assert not bridge.timer.isActive()


def engine_event(engine: FakeEngine):
    from core.events import ActionEvent

    return ActionEvent(service="plc-1", mono=0.0, wall=engine.wall, command="reset", origin="api")


def test_model_index_parent_invalid_has_no_children(model):
    assert model.rowCount(model.index(0, 0)) == 0
    assert model.data(QModelIndex()) is None


# ---------------------------------------------------------------- latency text, sort order, filter

@pytest.mark.parametrize(("ms", "text"), [(0.0, "0.0"), (0.42, "0.4"), (3.24, "3.2"), (9.94, "9.9"), (9.96, "10"),
                                          (12.4, "12"), (312.0, "312"), (9999.0, "9999"), (12_000.0, "12 s"),
                                          (None, "—")])
def test_latency_has_one_decimal_below_10_ms(ms, text):
    from core.describe import format_ms

    assert format_ms(ms) == text


def _names(proxy: ServiceFilterProxy) -> list[str]:
    return [proxy.index(r, Column.NAME).data() for r in range(proxy.rowCount())]


@pytest.mark.parametrize("group_by_rack", [True, False])
@pytest.mark.parametrize("column", [Column.NAME, Column.STATUS, Column.P95_MS, Column.RECOVERY])
@pytest.mark.parametrize("order", [Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder])
def test_sort_matches_the_documented_order(qapp, column, order, group_by_rack):
    snaps = demo_rack(START_WALL)
    m = ServiceTableModel(now=lambda: START_WALL)
    m.update_snapshots(snaps)
    proxy = ServiceFilterProxy()
    proxy.group_by_rack = group_by_rack
    proxy.setSourceModel(m)
    proxy.sort(column, order)
    # Groups ascending (when grouping), the column in the chosen order, ties by name ascending.
    keyed = [(s.group.casefold() if group_by_rack else "", m.sort_key(m.row_of(s.id), column), s.name.casefold(),
              s.name) for s in snaps.values()]
    desc = order == Qt.SortOrder.DescendingOrder
    keyed.sort(key=lambda k: k[2])
    keyed.sort(key=lambda k: k[1], reverse=desc)
    keyed.sort(key=lambda k: k[0])
    assert _names(proxy) == [k[3] for k in keyed]


def test_clearing_the_filter_restores_the_sort_order(qapp):
    m = ServiceTableModel(now=lambda: START_WALL)
    m.update_snapshots(demo_rack(START_WALL))
    proxy = ServiceFilterProxy()
    proxy.setSourceModel(m)
    proxy.sort(Column.NAME, Qt.SortOrder.AscendingOrder)
    before = _names(proxy)
    proxy.set_filter_text("pump 2")
    assert _names(proxy) == ["Pump 2"]
    proxy.set_filter_text("")
    assert _names(proxy) == before


def test_only_order_relevant_changes_ask_for_a_resort(qapp):
    m = ServiceTableModel(now=lambda: START_WALL)
    snaps = demo_rack(START_WALL)
    m.update_snapshots(snaps)
    proxy = ServiceFilterProxy()
    proxy.setSourceModel(m)
    proxy.sort(Column.NAME, Qt.SortOrder.AscendingOrder)
    old = snaps["pump-2"]
    faster = dataclasses.replace(old, p95_ms=3.0, last_check_wall=old.last_check_wall + 1)
    assert not proxy.affects_order(old, faster)  # sorted by name: a new latency moves nothing
    assert proxy.affects_order(old, dataclasses.replace(old, name="Pump 20"))
    proxy.sort(Column.P95_MS, Qt.SortOrder.DescendingOrder)
    assert proxy.affects_order(old, faster)
    proxy.sort(Column.NAME, Qt.SortOrder.AscendingOrder)
    proxy.set_filter_text("failed")
    assert proxy.affects_order(old, dataclasses.replace(old, failed=True))  # its state word changes



def test_a_blocked_rows_failures_are_counted_in_grey_not_red(qapp):
    import dataclasses

    m = ServiceTableModel(now=lambda: START_WALL, theme=palette.LIGHT)
    snaps = demo_rack()
    comp = snaps["comp"]
    snaps["comp"] = dataclasses.replace(comp, depends_on=("switch-3",), blocked_by="switch-3")
    m.update_snapshots(snaps)
    fg = Qt.ItemDataRole.ForegroundRole
    cell = m.index(m.row_of("comp"), Column.FAILURES)
    assert cell.data() == str(comp.consecutive_failures) and comp.consecutive_failures > 0
    assert cell.data(fg).name() == palette.LIGHT.muted
    m.update_snapshots({**snaps, "comp": comp})
    assert m.index(m.row_of("comp"), Column.FAILURES).data(fg).name() == palette.LIGHT.critical
