"""The Reports view, offscreen: period picker, sortable table, charts, exports, reached from the window."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QPushButton, QTableView

from core.config import load_config
from gui.reports_view import ReportsView
from tests.core.report_journal import PERIOD, write_scenario

CONFIG = """
[[services]]
id = "a"
endpoint = "http://127.0.0.1:9"
group = "rack1"
[[services]]
id = "b"
endpoint = "http://127.0.0.1:9"
group = "rack1"
[[services]]
id = "c"
endpoint = "http://127.0.0.1:9"
group = "rack2"
"""


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reports") / "faultwatch.db"
    write_scenario(path)
    return path


@pytest.fixture
def view(qtbot, journal: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    cfg_path = tmp_path / "rack.toml"
    cfg_path.write_text(CONFIG, encoding="utf-8")
    config = load_config(str(cfg_path))
    v = ReportsView(lambda: journal, lambda: config, now=lambda: PERIOD[1])
    qtbot.addWidget(v)
    v.show()
    with qtbot.waitSignal(v.report_ready, timeout=10_000):
        v.set_custom_period(*PERIOD)
    yield v
    v.close()


def column(table: QTableView, col: int) -> list[str]:
    m = table.model()
    return [m.index(r, col).data() for r in range(m.rowCount())]


def test_custom_period_fills_table_summary_and_charts(view: ReportsView) -> None:
    assert view.objectName() == "reports_view"
    table = view.findChild(QTableView, "report_table")
    assert column(table, 0) == ["a", "b", "c"]  # sorted by availability, worst first
    assert column(table, 2) == ["90.970 %", "95.539 %", "100.000 %"]
    assert column(table, 1) == ["rack1", "rack1", "rack2"]
    assert "95.167 %" in view.summary.text() and "3 outages" in view.summary.text()
    assert not view.chart.pixmap().isNull() and not view.timeline.pixmap().isNull()
    assert view.chart.pixmap().height() > 3 * 18  # a bar per device
    outages = view.findChild(QTableView, "report_outages")
    assert column(outages, 0) == ["b", "a", "a"]
    assert all(view.export_buttons[f].isEnabled() for f in ("csv", "html", "pdf"))


def test_table_sorts_by_the_number_not_the_text(qtbot, view: ReportsView) -> None:  # type: ignore[no-untyped-def]
    table = view.findChild(QTableView, "report_table")
    table.sortByColumn(4, Qt.SortOrder.DescendingOrder)  # downtime: 3m20s > 2m00s > 0s
    assert column(table, 0) == ["a", "b", "c"]
    table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
    assert column(table, 0) == ["c", "b", "a"]


def test_presets_recompute_off_the_gui_thread(qtbot, view: ReportsView) -> None:  # type: ignore[no-untyped-def]
    period = view.findChild(QComboBox, "report_period")
    assert [period.itemText(i) for i in range(period.count())] == ["Last hour", "Last 24 hours", "Last 7 days",
                                                                   "Custom…"]
    with qtbot.waitSignal(view.report_ready, timeout=10_000):
        period.setCurrentIndex(0)  # last hour before "now" = the period's end
    assert view.report is not None and view.report.until - view.report.since == 3600.0
    assert not view.since_edit.isEnabled()
    with qtbot.waitSignal(view.report_ready, timeout=10_000):
        period.setCurrentIndex(2)
    assert view.report is not None and view.report.until - view.report.since == 7 * 86_400.0
    assert "computed in" in view.status.text()


def test_exports(view: ReportsView, tmp_path: Path) -> None:
    for fmt in ("csv", "html", "pdf"):
        view.export(fmt, tmp_path / f"r.{fmt}")
    assert (tmp_path / "r.csv").read_text(encoding="utf-8").startswith("# period,")
    assert "<svg" in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")


def test_no_journal_says_so(qtbot) -> None:  # type: ignore[no-untyped-def]
    v = ReportsView(lambda: None, lambda: None)
    qtbot.addWidget(v)
    v.refresh()
    assert v.report is None and "no journal" in v.status.text()
    assert not v.findChild(QPushButton, "report_export_pdf").isEnabled()


def test_unreadable_journal_is_a_status_line(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    v = ReportsView(lambda: tmp_path / "absent.db", lambda: None)
    qtbot.addWidget(v)
    with qtbot.waitSignal(v.report_ready, timeout=10_000):
        v.refresh()
    assert v.report is None and "no journal here" in v.status.text()


def test_main_window_opens_reports_from_its_menu_action(qtbot, qloop, qsettings) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtGui import QAction

    from fake_engine import FakeEngine
    from gui.main_window import MainWindow

    engine = FakeEngine()
    w = MainWindow(engine, qsettings, now=engine.now, tray=False, sound=False)
    qtbot.addWidget(w)
    try:
        action = w.findChild(QAction, "action_reports")
        assert action is not None and action.shortcut().toString() == "Ctrl+Shift+P"
        action.trigger()
        view = w.findChild(ReportsView, "reports_view")
        assert view is not None and view.isVisible()
        assert "no journal" in view.status.text()  # the fake engine keeps none
        view.close()
        action.trigger()
        assert w.findChildren(ReportsView) == [view] and view.isVisible()  # the same window, shown again
        view.refresh()  # and it still computes after having been closed
        assert "no journal" in view.status.text()
    finally:
        w.shutdown()


def test_export_button_saves_off_the_gui_thread(qtbot, view: ReportsView, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "from-button.pdf"
    monkeypatch.setattr("gui.reports_view.QFileDialog.getSaveFileName", lambda *a, **k: (str(target), ""))
    qtbot.mouseClick(view.findChild(QPushButton, "report_export_pdf"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.status.text().startswith("saved"), timeout=20_000)
    assert target.read_bytes().startswith(b"%PDF")


def test_group_picker_lists_the_config_groups_and_filters(qtbot, view: ReportsView) -> None:  # type: ignore[no-untyped-def]
    groups = view.findChild(QComboBox, "report_group")
    assert [groups.itemText(i) for i in range(groups.count())] == ["All groups", "rack1", "rack2"]
    with qtbot.waitSignal(view.report_ready, timeout=10_000):
        groups.setCurrentIndex(2)
    assert view.report is not None and [s.id for s in view.report.services] == ["c"]
    assert view.report.scope == "group rack2"
    with qtbot.waitSignal(view.report_ready, timeout=10_000):
        view.refresh()
    assert groups.currentText() == "rack2"  # kept across refreshes


def test_closed_and_reopened_view_still_computes(qtbot, view: ReportsView) -> None:  # type: ignore[no-untyped-def]
    view.close()
    view.show()
    with qtbot.waitSignal(view.report_ready, timeout=10_000):
        view.refresh()
    assert view.report is not None and len(view.report.services) == 3
