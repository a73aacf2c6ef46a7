"""View → Group by dependency: each parent with the devices behind it beneath it, the rest in their
own section; toggled by objectName, remembered, selection kept (pytest-qt, offscreen)."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QSettings, Qt

from core.events import ServiceStatus
from fake_engine import FakeEngine, make_snapshot
from gui.dependency_tree import TreeMark, arrange, tree_name, tree_tip
from gui.main_window import MainWindow
from gui.service_model import SERVICE_ID_ROLE, Column

PLCS = [f"plc-{i:02d}" for i in range(1, 11)]


def fleet() -> dict[str, object]:
    snaps = {"switch-3": make_snapshot("switch-3", "Switch 3", "line-1", status=ServiceStatus.UNHEALTHY, failed=True)}
    for i, sid in enumerate(PLCS, start=1):
        snaps[sid] = make_snapshot(sid, f"PLC {i:02d}", "line-1", depends_on=("switch-3",), blocked_by="switch-3",
                                   status=ServiceStatus.UNHEALTHY, failed=True)
    # Names that sort between and around the switch's, so a flat table interleaves them.
    for sid, name in (("hmi", "HMI panel"), ("ups", "UPS"), ("aa-camera", "A camera"), ("scale", "Scale")):
        snaps[sid] = make_snapshot(sid, name, "line-1")
    return snaps


def rows(w: MainWindow, column: int = Column.NAME) -> list[str]:
    return [str(w.proxy.index(r, column).data(Qt.ItemDataRole.DisplayRole)) for r in range(w.proxy.rowCount())]


def ids(w: MainWindow) -> list[str]:
    return [str(w.proxy.index(r, 0).data(SERVICE_ID_ROLE)) for r in range(w.proxy.rowCount())]


def make_window(qtbot, engine: FakeEngine, settings: QSettings) -> MainWindow:
    w = MainWindow(engine, settings, now=engine.now, tray=False, sound=False)
    qtbot.addWidget(w)
    w.bridge.poll()
    return w


def test_arrange_puts_children_under_parents_at_any_depth_then_the_rest() -> None:
    parents = {"plc-1": ["gw"], "plc-2": ["gw", "switch"], "gw": ["switch"], "cam": ["nowhere"],
               "a": ["b"], "b": ["a"]}  # a cycle: refused at load, shown flat if a stale view has one
    order, marks = arrange(["a", "b", "cam", "gw", "plc-1", "plc-2", "switch", "ups"],
                           lambda sid: parents.get(sid, []))
    assert order == ["switch", "gw", "plc-1", "plc-2", "a", "b", "cam", "ups"]
    assert marks["switch"] == TreeMark(depth=0, behind=1, section_start=True)
    assert marks["gw"] == TreeMark(depth=1, behind=2, parent="switch")
    assert marks["plc-2"] == TreeMark(depth=2, parent="gw")  # under its first parent only
    assert marks["a"].section_start and not marks["b"].section_start and not marks["cam"].in_tree
    assert tree_name(marks["switch"], "Switch") == "▾ Switch"
    assert tree_name(marks["plc-1"], "PLC 1").endswith("↳ PLC 1")
    assert tree_tip(marks["gw"], "Gateway") == "Gateway — behind switch — 2 devices behind it"
    assert tree_tip(marks["ups"], "UPS") == "UPS — no dependencies"


def test_group_by_dependency_shows_the_switch_with_its_ten_children_and_back(qtbot, qloop, qsettings):
    engine = FakeEngine(fleet())
    w = make_window(qtbot, engine, qsettings)
    try:
        action = w.named_actions["action_group_by_dependency"]
        assert not action.isChecked()
        view_menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&View")
        names_in_menu = [a.objectName() for a in view_menu.actions()]
        assert names_in_menu.index("action_group_by_dependency") == names_in_menu.index("action_group_by_rack") + 1
        flat = ids(w)
        assert flat.index("switch-3") > flat.index("plc-01")  # "PLC…" sorts before "Switch…"
        w.select_services(["plc-05"])
        action.trigger()
        assert action.isChecked()
        grouped = ids(w)
        assert grouped[:11] == ["switch-3", *PLCS]
        assert grouped[11:] == ["aa-camera", "hmi", "scale", "ups"]  # their own section, in name order
        names = rows(w)
        assert names[0] == "▾ Switch 3"
        assert all(n.endswith(f"↳ PLC {i:02d}") for i, n in enumerate(names[1:11], start=1))
        assert names[11:] == ["A camera", "HMI panel", "Scale", "UPS"]
        assert set(rows(w, Column.STATUS)[1:11]) == {"BLOCKED BY switch-3"}
        fm = w.table.fontMetrics()
        assert w.table.columnWidth(Column.STATUS) > fm.horizontalAdvance("BLOCKED BY switch-3")  # shown whole
        assert w.proxy.index(1, Column.NAME).data(Qt.ItemDataRole.ToolTipRole) == "PLC 01 — behind switch-3"
        assert w.table.row_delegate.section_rows == frozenset({11})  # a rule above the section without dependencies
        assert w.selected_ids() == ["plc-05"]
        assert w.detail.text("id") == "plc-05"
        assert qsettings.value("view/group_by_dependency") in (True, "true")

        action.trigger()  # back to the flat view
        assert ids(w) == flat
        assert rows(w)[flat.index("switch-3")] == "Switch 3"
        assert w.table.row_delegate.section_rows == frozenset()
        assert w.selected_ids() == ["plc-05"]
    finally:
        w.shutdown()


def test_grouping_follows_sorting_new_services_and_is_remembered(qtbot, qloop, qsettings):
    engine = FakeEngine(fleet())
    w = make_window(qtbot, engine, qsettings)
    try:
        w.named_actions["action_group_by_dependency"].trigger()
        w.table.sortByColumn(Column.NAME, Qt.SortOrder.DescendingOrder)
        grouped = ids(w)
        assert grouped[:11] == ["switch-3", *reversed(PLCS)]  # parents stay above children either way
        assert grouped[11:] == ["ups", "scale", "hmi", "aa-camera"]
        w.table.sortByColumn(Column.NAME, Qt.SortOrder.AscendingOrder)
        # A reload adds a device behind the switch: it goes to its place under it.
        engine.set_snapshot(make_snapshot("plc-11", "PLC 11", "line-1", depends_on=("switch-3",)))
        w.bridge.poll()
        assert ids(w)[:12] == ["switch-3", *PLCS, "plc-11"]
        # A device that no longer depends on anything leaves the tree at the next re-sort.
        engine.set_snapshot(dataclasses.replace(engine.snapshots()["plc-11"], depends_on=()))
        w.bridge.poll()
        w.proxy.resort()
        assert ids(w)[11] != "plc-11" and "plc-11" in ids(w)[11:]
    finally:
        w.shutdown()
    w.close()
    again = make_window(qtbot, engine, qsettings)
    try:
        assert again.named_actions["action_group_by_dependency"].isChecked()
        assert ids(again)[:11] == ["switch-3", *PLCS]
    finally:
        again.shutdown()


def test_filtering_keeps_children_under_the_switch(qtbot, qloop, qsettings):
    engine = FakeEngine(fleet())
    w = make_window(qtbot, engine, qsettings)
    try:
        w.named_actions["action_group_by_dependency"].trigger()
        w.filter_box.setText("line-1")
        assert ids(w)[:11] == ["switch-3", *PLCS]
        w.filter_box.setText("PLC 0")
        assert ids(w) == PLCS[:9]  # "PLC 10" does not match
    finally:
        w.shutdown()
