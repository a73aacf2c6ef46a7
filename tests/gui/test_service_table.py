"""gui/service_table.py on its own: rows re-sort at a bounded rate as values change (new rows at once),
selection by service id skips rows the filter hides, the theme reaches every delegate, and the
check-type filter offers the types in use without pulling the user's choice away."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from PySide6.QtCore import Qt

from fake_engine import START_WALL, demo_rack, device_rack, make_snapshot
from gui import palette
from gui.service_model import SERVICE_ID_ROLE, Column
from gui.service_table import RESORT_INTERVAL_S, CheckTypeFilter, ServiceTable


class Clock:
    def __init__(self) -> None:
        self.wall = START_WALL

    def __call__(self) -> float:
        return self.wall


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def table(qtbot: Any, clock: Clock) -> ServiceTable:
    t = ServiceTable(theme=palette.LIGHT, now=clock)
    qtbot.addWidget(t)
    t.update_snapshots(demo_rack(START_WALL))
    t.set_group_by_rack(False)
    return t


def top(t: ServiceTable) -> str:
    return str(t.filter_proxy.index(0, Column.NAME).data())


def test_value_changes_resort_at_a_bounded_rate_and_new_rows_at_once(table: ServiceTable, clock: Clock) -> None:
    table.sortByColumn(Column.P95_MS, Qt.SortOrder.DescendingOrder)
    assert top(table) == "Pump 1"
    conv2 = table.service_model.snapshot("conv-2")
    assert conv2 is not None
    assert not table.update_snapshots({"conv-2": dataclasses.replace(conv2, p95_ms=4000.0)})  # same type
    table.refresh()
    assert top(table) == "Conveyor 2"  # the first re-sort is due at once
    pump1 = table.service_model.snapshot("pump-1")
    assert pump1 is not None
    table.update_snapshots({"pump-1": dataclasses.replace(pump1, p95_ms=9000.0)})
    clock.wall += RESORT_INTERVAL_S / 2
    table.refresh()
    assert top(table) == "Conveyor 2"  # not yet: rows do not jump under the pointer
    clock.wall += RESORT_INTERVAL_S
    table.refresh()
    assert top(table) == "Pump 1"
    new = dataclasses.replace(make_snapshot("new", "New device"), p95_ms=99_000.0)
    assert table.update_snapshots({"new": new})  # a new service: the caller refreshes the type choices
    assert top(table) == "New device"  # placed at once


def test_select_services_by_id_skips_hidden_rows(table: ServiceTable) -> None:
    table.filter_proxy.set_filter_text("rack-a")
    table.select_services(["pump-1", "plc-1", "nope", "plc-2"])  # pump-1 is in rack-b: filtered out
    assert table.selected_ids() == ["plc-1", "plc-2"]
    assert [s.id for s in table.selected_snapshots()] == ["plc-1", "plc-2"]
    assert table.currentIndex().data(SERVICE_ID_ROLE) == "plc-1"  # the first shown becomes current
    table.remove_services(["plc-2"])
    assert table.selected_ids() == ["plc-1"]


def test_theme_reaches_model_and_every_delegate(table: ServiceTable) -> None:
    table.set_theme(palette.DARK)
    assert table.indicator_delegate.theme is palette.DARK
    assert table.sparkline_delegate.theme is palette.DARK
    assert table.value_delegate.theme is palette.DARK
    fg = table.service_model.index(table.service_model.row_of("comp"), Column.STATUS).data(
        Qt.ItemDataRole.ForegroundRole)
    assert fg.name() == palette.DARK.critical


def test_check_type_filter_offers_types_in_use_and_keeps_the_choice(qtbot: Any) -> None:
    combo = CheckTypeFilter()
    qtbot.addWidget(combo)
    chosen: list[str] = []
    combo.check_type_changed.connect(chosen.append)
    snaps = list(device_rack(START_WALL).values())
    combo.update_choices(snaps)
    types = [combo.itemData(i) for i in range(1, combo.count())]
    assert combo.itemText(0) == "All checks" and set(types) == {s.check_type for s in snaps}
    combo.setCurrentIndex(combo.findData("modbus"))
    assert chosen == ["modbus"]
    combo.update_choices([s for s in snaps if s.check_type != "modbus"])  # a reload dropped them
    assert combo.check_type() == "modbus"  # still offered while chosen
    assert chosen == ["modbus"]  # rebuilding the list is not a choice
