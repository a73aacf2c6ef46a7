"""Counts kept up to date from the changed services equal counts made from scratch, after any sequence.

The status bar (presentation.Tally over status_keys) and the tray (worst state and tooltip) no longer
recount the fleet on every bridge poll; these properties pin them to the from-scratch definitions
(service_model.status_counts, tray.fleet_tooltip, and the worst-state rule as it was written first).
"""

from __future__ import annotations

import dataclasses
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from core.events import BreakerState, RecoveryState, RecoveryStrategyName, ServiceStatus
from core.snapshot import BreakerView, RecoveryView, ServiceSnapshot
from gui import palette, presentation
from gui.service_model import status_counts
from gui.tray import TrayNotifier, fleet_tooltip
from gui.wall import SUMMARY_KEYS, WallView, summary_category, tile_indicators
from tests.gui.fake_engine import make_snapshot


def _variants() -> list[ServiceSnapshot]:
    base = make_snapshot("d", "Device", "rack")
    out = []
    for status, failed, breaker, recovering, maint, paused in itertools.product(
            list(ServiceStatus), (False, True), (BreakerState.CLOSED, BreakerState.OPEN, BreakerState.FORCED_OPEN,
                                                 BreakerState.HALF_OPEN),
            (False, True), (False, True), (False, True)):
        if failed and status is not ServiceStatus.UNHEALTHY:
            continue
        rec = RecoveryView("r", RecoveryStrategyName.RESTART, RecoveryState.IN_PROGRESS, 1, 3, None, "") \
            if recovering else None
        out.append(dataclasses.replace(
            base, status=status, failed=failed, consecutive_failures=3 if failed else 0,
            breaker=BreakerView(breaker, 0, 0, 1, 0, 2, 5, None), recovery=rec, maintenance=maint, paused=paused))
    return out


VARIANTS = _variants()
IDS = [f"site-{i % 2}/dev-{i}" for i in range(6)]

# One bridge poll: some services change (to a variant, or to the very object they had: "unchanged"),
# some disappear.
_poll = st.tuples(
    st.dictionaries(st.sampled_from(IDS), st.one_of(st.none(), st.integers(0, len(VARIANTS) - 1)), max_size=6),
    st.sets(st.sampled_from(IDS), max_size=3))


def _apply(fleet: dict[str, ServiceSnapshot], poll: tuple[dict[str, int | None], set[str]]
           ) -> tuple[dict[str, ServiceSnapshot], dict[str, ServiceSnapshot], list[str]]:
    """The next fleet (a new dict, as the bridge makes), what changed in it and what was removed."""
    changes, removals = poll
    new = dict(fleet)
    changed: dict[str, ServiceSnapshot] = {}
    for sid, variant in changes.items():
        if variant is None:
            if sid in fleet:
                changed[sid] = fleet[sid]  # the same object again
            continue
        changed[sid] = new[sid] = dataclasses.replace(VARIANTS[variant], id=sid, name=sid)
    removed = [sid for sid in removals if sid in new and sid not in changed]
    for sid in removed:
        del new[sid]
    return new, changed, removed


def _worst_from_scratch(snaps: dict[str, ServiceSnapshot]) -> palette.Indicator:
    """The tray's rule as first written: most severe tile state, ties to the first id in order."""
    worst = palette.Indicator("normal", "circle", "ALL HEALTHY")
    for sid in sorted(snaps):
        s, br, role = tile_indicators(snaps[sid])
        if palette.STATUS_ORDER[role] < palette.STATUS_ORDER[worst.role]:
            shown = s if s.role == role or br is None else br
            worst = palette.Indicator(role, shown.shape, shown.word)
    return worst


@settings(max_examples=300, deadline=None)
@given(st.lists(_poll, max_size=12))
def test_tally_after_any_sequence_equals_status_counts_from_scratch(polls: list) -> None:  # type: ignore[type-arg]
    by_update = presentation.Tally(presentation.status_keys, presentation.STATUS_KEYS)
    by_sync = presentation.Tally(presentation.status_keys, presentation.STATUS_KEYS)
    fleet: dict[str, ServiceSnapshot] = {}
    for poll in polls:
        fleet, changed, removed = _apply(fleet, poll)
        before = by_update.counts()
        moved = by_update.update(changed, removed)
        by_sync.sync(fleet)
        expected = status_counts(fleet.values())
        assert by_update.counts() == expected
        assert by_sync.counts() == expected
        assert moved == (before != expected)  # "moved" is what consumers redraw on
        assert len(by_update) == len(fleet)


