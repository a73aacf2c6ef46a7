"""Dependencies in the console: the detail panel names a device's parents and the devices behind it,
and a blocked device says what blocks it. Snapshots gain `depends_on`/`blocked_by` with the engine
wiring (fake_engine.with_relations sets them either way)."""

from __future__ import annotations

from core.events import ServiceStatus
from core.snapshot import ServiceSnapshot
from fake_engine import FakeEngine, make_snapshot, with_relations
from gui.detail_panel import DetailPanel
from gui.main_window import MainWindow


def related(sid: str, name: str, **kw: object) -> ServiceSnapshot:
    deps = tuple(kw.pop("depends_on", ()))  # type: ignore[arg-type]
    blocked = str(kw.pop("blocked_by", ""))
    return with_relations(make_snapshot(sid, name, "line-1", **kw), depends_on=deps, blocked_by=blocked)


def test_detail_panel_names_parents_children_and_what_blocks(qtbot):
    panel = DetailPanel()
    qtbot.addWidget(panel)
    panel.children_of = lambda sid: [f"PLC {i}" for i in range(1, 11)] if sid == "switch-3" else []
    panel.set_snapshot(related("switch-3", "Switch 3", status=ServiceStatus.UNHEALTHY, failed=True))
    assert panel.text("depends_on") == "nothing"
    assert panel.text("behind") == "PLC 1, PLC 2, PLC 3, PLC 4, PLC 5 … (10 devices)"
    panel.set_snapshot(related("plc-1", "PLC 1", depends_on=("switch-3",), blocked_by="switch-3",
                               status=ServiceStatus.UNHEALTHY, failed=True))
    assert panel.text("depends_on") == "switch-3 — BLOCKED BY switch-3 (down)"
    assert panel.text("behind") == "nothing"
    assert panel.status.indicator.word == "BLOCKED BY switch-3"


def test_main_window_finds_the_devices_behind_the_selected_one(qtbot, qloop, qsettings):
    engine = FakeEngine({"switch-3": related("switch-3", "Switch 3"),
                         **{f"plc-{i}": related(f"plc-{i}", f"PLC {i}", depends_on=("switch-3",))
                            for i in range(1, 4)},
                         "other": related("other", "Other")})
    w = MainWindow(engine, qsettings, now=engine.now, tray=False, sound=False)
    qtbot.addWidget(w)
    try:
        w.bridge.poll()
        w.select_services(["switch-3"])
        assert w.detail.text("behind") == "PLC 1, PLC 2, PLC 3"
        w.select_services(["plc-2"])
        assert w.detail.text("depends_on") == "switch-3"
    finally:
        w.shutdown()


def test_a_dead_switch_is_one_alarm_and_its_ten_children_count_as_blocked(qtbot, qloop, qsettings):
    """The window's own summary: one unhealthy switch, ten blocked devices behind it (their breakers
    open, since their checks fail through the switch), none of them counted or painted as an alarm."""
    from core.events import BreakerState
    from core.snapshot import BreakerView

    opened = BreakerView(BreakerState.OPEN, 3, 0, 1, 0, 2, 5, 20.0)
    engine = FakeEngine({"switch-3": related("switch-3", "Switch 3", status=ServiceStatus.UNHEALTHY, failed=True,
                                             breaker=opened),
                         **{f"plc-{i}": related(f"plc-{i}", f"PLC {i}", depends_on=("switch-3",),
                                                blocked_by="switch-3", status=ServiceStatus.UNHEALTHY, failed=True,
                                                breaker=opened)
                            for i in range(1, 11)}})
    w = MainWindow(engine, qsettings, now=engine.now, tray=False, sound=False)
    qtbot.addWidget(w)
    try:
        w.bridge.poll()
        summary = w.summary_text()
        assert "1 unhealthy" in summary and "10 blocked" in summary, summary
        child = engine.snapshots()["plc-4"]
        status, breaker = w.model.indicators(child)
        assert (status.word, status.role) == ("BLOCKED BY switch-3", "normal")
        assert (breaker.word, breaker.role) == ("OPEN 20s", "normal")
        assert w.model.indicators(engine.snapshots()["switch-3"])[1].role == "critical"
    finally:
        w.shutdown()
