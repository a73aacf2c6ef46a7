"""gui/timeline: events newest first, describing them, filters, cap, history merge, CSV export."""

from __future__ import annotations

import csv

import pytest
from PySide6.QtCore import Qt

from core.events import (ActionEvent, AnomalyEvent, BreakerEvent, BreakerState, ProbeEvent, RecoveryEvent,
                         RecoveryOutcome, ServiceStatus)
from core.describe import describe_event
from gui.timeline import (CSV_HEADER, TimelineColumn, TimelineModel, TimelineView, event_role,
                          export_csv)

W = 1_780_000_000.0


def breaker(service: str = "plc-1", wall: float = W, seq: int = 0) -> BreakerEvent:
    return BreakerEvent(service=service, mono=0.0, wall=wall, seq=seq, from_state=BreakerState.CLOSED,
                        to_state=BreakerState.OPEN, reason="5 consecutive failures")


def probe(service: str = "pump-1", wall: float = W, seq: int = 0) -> ProbeEvent:
    return ProbeEvent(service=service, mono=0.0, wall=wall, seq=seq, status=ServiceStatus.DEGRADED,
                      latency_ms=1480.0, error=None, consecutive_failures=0)


def action(service: str = "plc-1", wall: float = W, seq: int = 0, ok: bool = True) -> ActionEvent:
    return ActionEvent(service=service, mono=0.0, wall=wall, seq=seq, command="force_open", origin="gui", ok=ok)


@pytest.fixture
def view(qtbot) -> TimelineView:
    v = TimelineView()
    qtbot.addWidget(v)
    v.model.names.update({"plc-1": "PLC line 1", "pump-1": "Pump 1"})
    return v


def rows(v: TimelineView) -> list[tuple[str, str, str]]:
    p = v.proxy
    return [(p.index(r, TimelineColumn.DEVICE).data(), p.index(r, TimelineColumn.KIND).data(),
             p.index(r, TimelineColumn.WHAT).data()) for r in range(p.rowCount())]


def test_breaker_event_row_newest_on_top(view):
    view.model.add_events([probe(wall=W - 5, seq=1), breaker(wall=W, seq=2)])
    assert rows(view) == [("PLC line 1", "breaker", "breaker CLOSED → OPEN"),
                          ("Pump 1", "probe", "DEGRADED 1480 ms")]
    why = view.proxy.index(0, TimelineColumn.WHY).data()
    assert why == "5 consecutive failures"
    assert view.table.objectName() == "timeline"


def test_filter_by_selected_device_kind_and_text(view):
    view.model.add_events([probe(seq=1), breaker(seq=2), action(seq=3), breaker("pump-1", seq=4)])
    view.set_selected_service("plc-1")
    assert len(rows(view)) == 4  # not filtering until "Selected device only" is on
    view.selected_only.setChecked(True)
    assert {r[0] for r in rows(view)} == {"PLC line 1"}
    view.set_selected_service("pump-1")
    assert {r[0] for r in rows(view)} == {"Pump 1"}
    view.selected_only.setChecked(False)
    view.kind_box.setCurrentIndex(view.kind_box.findData("breaker"))
    assert [r[1] for r in rows(view)] == ["breaker", "breaker"]
    view.kind_box.setCurrentIndex(0)
    view.text_box.setText("force open")
    assert rows(view) == [("PLC line 1", "action", "force open done")]


def test_cap_drops_oldest(qapp):
    m = TimelineModel(cap=3)
    m.add_events([action(wall=W + i, seq=i + 1) for i in range(5)])
    assert [e.seq for e in m.events()] == [5, 4, 3]
    m.add_events([action(wall=W + 10, seq=6)])
    assert [e.seq for e in m.events()] == [6, 5, 4]


def test_history_merges_and_skips_duplicates(qapp):
    m = TimelineModel()
    m.add_events([action(wall=W, seq=10)])
    m.load_history([breaker(wall=W - 100, seq=3), action(wall=W, seq=10), probe(wall=W - 50, seq=7)])
    assert [e.seq for e in m.events()] == [10, 7, 3]
    m.add_events([action(wall=W, seq=10)])  # already shown
    assert len(m.events()) == 3


def test_export_csv_writes_rows(view, tmp_path):
    view.model.add_events([probe(seq=1), breaker(seq=2), action(seq=3)])
    view.text_box.setText("plc")
    path = tmp_path / "timeline.csv"
    count = view.export_to(str(path))
    assert count == 2
    with open(path, newline="", encoding="utf-8") as fh:
        data = list(csv.reader(fh))
    assert tuple(data[0]) == CSV_HEADER
    assert data[1][1:6] == ["3", "plc-1", "PLC line 1", "action", "force open done"]
    assert data[2][4] == "breaker" and data[2][6] == "5 consecutive failures"
    assert data[1][0].endswith("Z")  # ISO UTC


def test_export_csv_function_without_widgets(tmp_path):
    path = tmp_path / "x.csv"
    assert export_csv([breaker(seq=1)], path) == 1
    text = path.read_text(encoding="utf-8")
    assert "breaker CLOSED → OPEN" in text
    assert "authorization" not in text.lower() and "token" not in text.lower()


@pytest.mark.parametrize("event, what, role", [
    (RecoveryEvent(service="s", mono=0, wall=W, recovery_id="r", strategy="restart", attempt=2, max_attempts=3,
                   outcome=RecoveryOutcome.GAVE_UP, detail="storm guard"), "restart 2/3 gave up", "critical"),
    (AnomalyEvent(service="s", mono=0, wall=W, latency_ms=900.0, baseline_ms=40.0, score=7.5),
     "latency anomaly 900 ms (baseline 40 ms)", "warning"),
    (action(ok=False), "force open FAILED", "critical"),
    (BreakerEvent(service="s", mono=0, wall=W, from_state=BreakerState.CLOSED, to_state=BreakerState.FORCED_OPEN,
                  reason="operator"), "breaker CLOSED → FORCED-OPEN", "suppressed"),
])
def test_describe_event(event, what, role):
    assert describe_event(event)[0] == what
    assert event_role(event) == role


def test_event_rows_tinted_only_for_trouble(view):
    from gui import palette

    view.model.add_events([action(seq=1), breaker(seq=2)])
    fg = Qt.ItemDataRole.ForegroundRole
    assert view.proxy.index(0, TimelineColumn.WHAT).data(fg).name() == palette.LIGHT.critical
    assert view.proxy.index(1, TimelineColumn.WHAT).data(fg) is None


def test_a_blocked_devices_breaker_moves_are_quiet_rows_that_say_why() -> None:
    opened = BreakerEvent(service="plc-4", mono=1.0, wall=1_700_000_000.0, from_state=BreakerState.HALF_OPEN,
                          to_state=BreakerState.OPEN, reason="failure in half-open: timeout")
    assert event_role(opened) == "critical"
    blocked = BreakerEvent(service="plc-4", mono=1.0, wall=1_700_000_000.0, from_state=BreakerState.HALF_OPEN,
                           to_state=BreakerState.OPEN, reason="failure in half-open: timeout", blocked_by="switch-3")
    assert event_role(blocked) == "normal"
    assert describe_event(blocked)[1] == "failure in half-open: timeout · blocked by switch-3"
    assert blocked.to_record()["blocked_by"] == "switch-3"
