"""Report by exception: which states carry which colour role, shape and word."""

from __future__ import annotations

import dataclasses

from core.events import RecoveryState, RecoveryStrategyName, BreakerState, ServiceStatus
from core.snapshot import BreakerView, RecoveryView
from gui import presentation
from gui import palette
from tests.gui.fake_engine import make_snapshot


def snap(**kw):  # type: ignore[no-untyped-def]
    return dataclasses.replace(make_snapshot("d", "Device", "rack"), **kw)


def test_healthy_is_quiet_and_every_problem_has_colour_shape_and_word() -> None:
    healthy = presentation.status_indicator(snap())
    assert (healthy.role, healthy.word) == ("normal", "HEALTHY")
    one = presentation.status_indicator(snap(status=ServiceStatus.UNHEALTHY, consecutive_failures=1, max_failures=3))
    assert (one.role, one.shape, one.word) == ("warning", "triangle", "FAILING 1/3")
    failed = presentation.status_indicator(snap(status=ServiceStatus.UNHEALTHY, failed=True, consecutive_failures=3))
    assert (failed.role, failed.word) == ("critical", "FAILED")
    assert presentation.status_indicator(snap(maintenance=True)).role == "suppressed"
    assert presentation.status_indicator(snap(paused=True)).word == "PAUSED"
    rec = RecoveryView("r", RecoveryStrategyName("restart"), RecoveryState("waiting"), 2, 3, None, "")
    assert presentation.status_indicator(snap(recovery=rec, failed=True)).word == "RECOVERING 2/3"


def test_breaker_words_and_roles() -> None:
    def b(state: BreakerState, **kw):  # type: ignore[no-untyped-def]
        view = BreakerView(state, 0, 0, 1, 1, 2, 5, kw.get("reopen"))
        return presentation.breaker_indicator(snap(breaker=view))
    assert (b(BreakerState.CLOSED).role, b(BreakerState.CLOSED).word) == ("normal", "CLOSED")
    assert (b(BreakerState.OPEN, reopen=4.2).role, b(BreakerState.OPEN, reopen=4.2).word) == ("critical", "OPEN 4s")
    assert b(BreakerState.HALF_OPEN).word == "HALF-OPEN 1/2" and b(BreakerState.HALF_OPEN).role == "warning"
    forced = b(BreakerState.FORCED_OPEN)
    assert (forced.role, forced.shape, forced.word) == ("suppressed", "lock", "FORCED OPEN")


def test_a_device_behind_a_down_parent_reads_blocked_not_failed():
    """A device behind a down parent is shown as blocked, in grey, not as failed."""
    from core.events import ServiceStatus
    from fake_engine import make_snapshot, with_relations
    from gui import presentation

    base = make_snapshot("plc-1", status=ServiceStatus.UNHEALTHY, failed=True)
    snap = with_relations(base, depends_on=("switch-3",), blocked_by="switch-3")
    ind = presentation.status_indicator(snap)
    assert (ind.role, ind.shape, ind.word) == ("normal", "square", "BLOCKED BY switch-3")
    assert presentation.status_indicator(base).word == "FAILED"
