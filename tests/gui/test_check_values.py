"""The window for devices that do not speak HTTP: the Check and Value columns, the check-type filter,
the check's own rows in the detail panel, the value chart beside the latency chart, reboots in the
timeline. FakeEngine with one device of each check type; the real EngineThread on the demo rack last."""

from __future__ import annotations

import asyncio
import itertools
import socketserver
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QComboBox

from core.checks.base import healthy
from core.events import FailureType, ProbeEvent, RebootEvent, ServiceStatus
from core.options import opt
from gui.main_window import MainWindow
from gui.service_model import Column
from gui.timeline import TimelineColumn
from gui.value_chart import ValueChart, y_range
from fake_engine import FakeEngine, demo_rack, device_rack, make_snapshot


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine({**demo_rack(), **device_rack()})


@pytest.fixture
def window(qtbot, qloop, engine, qsettings):
    w = MainWindow(engine, qsettings, now=engine.now, tray=False, sound=False)
    qtbot.addWidget(w)
    w.bridge.poll()
    yield w
    w.shutdown()


def cell(w: MainWindow, sid: str, column: Column, role: Qt.ItemDataRole = Qt.ItemDataRole.DisplayRole) -> Any:
    return w.model.index(w.model.row_of(sid), column).data(role)


def shown_ids(w: MainWindow) -> set[str]:
    from gui.service_model import SERVICE_ID_ROLE
    return {w.proxy.index(r, 0).data(SERVICE_ID_ROLE) for r in range(w.proxy.rowCount())}


def select(w: MainWindow, qloop, sid: str) -> None:
    w.select_services([sid])
    qloop.run(w.wait_idle())


# ---------------------------------------------------------------- columns

def test_check_column_names_the_type_as_a_word_and_its_target(window):
    words = {sid: cell(window, sid, Column.CHECK) for sid in ("plc-1", "furnace", "ups", "panel", "line-sensor",
                                                              "filler", "camera-rtsp", "switch", "resolver")}
    assert words == {"plc-1": "HTTP", "furnace": "MODBUS", "ups": "SNMP", "panel": "TLS", "line-sensor": "MQTT",
                     "filler": "OPC UA", "camera-rtsp": "TCP", "switch": "PING", "resolver": "DNS"}
    assert cell(window, "furnace", Column.CHECK, Qt.ItemDataRole.ToolTipRole) == \
        "MODBUS: modbus 10.1.2.4:502 unit 1 holding 100"
    assert window.model.headerData(Column.CHECK, Qt.Orientation.Horizontal) == "Check"
    assert window.model.headerData(Column.VALUE, Qt.Orientation.Horizontal) == "Value"


