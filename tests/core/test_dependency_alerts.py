"""A switch with ten PLCs behind it goes down: one alert on the switch naming the ten, no group flood,
the PLCs' alerts held as "blocked by"; when the switch comes back the PLCs are judged afresh.
AlertManager + DependencyGraph/BlockTracker on a FakeClock, the way the engine wires them."""

from __future__ import annotations

from core.alerts import AlertManager
from core.clock import FakeClock
from core.config import AlertsConfig
from core.dependencies import BlockTracker, DependencyGraph
from core.events import AlertEvent, BreakerEvent, BreakerState, ProbeEvent, ServiceStatus

PLCS = [f"plc-{i}" for i in range(1, 11)]


class Line:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.events: list[AlertEvent] = []
        groups = {"switch-3": "line-1", **{p: "line-1" for p in PLCS}}
        self.mgr = AlertManager(AlertsConfig(unhealthy_for_seconds=30), self.clock, groups, self.events.append)
        self.tracker = BlockTracker(DependencyGraph({"switch-3": [], **{p: ["switch-3"] for p in PLCS}}))
        self.down: set[str] = set()

    def probe(self, service: str, status: ServiceStatus) -> None:
        if status == ServiceStatus.UNHEALTHY:
            self.down.add(service)
        else:
            self.down.discard(service)
        # The engine's order: dependencies first, so a child's failure is born held.
        self.tracker.update(self.down.__contains__)
        self.mgr.set_blocked(self.tracker.blocked)
        self.mgr.observe(ProbeEvent(service=service, mono=self.clock.monotonic(), wall=self.clock.wall(),
                                    status=status, latency_ms=None, error=None, consecutive_failures=3))

    def advance(self, seconds: float) -> None:
        self.clock.advance_sync(seconds)
        self.mgr.poll()

    def firing(self) -> list[tuple[str, str]]:
        return [(e.alert_id, e.message) for e in self.events if e.state == "firing"]


def test_switch_down_gives_one_alert_naming_its_ten_devices() -> None:
    line = Line()
    line.probe("switch-3", ServiceStatus.UNHEALTHY)
    for plc in PLCS:
        line.probe(plc, ServiceStatus.UNHEALTHY)
    line.mgr.observe(BreakerEvent(service="plc-4", mono=line.clock.monotonic(), wall=line.clock.wall(),
                                  from_state=BreakerState.CLOSED, to_state=BreakerState.OPEN, reason="5 failures"))
    line.advance(31)
    assert line.firing() == [("unhealthy:switch-3", "unhealthy for 31 s; 10 devices behind it blocked")]
    assert [a.id for a in line.mgr.alerts()] == ["unhealthy:switch-3"]
    assert all(line.mgr.blocked_by(p) == "switch-3" for p in PLCS)
    assert line.mgr.affected_count("switch-3") == 10


def test_when_the_switch_recovers_children_are_judged_afresh() -> None:
    line = Line()
    line.probe("switch-3", ServiceStatus.UNHEALTHY)
    for plc in PLCS:
        line.probe(plc, ServiceStatus.UNHEALTHY)
    line.advance(60)
    line.events.clear()
    line.probe("switch-3", ServiceStatus.HEALTHY)
    # Nine PLCs come back with their switch; plc-7 stays down on its own.
    for plc in PLCS:
        if plc != "plc-7":
            line.probe(plc, ServiceStatus.HEALTHY)
    assert line.firing() == []  # no burst of old child alerts the moment the parent is back
    line.advance(29)
    assert line.firing() == []
    line.advance(1)
    assert line.firing() == [("unhealthy:plc-7", "unhealthy for 30 s")]


def test_a_child_failing_alone_alerts_normally() -> None:
    line = Line()
    line.probe("plc-2", ServiceStatus.UNHEALTHY)
    line.advance(30)
    assert line.firing() == [("unhealthy:plc-2", "unhealthy for 30 s")]
    assert line.mgr.blocked_by("plc-2") is None


def test_forgetting_a_service_drops_its_block_and_first_wall_is_known() -> None:
    line = Line()
    line.probe("switch-3", ServiceStatus.UNHEALTHY)
    line.probe("plc-1", ServiceStatus.UNHEALTHY)
    line.advance(31)
    assert line.mgr.first_wall("unhealthy:switch-3") == line.clock.wall()
    assert line.mgr.first_wall("unhealthy:plc-1") is None  # held, never shown
    line.mgr.forget("plc-1")
    assert line.mgr.blocked_by("plc-1") is None


def _breaker_open(line: Line, service: str) -> None:
    line.mgr.observe(BreakerEvent(service=service, mono=line.clock.monotonic(), wall=line.clock.wall(),
                                  from_state=BreakerState.CLOSED, to_state=BreakerState.OPEN, reason="2 failures"))


def test_children_checked_before_their_switch_wait_for_it_instead_of_flooding() -> None:
    line = Line()
    line.mgr.set_settle({p: 5.0 for p in PLCS})  # about one check of the switch
    for plc in PLCS:  # the PLCs' checks happen to run first
        line.probe(plc, ServiceStatus.UNHEALTHY)
        _breaker_open(line, plc)
    assert line.firing() == []  # no rack flood, no breaker warnings
    line.advance(2)
    line.probe("switch-3", ServiceStatus.UNHEALTHY)  # its next check
    line.advance(40)
    assert line.firing() == [("unhealthy:switch-3", "unhealthy for 40 s; 10 devices behind it blocked")]


def test_a_child_failing_alone_alerts_once_its_parent_had_a_chance_to_be_checked() -> None:
    line = Line()
    line.mgr.set_settle({p: 5.0 for p in PLCS})
    line.probe("plc-3", ServiceStatus.UNHEALTHY)
    _breaker_open(line, "plc-3")
    line.advance(4.9)
    assert line.firing() == []
    line.advance(0.1)  # the switch stayed healthy: this is plc-3's own fault
    assert [aid for aid, _ in line.firing()] == ["breaker_open:plc-3"]
