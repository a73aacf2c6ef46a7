"""The fleet table repaints only the changed rows that are on screen (gui/fleet_table.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

from gui.fleet_table import FleetTableView
from gui.service_model import SERVICE_ID_ROLE, Column, ServiceFilterProxy, ServiceTableModel
from tests.gui.fake_engine import make_snapshot


def _table(qtbot: Any, n: int = 300) -> tuple[FleetTableView, ServiceTableModel, ServiceFilterProxy]:
    model = ServiceTableModel()
    # Names sort in a different order than the rows arrive, as a sorted fleet does.
    model.update_snapshots({f"d{i:03d}": make_snapshot(f"d{i:03d}", f"n{(i * 37) % n:03d}") for i in range(n)})
    proxy = ServiceFilterProxy()
    proxy.setSourceModel(model)
    proxy.group_by_rack = False
    proxy.sort(Column.NAME)
    view = FleetTableView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    view.resize(900, 400)
    view.show()
    qtbot.waitExposed(view)
    return view, model, proxy


def _change(model: ServiceTableModel, sid: str) -> None:
    snap = model.snapshot(sid)
    assert snap is not None
    model.update_snapshots({sid: dataclasses.replace(snap, consecutive_failures=snap.consecutive_failures + 1)})


def test_only_visible_changed_rows_are_repainted(qtbot: Any) -> None:
    view, model, proxy = _table(qtbot)
    first, last = view.rowAt(0), view.rowAt(view.viewport().height() - 1)
    assert 0 <= first < last < 100
    on_screen = str(proxy.index(first + 1, 0).data(SERVICE_ID_ROLE))
    off_screen = str(proxy.index(250, 0).data(SERVICE_ID_ROLE))
    view.repainted_rows = 0
    _change(model, off_screen)
    assert view.repainted_rows == 0  # sorted far below the fold: nothing to paint
    _change(model, on_screen)
    assert view.repainted_rows == 1
    assert model.snapshot(on_screen).consecutive_failures == 1  # type: ignore[union-attr]


def test_a_change_to_every_row_repaints_the_visible_ones_only(qtbot: Any) -> None:
    view, model, _proxy = _table(qtbot)
    visible = view.rowAt(view.viewport().height() - 1) - view.rowAt(0) + 1
    view.repainted_rows = 0
    model.refresh_times()  # ages: a column over all 300 rows, three times
    assert view.repainted_rows == 3 * visible
    view.repainted_rows = 0
    model.update_snapshots({s.id: dataclasses.replace(s, checks_total=s.checks_total + 1) for s in model.snapshots()})
    assert view.repainted_rows == visible
