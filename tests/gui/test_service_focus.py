"""gui/service_focus.py with real views and the FakeEngine: focusing loads the device's history for
the charts' range, an answer for a device no longer focused is dropped, a new check adds one point,
only the focused device's events mark the chart, a range picked on either chart moves both, and a
removed device leaves the focus."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Coroutine

import pytest
from PySide6.QtWidgets import QPushButton, QWidget

from core.events import BreakerEvent, BreakerState, RebootEvent
from fake_engine import FakeEngine, demo_rack, device_rack
from gui.chart import LatencyChart
from gui.detail_panel import DetailPanel
from gui.service_focus import ServiceFocus
from gui.timeline import TimelineView
from gui.value_chart import ValueChart


class Harness:
    def __init__(self, parent: QWidget, engine: FakeEngine) -> None:
        self.parent = parent  # owns the views (qtbot holds widgets only weakly)
        self.engine = engine
        self.tasks: list[asyncio.Future[Any]] = []
        self.detail = DetailPanel(parent, now=engine.now)
        self.chart = LatencyChart(parent, clock=engine.now)
        self.value_chart = ValueChart(parent, clock=engine.now)
        self.timeline = TimelineView(parent)
        self.focus = ServiceFocus(engine, self.detail, self.chart, self.value_chart, self.timeline,
                                  lambda sid: engine.snapshots().get(sid), self.spawn, engine.now, parent)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.append(task)
        return task

    def history_calls(self) -> list[tuple[Any, ...]]:
        return [c for c in self.engine.calls if c[0] in ("latency_history", "value_history")]


@pytest.fixture
def h(qtbot, qloop) -> Harness:  # type: ignore[no-untyped-def]
    parent = QWidget()
    qtbot.addWidget(parent)
    return Harness(parent, FakeEngine({**demo_rack(), **device_rack()}))  # furnace reads values


def settle(qloop: Any, h: Harness) -> None:
    qloop.run(asyncio.gather(*h.tasks))


def test_focus_loads_history_for_the_range_and_drops_stale_answers(qloop, h: Harness) -> None:
    h.focus.focus("chiller")
    h.focus.focus("plc-1")  # moved on before the engine answered for the chiller
    settle(qloop, h)
    since = h.engine.wall - h.chart.range_seconds()
    assert ("latency_history", "chiller", since, False) in h.history_calls()
    assert ("latency_history", "plc-1", since, False) in h.history_calls()
    assert h.focus.service_id() == "plc-1"
    assert h.detail.snapshot is not None and h.detail.snapshot.id == "plc-1"
    h.chart.redraw_now()
    xs, _ys = h.chart.curve_data()
    assert len(xs) > 0  # plc-1's history, not the chiller's, which was dropped on arrival
    h.focus.focus("plc-1")  # the same device again: nothing is loaded twice
    assert len(h.history_calls()) == 4


def test_a_new_check_adds_one_point_and_only_the_focused_device_marks_the_chart(qloop, h: Harness,
                                                                               monkeypatch) -> None:  # type: ignore[no-untyped-def]
    h.focus.focus("pump-2")
    settle(qloop, h)
    points: list[tuple[float, Any]] = []
    markers: list[tuple[str, str, bool]] = []
    reboots: list[float] = []
    monkeypatch.setattr(h.chart, "add_point", lambda w, ms: points.append((w, ms)))
    monkeypatch.setattr(h.chart, "add_marker", lambda w, k, t, quiet=False: markers.append((k, t, quiet)))
    monkeypatch.setattr(h.value_chart, "add_reboot", reboots.append)
    snap = dataclasses.replace(h.engine.snapshots()["pump-2"], last_check_wall=h.engine.wall + 1,
                               last_latency_ms=55.0)
    h.focus.update_snapshots({"pump-2": snap})
    h.focus.update_snapshots({"pump-2": snap})  # the same check again: no second point
    h.focus.update_snapshots({"plc-1": h.engine.snapshots()["plc-1"]})  # another device: nothing
    assert points == [(h.engine.wall + 1, 55.0)]
    kw = dict(mono=0.0, wall=h.engine.wall, from_state=BreakerState.CLOSED, to_state=BreakerState.OPEN,
              reason="5 failures")
    h.focus.add_events([BreakerEvent(service="plc-1", **kw), BreakerEvent(service="pump-2", **kw),
                        RebootEvent(service="pump-2", mono=0.0, wall=h.engine.wall, reason="uptime went back"),
                        BreakerEvent(service="pump-2", blocked_by="switch-3", **kw)])
    assert markers == [("breaker", "OPEN", False), ("breaker", "OPEN", True)]  # behind a down parent: quiet
    assert reboots == [h.engine.wall]


def test_a_range_picked_on_either_chart_moves_both_and_reloads(qtbot, qloop, h: Harness) -> None:  # type: ignore[no-untyped-def]
    h.focus.focus("furnace")
    settle(qloop, h)
    before = len(h.history_calls())
    button = h.value_chart.findChild(QPushButton, "value_range_3600")
    assert button is not None
    button.click()
    settle(qloop, h)
    assert h.chart.range_seconds() == h.value_chart.range_seconds() == 3600
    assert ("latency_history", "furnace", h.engine.wall - 3600, False) in h.history_calls()[before:]
    h.chart.findChild(QPushButton, "range_86400").click()
    settle(qloop, h)
    assert h.value_chart.range_seconds() == 86400
    assert ("value_history", "furnace", h.engine.wall - 86400, True) in h.history_calls()


def test_a_removed_device_leaves_the_focus(qloop, h: Harness) -> None:
    h.focus.focus("conv-2")
    settle(qloop, h)
    h.focus.remove_services(["other"])
    assert h.focus.service_id() == "conv-2"
    h.focus.remove_services(["conv-2"])
    assert h.focus.service_id() is None and h.detail.snapshot is None
    h.focus.reload_history()  # nothing focused: nothing to load
    assert not [t for t in h.tasks if not t.done()]