def test_value_column_shows_the_last_value_and_sorts_numbers_first(window, engine):
    assert cell(window, "furnace", Column.VALUE) == "41.5"
    assert cell(window, "packer", Column.VALUE) == "1520"
    assert cell(window, "line-sensor", Column.VALUE) == "online"
    assert cell(window, "plc-1", Column.VALUE) == ""  # HTTP reads no value: a quiet empty cell
    tip = cell(window, "ups", Column.VALUE, Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("SNMP value 97; last 30 values 97.1–100")
    assert "last-known-good" in cell(window, "packer", Column.VALUE, Qt.ItemDataRole.ToolTipRole)
    window.named_actions["action_group_by_rack"].setChecked(False)
    window.table.sortByColumn(Column.VALUE, Qt.SortOrder.AscendingOrder)
    values = [window.proxy.index(r, Column.VALUE).data() for r in range(window.proxy.rowCount())]
    assert values[:5] == ["0", "12", "41.5", "97", "1520"]  # numerically, not as text
    assert values[5:7] == ["10.1.2.3", "online"] and set(values[7:]) == {""}
    engine.update("furnace", value=85.25)
    window.bridge.poll()
    assert cell(window, "furnace", Column.VALUE) == "85.2"


def test_filter_by_check_type(qtbot, window, engine):
    combo = window.findChild(QComboBox, "filter_check_type")
    assert combo is not None
    assert [combo.itemText(i) for i in range(combo.count())] == \
        ["All checks", "DNS", "HTTP", "MODBUS", "MQTT", "OPC UA", "PING", "SNMP", "TCP", "TLS"]
    combo.setCurrentIndex(combo.findText("MODBUS"))
    assert shown_ids(window) == {"furnace", "packer"}
    window.filter_box.setText("packer")  # the text filter narrows within the type
    assert shown_ids(window) == {"packer"}
    window.filter_box.clear()
    combo.setCurrentIndex(combo.findText("HTTP"))
    assert shown_ids(window) == set(demo_rack())
    combo.setCurrentIndex(0)
    assert shown_ids(window) == set(engine.snapshots())


def test_the_type_filter_follows_types_added_and_keeps_its_choice(window, engine):
    combo = window.findChild(QComboBox, "filter_check_type")
    combo.setCurrentIndex(combo.findText("TLS"))
    engine.set_snapshot(make_snapshot("probe-x", "Probe", "rack-e", check_type="sensor_bus", target="bus 3"))
    for sid in ("panel",):
        engine.remove(sid)
    window.bridge.poll()
    words = [combo.itemText(i) for i in range(combo.count())]
    assert "SENSOR BUS" in words  # a type no one here knows by name still gets a word
    assert combo.currentText() == "TLS"  # the chosen type stays even with no device left of it
    assert shown_ids(window) == set()


def test_the_text_filter_also_matches_the_check_word(window):
    window.filter_box.setText("opc ua")
    assert shown_ids(window) == {"filler"}


# ---------------------------------------------------------------- detail panel

def test_detail_rows_come_from_the_checks_detail(window, qloop):
    select(window, qloop, "panel")
    d = window.detail
    assert d.text("check") == "TLS"
    assert d.text("target") == "tls 10.1.2.9:443"
    assert d.text("value") == "12"
    assert d.check_rows() == [("Days left", "12"), ("Expires", "2026-12-12 08:00 UTC"), ("Subject", "CN=panel.lab")]
    label = window.findChild(QObject, "detail_check_label_0")
    value = window.findChild(QObject, "detail_check_0")
    assert (label.text(), value.text()) == ("Days left", "12")
    select(window, qloop, "line-sensor")
    assert d.check_rows() == [("Topic", "lab/plc1/status"), ("Last message", "4 s ago"),
                              ("Broker", "mqtt://10.1.2.6:1883 connected")]
    assert window.findChild(QObject, "detail_check_2").text() == "mqtt://10.1.2.6:1883 connected"
    assert window.findChild(QObject, "detail_check_3").isHidden()
    select(window, qloop, "plc-1")
    assert d.check_rows() == []
    assert d.text("check") == "HTTP" and d.text("value") == "—"
    assert d.text("target") == engine_endpoint(window, "plc-1")


def engine_endpoint(w: MainWindow, sid: str) -> str:
    return w.model.snapshot(sid).endpoint


def test_last_reboot_and_stale_values_are_said(window, qloop, engine):
    select(window, qloop, "ups")
    assert window.detail.text("last_reboot").endswith("(10 min ago)")
    assert window.detail.fields["last_reboot"].styleSheet() != ""  # amber: recent
    select(window, qloop, "packer")
    assert window.detail.text("value") == "1520 (last-known-good)"
    assert window.detail.text("last_reboot") == "none seen"
    assert window.detail.check_rows() == [("Register", "input 7"), ("Must change", "yes")]


def test_more_detail_than_rows_is_folded_into_the_last_row(window, qloop, engine):
    rows = tuple((f"fact {i}", str(i)) for i in range(11))
    engine.update("furnace", detail=rows)
    window.bridge.poll()
    select(window, qloop, "furnace")
    shown = window.detail.check_rows()
    assert len(shown) == window.detail.CHECK_ROWS
    assert shown[-1] == ("More", "fact 7: 7; fact 8: 8; fact 9: 9; fact 10: 10")


def test_a_column_layout_saved_before_the_new_columns_is_not_misapplied(qtbot, engine, qsettings):
    from PySide6.QtGui import QStandardItemModel
    from PySide6.QtWidgets import QTableView

    before = QTableView()  # the table as it was: 13 columns, the user widened the 4th (Status)
    qtbot.addWidget(before)
    before.setModel(QStandardItemModel(1, 13, before))
    before.setColumnWidth(3, 300)
    qsettings.setValue("table/header", before.horizontalHeader().saveState())
    w = MainWindow(engine, qsettings, now=engine.now, tray=False, sound=False)
    qtbot.addWidget(w)
    assert w.table.columnWidth(Column.CHECK) == 64  # not the old Status width
    w.table.setColumnWidth(Column.VALUE, 140)
    w.save_settings()
    w.shutdown()
    again = MainWindow(engine, qsettings, now=engine.now, tray=False, sound=False)
    qtbot.addWidget(again)
    assert again.table.columnWidth(Column.VALUE) == 140
    again.shutdown()


# ---------------------------------------------------------------- value chart

def test_value_chart_gets_history_and_live_values(window, engine, qloop):
    chart = window.findChild(ValueChart, "value_chart")
    assert chart is window.value_chart and chart.isHidden()
    select(window, qloop, "furnace")
    assert not chart.isHidden()
    assert ("value_history", "furnace", engine.wall - 300, False) in engine.calls
    chart.redraw_now()
    xs, ys = chart.curve_data()
    assert len(xs) == 61 and 40.9 <= ys.min() <= ys.max() <= 42.1
    lo, hi = chart.y_range()
    assert lo < ys.min() and hi > ys.max() and hi - lo < 5  # fitted to the data, not to 0
    assert chart.title_text() == "MODBUS value"
    assert "modbus 10.1.2.4:502 unit 1 holding 100" in chart.findChild(QObject, "value_chart_title").toolTip()
    assert chart.latest_text() == "now 41.5"
    engine.wall += 5
    engine.update("furnace", value=44.0, last_check_wall=engine.wall)
    window.bridge.poll()
    chart.redraw_now()
    xs, ys = chart.curve_data()
    assert (xs[-1], ys[-1]) == (engine.wall, 44.0)
    assert chart.latest_text() == "now 44"


def test_value_chart_is_hidden_for_checks_without_numbers(window, engine, qloop):
    select(window, qloop, "furnace")
    select(window, qloop, "line-sensor")  # MQTT text payload: nothing to chart
    assert window.value_chart.isHidden()
    select(window, qloop, "plc-1")
    assert window.value_chart.isHidden()
    assert ("value_history", "plc-1", engine.wall - 300, False) in engine.calls


def test_long_ranges_come_from_rollups_for_both_charts(window, engine, qloop):
    select(window, qloop, "ups")
    window.value_chart.findChild(QObject, "value_range_86400").click()
    qloop.run(window.wait_idle())
    assert window.chart.range_seconds() == 86400 == window.value_chart.range_seconds()
    assert ("value_history", "ups", engine.wall - 86400, True) in engine.calls
    assert ("latency_history", "ups", engine.wall - 86400, True) in engine.calls
    window.chart.findChild(QObject, "range_3600").click()
    qloop.run(window.wait_idle())
    assert window.value_chart.range_seconds() == 3600
    assert ("value_history", "ups", engine.wall - 3600, False) in engine.calls
    window.value_chart.redraw_now()
    assert len(window.value_chart.curve_data()[0]) == 721


def test_live_values_on_a_day_merge_into_minute_means(qtbot) -> None:
    chart = ValueChart(clock=lambda: 1_000_000.0)
    qtbot.addWidget(chart)
    chart.set_range_seconds(86400)
    for i, v in enumerate((10.0, 20.0, 30.0)):
        chart.add_point(999_900.0 + i * 10, v)
    chart.add_point(999_990.0, 5.0)
    chart.redraw_now()
    xs, ys = chart.curve_data()
    assert list(ys) == [20.0, 5.0] and list(xs) == [999_900.0, 999_990.0]
    chart.set_range_seconds(300)  # short ranges keep every value
    chart.add_point(999_995.0, 7.0)
    chart.redraw_now()
    assert list(chart.curve_data()[1]) == [20.0, 5.0, 7.0]


def test_value_chart_redraws_only_when_dirty_and_visible(qtbot) -> None:
    now = [1_000_000.0]
    chart = ValueChart(clock=lambda: now[0])
    qtbot.addWidget(chart)
    assert chart._timer.interval() >= 100  # ≤ 10 Hz
    chart.add_point(now[0], 5.0)
    before = chart.redraw_count
    chart._on_timer_timeout()  # hidden: nothing
    assert chart.redraw_count == before
    chart.show()
    qtbot.waitExposed(chart)
    chart._on_timer_timeout()
    assert chart.redraw_count == before + 1
    chart._on_timer_timeout()  # clean and no time passed: nothing
    assert chart.redraw_count == before + 1
    now[0] += 2  # idle, but the time axis must scroll
    chart._on_timer_timeout()
    assert chart.redraw_count == before + 2


def test_y_range_of_a_constant_value_is_not_empty() -> None:
    assert y_range(0.0, 0.0) == (-1.0, 1.0)
    assert y_range(1520.0, 1520.0) == (1368.0, 1672.0)
    lo, hi = y_range(40.0, 42.0)
    assert lo < 40.0 and hi > 42.0


# ---------------------------------------------------------------- reboots

def test_a_reboot_shows_in_the_timeline_and_on_the_value_chart(window, engine, qloop):
    select(window, qloop, "ups")
    assert window.value_chart.reboot_x() == []  # not drawn yet
    window.value_chart.redraw_now()
    assert window.value_chart.reboot_x() == [engine.wall - 600]  # from the snapshot's last reboot
    engine.publish(RebootEvent(service="ups", mono=0.0, wall=engine.wall - 1, check="snmp",
                               reason="sysUpTime went back from 8,640,000 to 1,200"))
    engine.publish(ProbeEvent(service="ups", mono=0.0, wall=engine.wall, status=ServiceStatus.HEALTHY,
                              latency_ms=2.0, error=None, consecutive_failures=0, check="snmp", value=97))
    window.bridge.poll()
    model = window.timeline_view.model
    rows = {model.index(r, TimelineColumn.KIND).data(): (model.index(r, TimelineColumn.WHAT).data(),
                                                          model.index(r, TimelineColumn.WHY).data())
            for r in range(model.rowCount())}
    assert rows["reboot"] == ("rebooted by itself", "sysUpTime went back from 8,640,000 to 1,200")
    assert rows["probe"] == ("HEALTHY 2.0 ms, read 97", "SNMP check")
    reboot_row = next(r for r in range(model.rowCount()) if model.index(r, TimelineColumn.KIND).data() == "reboot")
    assert model.index(reboot_row, TimelineColumn.WHAT).data(Qt.ItemDataRole.ForegroundRole) is not None  # amber
    window.value_chart.redraw_now()
    assert window.value_chart.reboot_x() == [engine.wall - 600, engine.wall - 1]


def test_the_table_paints_values_and_sparklines(window, qtbot):
    """Paint the whole window once (the Value delegate draws text and lines without a Qt warning)."""
    window.resize(1600, 900)
    window.show()
    qtbot.waitExposed(window)
    image = window.grab().toImage()
    assert image.width() >= 1600


# ---------------------------------------------------------------- the real engine

runner = pytest.importorskip("core.runner")


def test_real_engine_demo_rack_reports_check_types_and_value_history(qtbot, qloop, qsettings, tmp_path):
    rack = runner.EngineThread.for_demo(state_dir=str(tmp_path / "state"))
    rack.start()
    try:
        w = MainWindow(rack, qsettings, tray=False, sound=False)
        qtbot.addWidget(w)
        w.start()
        try:
            qtbot.waitUntil(lambda: w.model.rowCount() == len(rack.snapshots()) > 0, timeout=15_000)
            # Rows exist before the first checks: which devices give numbers is read once every device
            # was checked (taken earlier, a reading device could still have no values while its history,
            # read a moment later, already had one: the "no values anywhere" branch then failed).
            qtbot.waitUntil(lambda: all(s.last_check_wall is not None for s in rack.snapshots().values()),
                            timeout=15_000)
            snaps = rack.snapshots()
            for sid, snap in snaps.items():
                assert cell(w, sid, Column.CHECK) == snap.check_type.replace("opcua", "OPC UA").upper()
            combo = w.findChild(QComboBox, "filter_check_type")
            words = [combo.itemText(i) for i in range(1, combo.count())]
            assert "HTTP" in words and len(words) == len({s.check_type for s in snaps.values()})
            sid = next(iter(snaps))
            w.select_services([sid])
            qloop.run(w.wait_idle(), timeout=10)
            history = qloop.run(rack.value_history(sid, 0.0), timeout=10)
            numeric = [s for s in snaps.values() if s.values]
            if not numeric:
                # The demo's devices answer HTTP: no values, and the value chart stays out of the way.
                assert history == [] and w.value_chart.isHidden()
            else:
                target = numeric[0]
                qtbot.waitUntil(lambda: len(qloop.run(rack.value_history(target.id, 0.0))) > 0, timeout=15_000)
            assert w.detail.text("check") == cell(w, sid, Column.CHECK)
        finally:
            w.shutdown()
    finally:
        rack.stop()


# ---------------------------------------------------------------- the real engine, a check that reads a number

@dataclass(frozen=True, slots=True)
class CounterCheck:
    """A device on loopback that sends one number per connection (a register behind a socket)."""

    TYPE: ClassVar[str] = "counter"
    host: str = opt("", "Host name or address.", required=True)
    port: int = opt(0, "TCP port.", min=1, max=65535, required=True)

    def target(self) -> str:
        return f"counter {self.host}:{self.port}"


class _CounterProbe:
    def __init__(self, s: CounterCheck) -> None:
        self.s = s

    async def run(self, endpoint: str) -> Any:
        del endpoint
        reader, writer = await asyncio.open_connection(self.s.host, self.s.port)
        try:
            n = int((await reader.readline()).strip())
        finally:
            writer.close()
            await writer.wait_closed()
        return healthy(0.2, "counter", value=n, detail=(("reading", str(n)), ("bounds", "none")))

    def describe_error(self, exc: BaseException) -> tuple[str, FailureType]:
        return f"{type(exc).__name__}: {exc}", FailureType.SERVICE_UNAVAILABLE

    async def close(self) -> None:
        return None


@pytest.fixture
def counter_device() -> Any:
    """A loopback server that answers 100, 101, 102, … (one per connection), in a thread of its own."""
    count = itertools.count(100)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(f"{next(count)}\n".encode())

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_real_engine_journals_a_checks_values_and_the_window_charts_them(
        qtbot, qloop, qsettings, tmp_path, monkeypatch, counter_device):
    import core.assembly
    import core.config
    from core.checks import registry
    from core.checks.base import CheckType

    types_ = {**registry.check_types(),
              "counter": CheckType("counter", CounterCheck, lambda s, ctx, svc: _CounterProbe(s), "A number.")}
    for module in (core.config, core.assembly):
        monkeypatch.setattr(module, "check_types", lambda: types_)
    path = tmp_path / "rack.toml"
    path.write_text(
        "[fault_detection]\ncheck_interval_seconds = 0.5\n"
        "[[services]]\nid = \"reg\"\nname = \"Register\"\ngroup = \"plc\"\n"
        f"check = {{ type = \"counter\", host = \"127.0.0.1\", port = {counter_device} }}\n", encoding="utf-8")
    engine = runner.EngineThread.from_path(str(path), state_dir=str(tmp_path / "state"))
    engine.start()
    try:
        w = MainWindow(engine, qsettings, tray=False, sound=False)
        qtbot.addWidget(w)
        w.show()
        w.start()
        try:
            qtbot.waitUntil(lambda: (engine.snapshots().get("reg") is not None
                                     and len(engine.snapshots()["reg"].values) >= 3), timeout=15_000)
            w.bridge.poll()
            assert cell(w, "reg", Column.CHECK) == "COUNTER"
            assert int(cell(w, "reg", Column.VALUE)) >= 102
            w.select_services(["reg"])
            qloop.run(w.wait_idle(), timeout=10)
            assert not w.value_chart.isHidden()
            rows = w.detail.check_rows()
            assert [label for label, _ in rows] == ["Reading", "Bounds"] and int(rows[0][1]) >= 102
            assert w.detail.text("target") == f"counter 127.0.0.1:{counter_device}"
            history = qloop.run(engine.value_history("reg", 0.0), timeout=10)
            values = [v for _, v in history]
            assert len(values) >= 3 and values == sorted(values) and values[0] >= 100.0  # journaled, in order
            w.value_chart.redraw_now()
            xs, ys = w.value_chart.curve_data()
            assert len(xs) >= 3 and list(ys) == sorted(ys) and ys[0] == values[0]  # history, then live values
            rollup = qloop.run(engine.value_history("reg", 0.0, rollup=True), timeout=10)
            assert 1 <= len(rollup) <= 2 and values[0] <= rollup[0][1] <= values[-1]
        finally:
            w.shutdown()
    finally:
        engine.stop()
