"""AlertManager rules, ISA-18.2 states, maintenance, group floods; LogSink and WebhookSink."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from typing import Any, Callable

import aiohttp
import pytest
from aiohttp import web

from core.alerts import Alert, AlertManager, LogSink, WebhookSink
from core.clock import FakeClock
from core.config import AlertsConfig
from core.events import (
    ActionEvent,
    AlertEvent,
    AnomalyEvent,
    BreakerEvent,
    BreakerState,
    HeartbeatEvent,
    ProbeEvent,
    RecoveryEvent,
    RecoveryOutcome,
    ServiceStatus,
)

GROUPS = {"svc-1": "rack-a", "svc-2": "rack-a", "solo": "rack-b"}


class Harness:
    def __init__(self, config: AlertsConfig | None = None, groups: dict[str, str] | None = None) -> None:
        self.clock = FakeClock()
        self.events: list[AlertEvent] = []
        self.maintenance: set[str] = set()  # the engine owns maintenance; alerts only ask
        self.mgr = AlertManager(config or AlertsConfig(), self.clock,
                                GROUPS if groups is None else groups, self.events.append,
                                maintenance=self.maintenance.__contains__)

    def set_maintenance(self, target: str, on: bool) -> None:
        (self.maintenance.add if on else self.maintenance.discard)(target)
        self.mgr.maintenance_changed()

    # -- event builders, stamped with the clock's current time
    def probe(self, service: str, status: ServiceStatus) -> None:
        self.mgr.observe(ProbeEvent(service=service, mono=self.clock.monotonic(), wall=self.clock.wall(), status=status, latency_ms=None,
                                    error=None, consecutive_failures=0))

    def breaker(self, service: str, to: BreakerState, frm: BreakerState = BreakerState.CLOSED) -> None:
        self.mgr.observe(BreakerEvent(service=service, mono=self.clock.monotonic(), wall=self.clock.wall(), from_state=frm, to_state=to,
                                      reason="5 failures"))

    def recovery(self, service: str, outcome: RecoveryOutcome) -> None:
        self.mgr.observe(RecoveryEvent(service=service, mono=self.clock.monotonic(), wall=self.clock.wall(), recovery_id="r1", strategy="restart",
                                       attempt=3, max_attempts=3, outcome=outcome))

    def heartbeat(self, service: str, status: str) -> None:
        self.mgr.observe(HeartbeatEvent(service=service, mono=self.clock.monotonic(), wall=self.clock.wall(), status=status, last_beat_age_s=40.0))

    def anomaly(self, service: str) -> None:
        self.mgr.observe(AnomalyEvent(service=service, mono=self.clock.monotonic(), wall=self.clock.wall(), latency_ms=300.0, baseline_ms=20.0,
                                      score=50.0, detector="ewma+mad"))

    def advance(self, seconds: float) -> None:
        self.clock.advance_sync(seconds)
        self.mgr.poll()

    def states(self) -> list[tuple[str, str]]:
        out = [(e.alert_id, e.state) for e in self.events]
        self.events.clear()
        return out

    def shown(self) -> dict[str, Alert]:
        return {a.id: a for a in self.mgr.alerts()}


@pytest.fixture
def h() -> Harness:
    return Harness()


# ---------------------------------------------------------------- rules

def test_unhealthy_fires_after_duration_and_resolves(h: Harness) -> None:
    h.probe("svc-1", ServiceStatus.UNHEALTHY)
    h.advance(29)
    assert h.states() == []
    h.probe("svc-1", ServiceStatus.UNHEALTHY)  # a repeated verdict does not restart the timer
    h.advance(1)
    assert h.states() == [("unhealthy:svc-1", "firing")]
    a = h.shown()["unhealthy:svc-1"]
    assert (a.rule, a.service, a.group, a.severity, a.active, a.acknowledged) == (
        "unhealthy", "svc-1", "rack-a", "critical", True, False)
    h.probe("svc-1", ServiceStatus.DEGRADED)
    assert h.states() == [("unhealthy:svc-1", "resolved")]


def test_brief_unhealthy_never_alerts(h: Harness) -> None:
    h.probe("svc-1", ServiceStatus.UNHEALTHY)
    h.advance(20)
    h.probe("svc-1", ServiceStatus.HEALTHY)
    h.advance(100)
    assert h.states() == [] and h.mgr.alerts() == []


def test_unhealthy_zero_duration_fires_at_once() -> None:
    h = Harness(AlertsConfig(unhealthy_for_seconds=0))
    h.probe("solo", ServiceStatus.UNHEALTHY)
    assert h.states() == [("unhealthy:solo", "firing")]


def test_breaker_open_fires_and_resolves_on_closed(h: Harness) -> None:
    h.breaker("svc-1", BreakerState.OPEN)
    assert h.states() == [("breaker_open:svc-1", "firing")]
    assert h.shown()["breaker_open:svc-1"].severity == "warning"
    h.breaker("svc-1", BreakerState.HALF_OPEN, BreakerState.OPEN)
    assert h.states() == []
    h.breaker("svc-1", BreakerState.OPEN, BreakerState.HALF_OPEN)  # trial failed: same alert again
    assert h.states() == []
    assert h.shown()["breaker_open:svc-1"].count == 2
    h.breaker("svc-1", BreakerState.CLOSED, BreakerState.HALF_OPEN)
    assert h.states() == [("breaker_open:svc-1", "resolved")]


def test_forced_open_does_not_alert(h: Harness) -> None:
    h.breaker("svc-1", BreakerState.FORCED_OPEN)
    assert h.states() == [] and h.mgr.alerts() == []


def test_recovery_gave_up_resolves_only_when_healthy(h: Harness) -> None:
    h.recovery("solo", RecoveryOutcome.FAILED)
    assert h.states() == []
    h.recovery("solo", RecoveryOutcome.GAVE_UP)
    assert h.states() == [("recovery_gave_up:solo", "firing")]
    assert h.shown()["recovery_gave_up:solo"].severity == "critical"
    h.probe("solo", ServiceStatus.DEGRADED)
    assert h.states() == []
    h.probe("solo", ServiceStatus.HEALTHY)
    assert h.states() == [("recovery_gave_up:solo", "resolved")]


def test_heartbeat_missed_and_resumed(h: Harness) -> None:
    h.heartbeat("solo", "missed")
    assert h.states() == [("heartbeat_missed:solo", "firing")]
    assert h.shown()["heartbeat_missed:solo"].severity == "warning"
    h.heartbeat("solo", "resumed")
    assert h.states() == [("heartbeat_missed:solo", "resolved")]


def test_anomaly_resolves_after_five_quiet_minutes(h: Harness) -> None:
    h.anomaly("solo")
    assert h.states() == [("anomaly:solo", "firing")]
    h.advance(200)
    h.anomaly("solo")  # dedup, and the quiet period starts again
    assert h.states() == []
    assert h.shown()["anomaly:solo"].count == 2
    h.advance(299)
    assert h.states() == []
    h.advance(1)
    assert h.states() == [("anomaly:solo", "resolved")]


def test_anomaly_alerts_can_be_switched_off() -> None:
    h = Harness(AlertsConfig(anomaly=False))
    h.anomaly("solo")
    assert h.states() == []
    h2 = Harness()
    h2.anomaly("solo")
    h2.mgr.set_config(AlertsConfig(anomaly=False))
    assert h2.states() == [("anomaly:solo", "firing"), ("anomaly:solo", "resolved")]


def test_storm_guard_raised_and_resolved_by_engine(h: Harness) -> None:
    h.mgr.raise_alert("storm_guard", "", "critical", "restart storm: 12 restarts in 60 s; auto-restart paused")
    assert h.states() == [("storm_guard", "firing")]
    h.advance(10_000)
    assert h.states() == []
    h.mgr.resolve("storm_guard", "")
    assert h.states() == [("storm_guard", "resolved")]
    with pytest.raises(ValueError):
        h.mgr.raise_alert("storm_guard", "", "fatal", "x")


def test_dedup_bumps_count_and_last_wall_without_events(h: Harness) -> None:
    h.mgr.raise_alert("storm_guard", "svc-1", "critical", "storm")
    first = h.shown()["storm_guard:svc-1"]
    h.clock.advance_sync(5)
    h.mgr.raise_alert("storm_guard", "svc-1", "critical", "storm again")
    assert h.states() == [("storm_guard:svc-1", "firing")]
    again = h.shown()["storm_guard:svc-1"]
    assert again.count == 2
    assert again.first_wall == first.first_wall
    assert again.last_wall == first.last_wall + 5
    assert again.message == "storm again"
    assert len(h.mgr.alerts()) == 1


def test_alert_event_fields(h: Harness) -> None:
    h.heartbeat("svc-2", "missed")
    [ev] = h.events
    assert (ev.service, ev.alert_id, ev.severity, ev.rule, ev.state, ev.group) == (
        "svc-2", "heartbeat_missed:svc-2", "warning", "heartbeat_missed", "firing", "rack-a")
    assert ev.mono == h.clock.monotonic() and ev.wall == h.clock.wall()
    assert "heartbeat" in ev.message
    assert ev.to_record()["kind"] == "alert"


def test_unrelated_events_are_ignored(h: Harness) -> None:
    h.mgr.observe(ActionEvent(service="svc-1", mono=0, wall=0, command="reset", origin="gui"))
    h.mgr.observe(AlertEvent(service="svc-1", mono=0, wall=0, alert_id="x", severity="info", rule="x",
                             state="firing", message=""))
    h.probe("svc-1", ServiceStatus.UNKNOWN)
    assert h.states() == [] and h.mgr.alerts() == []


# ---------------------------------------------------------------- ISA-18.2 states

def test_cleared_unacknowledged_stays_until_acknowledged(h: Harness) -> None:
    h.heartbeat("solo", "missed")
    h.heartbeat("solo", "resumed")
    h.states()
    [a] = h.mgr.alerts()
    assert (a.id, a.active, a.acknowledged) == ("heartbeat_missed:solo", False, False)
    assert h.mgr.acknowledge(a.id)
    assert h.states() == [(a.id, "acknowledged")]
    assert h.mgr.alerts() == []
    assert not h.mgr.acknowledge(a.id)


def test_acknowledged_active_alert_leaves_when_it_clears(h: Harness) -> None:
    h.heartbeat("solo", "missed")
    assert h.mgr.acknowledge("heartbeat_missed:solo")
    assert h.mgr.acknowledge("heartbeat_missed:solo")  # idempotent, no second event
    a = h.shown()["heartbeat_missed:solo"]
    assert a.active and a.acknowledged
    h.heartbeat("solo", "resumed")
    assert h.states()[-1] == ("heartbeat_missed:solo", "resolved")
    assert h.mgr.alerts() == []


def test_return_to_alarm_while_still_shown_needs_new_ack(h: Harness) -> None:
    h.heartbeat("solo", "missed")
    h.heartbeat("solo", "resumed")
    h.heartbeat("solo", "missed")
    a = h.shown()["heartbeat_missed:solo"]
    assert a.active and not a.acknowledged and a.count == 2
    assert h.states() == [("heartbeat_missed:solo", "firing"), ("heartbeat_missed:solo", "resolved"),
                          ("heartbeat_missed:solo", "firing")]


def test_alerts_newest_first(h: Harness) -> None:
    h.heartbeat("solo", "missed")
    h.clock.advance_sync(1)
    h.breaker("svc-1", BreakerState.OPEN)
    h.clock.advance_sync(1)
    h.anomaly("svc-2")
    assert [a.id for a in h.mgr.alerts()] == ["anomaly:svc-2", "breaker_open:svc-1", "heartbeat_missed:solo"]


def test_silence_expires_by_itself(h: Harness) -> None:
    h.heartbeat("solo", "missed")
    h.states()
    assert h.mgr.silence("heartbeat_missed:solo", 600)
    a = h.shown()["heartbeat_missed:solo"]
    assert a.silenced and a.silenced_until_wall == pytest.approx(h.clock.wall() + 600)
    assert a.active  # shelved, still shown, flagged
    assert h.states() == [("heartbeat_missed:solo", "silenced")]
    h.advance(599)
    assert h.states() == []
    h.advance(1)
    assert h.states() == [("heartbeat_missed:solo", "unsilenced")]
    assert not h.shown()["heartbeat_missed:solo"].silenced


def test_bad_silence_requests(h: Harness) -> None:
    h.heartbeat("solo", "missed")
    assert not h.mgr.silence("nope", 60)
    assert not h.mgr.silence("heartbeat_missed:solo", 0)
    assert not h.mgr.silence("heartbeat_missed:solo", float("inf"))
    assert h.states() == [("heartbeat_missed:solo", "firing")]


# ---------------------------------------------------------------- maintenance

def test_maintenance_holds_and_releases_service(h: Harness) -> None:
    h.set_maintenance("solo", True)
    h.heartbeat("solo", "missed")
    h.breaker("solo", BreakerState.OPEN)
    assert h.states() == [] and h.mgr.alerts() == []
    h.set_maintenance("solo", False)
    assert sorted(h.states()) == [("breaker_open:solo", "firing"), ("heartbeat_missed:solo", "firing")]


def test_maintenance_releases_only_still_true_conditions(h: Harness) -> None:
    h.set_maintenance("solo", True)
    h.heartbeat("solo", "missed")
    h.heartbeat("solo", "resumed")
    h.set_maintenance("solo", False)
    assert h.states() == [] and h.mgr.alerts() == []


def test_maintenance_on_holds_an_active_alert(h: Harness) -> None:
    h.heartbeat("svc-1", "missed")
    h.states()
    h.set_maintenance("rack-a", True)  # by group
    [(aid, state)] = h.states()
    assert (aid, state) == ("heartbeat_missed:svc-1", "resolved")
    assert h.mgr.alerts() == []
    h.set_maintenance("rack-a", False)
    assert h.states() == [("heartbeat_missed:svc-1", "firing")]


def test_maintenance_holds_time_rules_too(h: Harness) -> None:
    h.set_maintenance("solo", True)
    h.probe("solo", ServiceStatus.UNHEALTHY)
    h.advance(60)
    assert h.states() == []
    h.set_maintenance("solo", False)
    assert h.states() == [("unhealthy:solo", "firing")]


# ---------------------------------------------------------------- group floods

def rack(n: int, name: str = "rack-a") -> dict[str, str]:
    return {f"{name}-{i:02d}": name for i in range(n)}


def test_group_flood_one_group_alert_no_device_alerts() -> None:
    groups = {**rack(40), "elsewhere": "rack-b"}
    h = Harness(AlertsConfig(unhealthy_for_seconds=30, group_share=0.5, group_window_seconds=30), groups)
    down = [f"rack-a-{i:02d}" for i in range(31)]
    for s in down:
        h.probe(s, ServiceStatus.UNHEALTHY)
        h.clock.advance_sync(0.5)
    for s in down[25:]:
        h.breaker(s, BreakerState.OPEN)
    h.advance(120)
    assert h.states() == [("group:rack-a", "firing")]
    [a] = h.mgr.alerts()
    assert (a.id, a.rule, a.severity, a.group, a.service) == ("group:rack-a", "group_down", "critical", "rack-a", "")
    assert a.message == "rack-a: 31 of 40 services down"

    # Recovering to exactly half (20 of 40) keeps it; one more and it resolves, and every device
    # still down fires on its own (their unhealthy time has long passed).
    for s in down[:11]:
        h.probe(s, ServiceStatus.HEALTHY)
        h.breaker(s, BreakerState.CLOSED, BreakerState.OPEN)
    assert h.states() == []
    assert h.shown()["group:rack-a"].message == "rack-a: 20 of 40 services down"
    h.probe(down[11], ServiceStatus.HEALTHY)
    got = h.states()
    assert got[0] == ("group:rack-a", "resolved")
    assert sorted(got[1:]) == sorted([(f"unhealthy:{s}", "firing") for s in down[12:]]
                                     + [(f"breaker_open:{s}", "firing") for s in down[25:]])


def test_group_flood_resolution_releases_device_alerts() -> None:
    groups = rack(10)
    h = Harness(AlertsConfig(unhealthy_for_seconds=30, group_share=0.5, group_window_seconds=30), groups)
    down = [f"rack-a-{i:02d}" for i in range(8)]
    for s in down:
        h.probe(s, ServiceStatus.UNHEALTHY)
    assert h.states() == [("group:rack-a", "firing")]
    h.advance(60)
    assert h.states() == []
    assert h.shown()["group:rack-a"].message == "rack-a: 8 of 10 services down"
    for s in down[:3]:
        h.probe(s, ServiceStatus.HEALTHY)
    assert h.states() == []  # 5 of 10 still >= half
    assert h.shown()["group:rack-a"].message == "rack-a: 5 of 10 services down"
    h.probe(down[3], ServiceStatus.HEALTHY)
    got = h.states()
    assert got[0] == ("group:rack-a", "resolved")
    assert sorted(got[1:]) == [(f"unhealthy:{s}", "firing") for s in down[4:]]
    # The cleared group alert stays until acknowledged.
    g = h.shown()["group:rack-a"]
    assert not g.active and not g.acknowledged


def test_slow_trickle_is_not_a_flood() -> None:
    h = Harness(AlertsConfig(unhealthy_for_seconds=30, group_window_seconds=30), rack(6))
    for i in range(5):
        h.probe(f"rack-a-{i:02d}", ServiceStatus.UNHEALTHY)
        h.advance(40)
    assert [s for s in h.states() if s[0].startswith("group")] == []
    assert len(h.mgr.alerts()) == 5


def test_small_groups_never_get_group_alerts() -> None:
    h = Harness(AlertsConfig(unhealthy_for_seconds=0, group_min_services=3), rack(2))
    h.probe("rack-a-00", ServiceStatus.UNHEALTHY)
    h.probe("rack-a-01", ServiceStatus.UNHEALTHY)
    assert sorted(h.states()) == [("unhealthy:rack-a-00", "firing"), ("unhealthy:rack-a-01", "firing")]


def test_group_flood_by_breakers_retracts_early_device_alerts() -> None:
    h = Harness(AlertsConfig(group_share=0.5), rack(4))
    h.breaker("rack-a-00", BreakerState.OPEN)
    h.breaker("rack-a-01", BreakerState.OPEN)
    assert [s for _, s in h.states()] == ["firing", "firing"]
    h.breaker("rack-a-02", BreakerState.OPEN)
    got = h.states()
    assert ("group:rack-a", "firing") in got
    assert sorted(x for x in got if x[0] != "group:rack-a") == [
        ("breaker_open:rack-a-00", "resolved"), ("breaker_open:rack-a-01", "resolved")]
    assert [a.id for a in h.mgr.alerts()] == ["group:rack-a"]


def test_group_alert_held_by_group_maintenance() -> None:
    h = Harness(AlertsConfig(unhealthy_for_seconds=0), rack(4))
    h.set_maintenance("rack-a", True)
    for i in range(4):
        h.probe(f"rack-a-{i:02d}", ServiceStatus.UNHEALTHY)
    assert h.states() == [] and h.mgr.alerts() == []
    h.set_maintenance("rack-a", False)
    assert h.states() == [("group:rack-a", "firing")]


def test_set_groups_moves_services() -> None:
    h = Harness(AlertsConfig(unhealthy_for_seconds=0), {"a": "r1", "b": "r1", "c": "r1", "d": "r2"})
    h.probe("d", ServiceStatus.UNHEALTHY)
    assert h.states() == [("unhealthy:d", "firing")]
    h.mgr.set_groups({"a": "r1", "b": "r1", "c": "r1", "d": "r9"})
    assert h.shown()["unhealthy:d"].group == "r9"


# ---------------------------------------------------------------- sinks

def test_log_sink_levels(caplog: pytest.LogCaptureFixture) -> None:
    sink = LogSink()
    ev = AlertEvent(service="s", mono=0, wall=0, alert_id="unhealthy:s", severity="critical",
                    rule="unhealthy", state="firing", message="s: unhealthy for 30 s")
    with caplog.at_level(logging.INFO, logger="core.alerts"):
        sink(ev)
        sink(dataclasses.replace(ev, state="resolved"))
        sink(dataclasses.replace(ev, state="acknowledged"))
    levels = [(r.name, r.levelno) for r in caplog.records]
    assert levels == [("core.alerts", logging.WARNING), ("core.alerts", logging.INFO),
                      ("core.alerts", logging.INFO)]
    assert "unhealthy:s" in caplog.records[0].getMessage()


def alert_event(i: int = 0) -> AlertEvent:
    return AlertEvent(service="svc-1", mono=1.0, wall=1_780_000_000.0, alert_id=f"unhealthy:svc-{i}",
                      severity="critical", rule="unhealthy", state="firing", message="down")


class FlakyServer:
    """Answers 503 `failures` times, then 200; records every request."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], Any]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.json()))
        if len(self.requests) <= self.failures:
            return web.Response(status=503)
        return web.Response(status=200)

    async def __aenter__(self) -> FlakyServer:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/hook?channel=ops"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def until(pred: Callable[[], bool], limit: float = 5.0) -> None:
    """Let real socket I/O progress (no fake time passes) until `pred` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not pred():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0)


TOKEN = "s3cret-token-value"


async def test_webhook_retries_with_backoff_then_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    caplog.set_level(logging.DEBUG)
    async with FlakyServer(failures=2) as server, aiohttp.ClientSession() as session:
        sink = WebhookSink(server.url, session, clock, retries=3, token=TOKEN)
        task = asyncio.create_task(sink.send(alert_event()))
        await until(lambda: clock.pending_sleepers == 1)
        assert len(server.requests) == 1
        await clock.advance(0.999)
        assert len(server.requests) == 1 and clock.pending_sleepers == 1  # backoff 1 s not over
        await clock.advance(0.001)
        await until(lambda: clock.pending_sleepers == 1 and len(server.requests) == 2)
        await clock.advance(1.999)
        assert len(server.requests) == 2  # second backoff is 2 s
        await clock.advance(0.001)
        assert await asyncio.wait_for(task, 5) is True
        assert len(server.requests) == 3
    headers, body = server.requests[-1]
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert body == alert_event().to_record()
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("core.")]
    assert ours and all("channel=ops" not in m for m in ours)  # query strings may hold secrets too


async def test_webhook_gives_up_with_warning_and_no_token(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    caplog.set_level(logging.DEBUG)
    async with FlakyServer(failures=100) as server, aiohttp.ClientSession() as session:
        sink = WebhookSink(server.url, session, clock, retries=2, token=TOKEN)
        task = asyncio.create_task(sink.send(alert_event()))
        for expected in (1, 2):
            await until(lambda: clock.pending_sleepers == 1 and len(server.requests) == expected)
            await clock.advance(2.0 ** (expected - 1))
        assert await asyncio.wait_for(task, 5) is False
        assert len(server.requests) == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "core.alerts"]
    assert len(warnings) == 1 and "gave up" in warnings[0].getMessage()
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


async def test_webhook_connection_errors_are_retried(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clock = FakeClock()
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as session:
        sink = WebhookSink(f"http://127.0.0.1:{port}/hook", session, clock, retries=1, token=TOKEN)
        task = asyncio.create_task(sink.send(alert_event()))
        await until(lambda: clock.pending_sleepers == 1)
        await clock.advance(1)
        assert await asyncio.wait_for(task, 5) is False
        # Credentials in the URL (instead of a token) work, and stay out of the log.
        sink2 = WebhookSink(f"http://user:pw@127.0.0.1:{port}/hook", session, clock, retries=0)
        assert await sink2.send(alert_event()) is False
        with pytest.raises(ValueError):
            WebhookSink(f"http://user:pw@127.0.0.1:{port}/hook", session, clock, retries=0, token=TOKEN)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert text.count("gave up") == 2 and TOKEN not in text and "pw@" not in text


async def test_webhook_4xx_is_not_retried() -> None:
    async def refuse(request: web.Request) -> web.Response:
        hits.append(1)
        return web.Response(status=401)

    hits: list[int] = []
    app = web.Application()
    app.router.add_post("/", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as session:
            sink = WebhookSink(f"http://{host}:{port}/", session, FakeClock(), retries=3)
            assert await sink.send(alert_event()) is False
    finally:
        await runner.cleanup()
    assert hits == [1]


async def test_webhook_queue_run_and_close() -> None:
    clock = FakeClock()
    async with FlakyServer(failures=0) as server, aiohttp.ClientSession() as session:
        sink = WebhookSink(server.url, session, clock, retries=0, queue_size=3)
        for i in range(5):
            sink.submit(alert_event(i))  # never blocks; the two oldest are dropped
        assert sink.dropped == 2
        task = asyncio.create_task(sink.run())
        await until(lambda: len(server.requests) == 3)
        assert [b["alert_id"] for _, b in server.requests] == ["unhealthy:svc-2", "unhealthy:svc-3",
                                                               "unhealthy:svc-4"]
        assert "Authorization" not in server.requests[0][0]
        sink.close()
        await asyncio.wait_for(task, 5)
        sink.submit(alert_event(9))  # after close: ignored
        assert len(server.requests) == 3


async def test_alert_manager_feeds_sinks() -> None:
    clock = FakeClock()
    async with FlakyServer(failures=0) as server, aiohttp.ClientSession() as session:
        sink = WebhookSink(server.url, session, clock, retries=0)
        log_sink = LogSink()

        def emit(ev: AlertEvent) -> None:
            log_sink(ev)
            sink.submit(ev)

        mgr = AlertManager(AlertsConfig(), clock, {}, emit)
        task = asyncio.create_task(sink.run())
        mgr.raise_alert("storm_guard", "", "critical", "storm")
        mgr.resolve("storm_guard", "")
        await until(lambda: len(server.requests) == 2)
        assert [b["state"] for _, b in server.requests] == ["firing", "resolved"]
        sink.close()
        await asyncio.wait_for(task, 5)
