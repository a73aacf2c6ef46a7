"""A journal with known outages, written through the real Journal class on a FakeClock.

Shared by tests/core/test_report.py, the CLI test and the GUI test. Times are seconds after T0 (a
minute boundary); the report period used by the tests is [T0, T0 + 3600). Every figure the tests
expect is worked out in test_report.py next to the scenario it comes from.
"""

from __future__ import annotations

from pathlib import Path

from core.clock import FakeClock
from core.config import JournalConfig
from core.events import (ActionEvent, BreakerEvent, BreakerState, Event, ProbeEvent, RebootEvent, RecoveryEvent,
                         RecoveryOutcome, RecoveryStrategyName, ServiceStatus)
from core.journal import Journal

T0 = 1_780_000_020.0  # a minute boundary (29,666,667 × 60)
GAP = (1790.0, 2400.0)  # the engine was stopped: nothing journaled by anyone in between
PERIOD = (T0, T0 + 3600.0)


def _probe(svc: str, t: float, status: str, cf: int = 0, error: str | None = None) -> ProbeEvent:
    return ProbeEvent(service=svc, mono=t, wall=T0 + t, status=ServiceStatus(status), latency_ms=12.0,
                      error=error, consecutive_failures=cf, endpoint=f"http://{svc}")


def _breaker(svc: str, t: float, a: str, b: str) -> BreakerEvent:
    return BreakerEvent(service=svc, mono=t, wall=T0 + t, from_state=BreakerState(a), to_state=BreakerState(b),
                        reason="test")


def _recovery(svc: str, t: float, rid: str, attempt: int, outcome: str, detail: str = "") -> RecoveryEvent:
    return RecoveryEvent(service=svc, mono=t, wall=T0 + t, recovery_id=rid, strategy=RecoveryStrategyName.RESTART, attempt=attempt,
                         max_attempts=3, outcome=RecoveryOutcome(outcome), failure_type="service_unavailable",
                         detail=detail)


def _action(target: str, t: float, command: str, origin: str = "gui") -> ActionEvent:
    return ActionEvent(service=target, mono=t, wall=T0 + t, command=command, origin=origin)


def scenario_events() -> list[Event]:
    ev: list[Event] = [
        # --- a (rack1): an outage with restarts, a blip, a slow spell, an outage open at the end.
        _probe("a", -100, "healthy"),
        _probe("a", 600, "unhealthy", 1, "HTTP 503"),
        _probe("a", 610, "unhealthy", 2, "HTTP 503"),
        _probe("a", 620, "unhealthy", 3, "HTTP 503"),
        _recovery("a", 625, "a-1", 1, "started"),
        _breaker("a", 640, "closed", "open"),
        _recovery("a", 640, "a-1", 1, "failed", "not healthy within 10 s of the restart"),
        RebootEvent(service="a", mono=650, wall=T0 + 650, reason="uptime went back"),
        _action("a", 655, "restart"),
        _recovery("a", 660, "a-1", 2, "started"),
        _breaker("a", 700, "open", "half_open"),
        _probe("a", 700, "healthy"),
        _breaker("a", 730, "half_open", "closed"),
        _recovery("a", 730, "a-1", 2, "succeeded", "healthy after restart (HTTP 200)"),
        _probe("a", 1000, "unhealthy", 1, "timeout after 5 s"),
        _probe("a", 1010, "healthy"),
        _probe("a", 1200, "degraded", 0, "slow: 612 ms > 300 ms"),
        _probe("a", 1260, "healthy"),
        _probe("a", 2400, "healthy"),  # first check after the engine came back
        _probe("a", 3500, "unhealthy", 1, "connection refused"),
        _probe("a", 3510, "unhealthy", 2, "connection refused"),
        _probe("a", 3520, "unhealthy", 3, "connection refused"),
        # --- b (rack1): failed before the period, recovers inside it; fails again during maintenance.
        _probe("b", -200, "healthy"),
        _probe("b", -50, "unhealthy", 1, "timeout after 5 s"),
        _probe("b", -40, "unhealthy", 2, "timeout after 5 s"),
        _probe("b", -30, "unhealthy", 3, "timeout after 5 s"),
        _probe("b", 120, "healthy"),
        _action("b", 1000, "maintenance_on"),
        _probe("b", 1100, "unhealthy", 1, "HTTP 500"),
        _probe("b", 1110, "unhealthy", 2, "HTTP 500"),
        _probe("b", 1120, "unhealthy", 3, "HTTP 500"),
        _probe("b", 1150, "healthy"),
        _action("b", 1300, "maintenance_off"),
        _probe("b", 2400, "healthy"),
        # --- c (rack2): always healthy; its whole group goes into maintenance at 3000 until the end.
        _probe("c", -300, "healthy"),
        _probe("c", 2400, "healthy"),
        _action("rack2", 3000, "maintenance_on"),
    ]
    ev.sort(key=lambda e: e.wall)
    return ev


def _sample_ok(svc: str, t: float) -> bool:
    if svc == "a":
        return not (600 <= t < 700 or t == 1000 or t >= 3500)
    if svc == "b":
        return not (-50 <= t < 120 or 1100 <= t < 1150)
    return True


def write_scenario(path: Path, *, close: bool = True) -> Journal:
    """Write the scenario's events and a check every 10 s per service (none during the engine gap)."""
    clock = FakeClock(start=0.0, start_wall=T0)
    journal = Journal.open(path, JournalConfig(), clock)
    journal.append_many(scenario_events())
    t = -600.0
    while t < 3600.0:
        if not GAP[0] < t < GAP[1]:
            for svc in ("a", "b", "c"):
                ok = _sample_ok(svc, t)
                journal.record_latency(svc, T0 + t, 12.0 if ok else None, ok)
        t += 10.0
    journal.flush()
    if close:
        journal.close()
    return journal