@settings(max_examples=150, deadline=None)
@given(st.lists(_poll, max_size=12))
def test_tray_after_any_sequence_shows_the_fleet_as_computed_from_scratch(qapp, polls: list) -> None:  # type: ignore[no-untyped-def, type-arg]
    tray = TrayNotifier(show=False)
    try:
        fleet: dict[str, ServiceSnapshot] = {}
        for poll in polls:
            fleet, _changed, _removed = _apply(fleet, poll)
            tray.update_snapshots(fleet)
            assert tray.indicator == _worst_from_scratch(fleet)
            if fleet:
                assert tray.icon.toolTip() == fleet_tooltip(fleet)
    finally:
        tray.deleteLater()


def test_tally_counts_a_service_once_whatever_it_is_sent_as() -> None:
    tally = presentation.Tally(presentation.status_keys, presentation.STATUS_KEYS)
    healthy = dataclasses.replace(VARIANTS[0], id="a")
    assert tally.update({"a": healthy}) is True
    assert tally.update({"a": healthy}) is False  # the same object: nothing to do
    assert tally.update({"a": dataclasses.replace(healthy)}) is False  # equal: counts did not move
    forced = dataclasses.replace(healthy, breaker=dataclasses.replace(healthy.breaker, state=BreakerState.FORCED_OPEN))
    assert tally.update({"a": forced}) is True
    assert tally.counts()["forced"] == 1 and sum(tally.counts()[str(c)] for c in presentation.Category) == 1
    assert tally.update({}, ["a", "never-seen"]) is True
    assert tally.counts() == {k: 0 for k in presentation.STATUS_KEYS}


def _wall_state(wall: WallView) -> tuple:  # type: ignore[type-arg]
    return (wall.summary_counts(), wall.summary_text(), wall._abnormal_cells, wall._rack_critical,
            wall._group_all_critical, wall._trouble_ids)


@settings(max_examples=150, deadline=None)
@given(st.lists(_poll, max_size=12))
def test_wall_after_any_sequence_equals_a_wall_given_the_final_fleet_at_once(qapp, polls: list) -> None:  # type: ignore[no-untyped-def, type-arg]
    wall = WallView()
    try:
        fleet: dict[str, ServiceSnapshot] = {}
        for poll in polls:
            fleet, _changed, _removed = _apply(fleet, poll)
            wall.update_snapshots(fleet)
            fresh = WallView()
            fresh.update_snapshots(fleet)
            assert _wall_state(wall) == _wall_state(fresh)
            expected = {k: 0 for k, *_ in SUMMARY_KEYS}
            for s in fleet.values():
                for c in summary_category(s):
                    expected[c] += 1
            assert wall.summary_counts() == expected
            assert wall.groups_in_order() == fresh.groups_in_order()
            fresh.deleteLater()
    finally:
        wall.deleteLater()


def test_wall_lays_out_again_only_when_the_set_of_devices_or_their_names_change(qapp) -> None:  # type: ignore[no-untyped-def]
    wall = WallView()
    wall.resize(800, 600)
    a = dataclasses.replace(VARIANTS[0], id="a", name="A", group="g")
    wall.update_snapshots({"a": a})
    wall.layout_info()
    assert not wall._layout_dirty
    wall.update_snapshots({"a": dataclasses.replace(a, checks_total=a.checks_total + 1)})
    assert not wall._layout_dirty  # a value changed: same tiles
    wall.update_snapshots({"a": dataclasses.replace(a, name="A2")})
    assert wall._layout_dirty
    wall.layout_info()
    wall.update_snapshots({})
    assert wall._layout_dirty and wall.summary_counts()["healthy"] == 0
    wall.deleteLater()


def test_the_window_status_bar_counts_follow_any_polls_as_if_counted_afresh(qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The real window and bridge over a changing fleet (changes, equal copies, removals, additions):
    after every poll its counts equal status_counts() over the engine's snapshots."""
    import random

    from PySide6.QtCore import QSettings

    from gui.main_window import MainWindow
    from tests.gui.fake_engine import FakeEngine

    rng = random.Random(11)
    fleet = {f"d{i}": dataclasses.replace(VARIANTS[0], id=f"d{i}", name=f"d{i}") for i in range(30)}
    engine = FakeEngine(fleet)
    window = MainWindow(engine, QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat),
                        confirm=lambda _t, _x: True, tray=False, sound=False)
    qtbot.addWidget(window)
    window.bridge.poll()
    for step in range(80):
        for sid in rng.sample(sorted(engine.snapshots()), 6):
            engine.set_snapshot(dataclasses.replace(rng.choice(VARIANTS), id=sid, name=sid))
        if step % 9 == 4:
            engine.remove(rng.choice(sorted(engine.snapshots())))
        if step % 7 == 3:
            sid = f"new{step}"
            engine.set_snapshot(dataclasses.replace(rng.choice(VARIANTS), id=sid, name=sid))
        window.bridge.poll()
        assert window._counts == status_counts(engine.snapshots().values()), step
        expected = status_counts(engine.snapshots().values())
        assert f"{expected['healthy']} healthy" in window.summary_text()
    window.shutdown()
