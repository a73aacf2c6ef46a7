"""One truth per device: table, wall, status bar (and tray) categorise every state the same way."""

from __future__ import annotations

import dataclasses
import itertools

from core.events import BreakerState, HeartbeatStatus, RecoveryState, RecoveryStrategyName, ServiceStatus
from core.snapshot import BreakerView, RecoveryView
from gui import presentation
from gui.presentation import Category
from gui.service_model import status_counts
from gui.wall import summary_category, tile_indicators
from tests.gui.fake_engine import make_snapshot


def _combinations():  # type: ignore[no-untyped-def]
    base = make_snapshot("d", "Device", "rack")
    for status, failed, breaker, recovery, maint, paused, hb, blocked_by in itertools.product(
            list(ServiceStatus), (False, True), list(BreakerState), (None, *RecoveryState), (False, True),
            (False, True), (HeartbeatStatus.NONE, HeartbeatStatus.OK, HeartbeatStatus.MISSED), ("", "switch-3")):
        if failed and status is not ServiceStatus.UNHEALTHY:
            continue
        rec = None if recovery is None else RecoveryView("r", RecoveryStrategyName.RESTART, recovery, 1, 3, None, "")
        yield dataclasses.replace(
            base, status=status, failed=failed, consecutive_failures=3 if failed else (1 if status is ServiceStatus.UNHEALTHY else 0),
            breaker=BreakerView(breaker, 0, 0, 1, 0, 2, 5, 10.0 if breaker is BreakerState.OPEN else None),
            recovery=rec, maintenance=maint, paused=paused, heartbeat=hb, blocked_by=blocked_by,
            depends_on=("switch-3",) if blocked_by else ())


def test_table_wall_and_status_bar_agree_for_every_state_combination() -> None:
    n = 0
    for snap in _combinations():
        n += 1
        cat = presentation.category(snap)
        bar = status_counts([snap])
        assert [k for k in map(str, Category) if bar[k]] == [str(cat)], snap
        assert str(cat) in summary_category(snap), snap
        assert tile_indicators(snap)[2] == presentation.role(snap), snap
    assert n > 1000


def test_one_failed_check_is_degraded_everywhere_and_failed_is_unhealthy() -> None:
    base = make_snapshot("d", "Device", "rack")
    failing = dataclasses.replace(base, status=ServiceStatus.UNHEALTHY, consecutive_failures=1, max_failures=3)
    assert presentation.category(failing) is Category.DEGRADED
    assert status_counts([failing])["degraded"] == 1 and status_counts([failing])["unhealthy"] == 0
    assert "degraded" in summary_category(failing)
    failed = dataclasses.replace(failing, failed=True, consecutive_failures=3)
    assert presentation.category(failed) is Category.UNHEALTHY


def test_a_child_behind_a_down_parent_is_blocked_everywhere_not_an_alarm() -> None:
    """Twenty PLCs behind a dead switch: their checks fail and their breakers open, but the switch
    carries the alarm; each child counts as blocked, its breaker words stay but are not red, and the
    wall's "breaker open" count does not include it."""
    base = make_snapshot("plc-1", "PLC 1", "rack")
    child = dataclasses.replace(
        base, status=ServiceStatus.UNHEALTHY, failed=True, consecutive_failures=3, depends_on=("switch-3",),
        blocked_by="switch-3", breaker=BreakerView(BreakerState.OPEN, 3, 0, 1, 0, 2, 5, 12.0))
    assert presentation.category(child) is Category.BLOCKED
    assert presentation.status_indicator(child).word == "BLOCKED BY switch-3"
    breaker = presentation.breaker_indicator(child)
    assert breaker.word == "OPEN 12s" and breaker.role == "normal"
    assert presentation.role(child) == "normal"
    bar = status_counts([child])
    assert bar["blocked"] == 1 and bar["unhealthy"] == 0 and bar["degraded"] == 0
    assert summary_category(child) == {"blocked"}
    # The same device once its parent is back (blocked_by cleared) is judged afresh: a red alarm.
    judged = dataclasses.replace(child, blocked_by="")
    assert presentation.category(judged) is Category.UNHEALTHY
    assert presentation.breaker_indicator(judged).role == "critical"
    assert summary_category(judged) == {"unhealthy", "open"}
    # An operator's forced breaker is still shown as the deliberate act it is.
    forced = dataclasses.replace(child, breaker=BreakerView(BreakerState.FORCED_OPEN, 3, 0, 1, 0, 2, 5, None))
    assert presentation.category(forced) is Category.SUPPRESSED


def test_one_duration_format() -> None:
    assert presentation.format_duration(45) == "45 s" and presentation.format_age(600) == "10 min ago"
    assert presentation.format_age(None) == "never"
