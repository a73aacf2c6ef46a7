"""The engine end to end against the simulated rack on loopback: detect, isolate, recover, journal.

Real sockets and the real clock with fast timings (checks every 0.1 s); waits are bounded polls on
observable state, never sleeps that prove a timing rule (those are unit-tested with FakeClock).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Awaitable, Callable, Iterator

import pytest

from core.config import parse_config
from core.engine import Engine
from core.events import (ActionEvent, AlertEvent, AnomalyEvent, BreakerEvent, BreakerState, Event, HeartbeatEvent, ProbeEvent,
                         RecoveryEvent, RecoveryOutcome, ServiceStatus)
from core.sim.devices import DeviceSpec
from core.sim.server import SimServer

FAST = """
[fault_detection]
check_interval_seconds = 0.1
timeout_seconds = 0.5
slow_response_threshold_ms = 200
max_failures = 2
jitter_fraction = 0.0
[circuit_breaker]
failure_threshold = 2
success_threshold = 2
timeout_seconds = 0.6
[recovery]
restart_base_delay_seconds = 0.2
restart_max_delay_seconds = 1.0
verify_checks = 2
verify_timeout_seconds = 5
storm_max_restarts = {storm}
storm_period_seconds = 600
failback_after_checks = 3
[alerts]
unhealthy_for_seconds = 0.3
[api]
enabled = false
"""


def service_toml(server: SimServer, device: str, **extra: str) -> str:
    base = server.base_url(device)
    lines = ["[[services]]", f'id = "{device}"', f'endpoint = "{base}"', f'group = "rack"',
             f'restart = {{ http = {{ url = "{base}/restart" }} }}']
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type, service: str | None = None) -> list:
        return [e for e in self.events if isinstance(e, kind) and (service is None or e.service == service)]


async def witness_checks(engine: Engine, service: str, n: int) -> None:
    """Wait until `service` has been checked n more times: engine progress, not a guessed sleep."""
    target = engine.snapshots()[service].checks_total + n
    await wait_for(lambda: engine.snapshots()[service].checks_total >= target, what=f"{n} checks of {service}")


async def wait_for(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., Awaitable[tuple[Engine, Recorder]]]]:
    engines: list[Engine] = []

    async def make(server: SimServer, services: str, storm: int = 5, alerts: str = "") -> tuple[Engine, Recorder]:
        head = FAST.format(storm=storm).replace("[alerts]\n", "[alerts]\n" + alerts)
        config = parse_config(head + services, label="test.toml")
        engine = Engine(config, state_dir=str(tmp_path))
        rec = Recorder()
        engine.listeners.append(rec)
        await engine.start()
        engines.append(engine)
        return engine, rec

    yield make
    for e in engines:
        assert not e._running, "test must stop its engine"


async def test_down_device_is_detected_isolated_restarted_and_recovers(make_engine) -> None:
    async with SimServer([DeviceSpec("d1", reboot_s=0.3)]) as server:
        engine, rec = await make_engine(server, service_toml(server, "d1"))
        try:
            await wait_for(lambda: engine.snapshots()["d1"].status is ServiceStatus.HEALTHY, what="healthy")
            server.device("d1").set_behaviour("down")
            await wait_for(lambda: any(e.outcome is RecoveryOutcome.SUCCEEDED for e in rec.of(RecoveryEvent, "d1")),
                           what="verified restart")
        finally:
            await engine.stop()
    probes = rec.of(ProbeEvent, "d1")
    failing = [p for p in probes if p.status is ServiceStatus.UNHEALTHY]
    # failed after max_failures (2) consecutive failures, counted up in events
    assert [p.consecutive_failures for p in failing[:2]] == [1, 2]
    transitions = [(b.from_state, b.to_state) for b in rec.of(BreakerEvent, "d1")]
    assert transitions[:3] == [(BreakerState.CLOSED, BreakerState.OPEN),
                               (BreakerState.OPEN, BreakerState.HALF_OPEN),
                               (BreakerState.HALF_OPEN, BreakerState.CLOSED)]
    recoveries = rec.of(RecoveryEvent, "d1")
    assert recoveries[0].outcome is RecoveryOutcome.STARTED and recoveries[0].delay_s == pytest.approx(0.2)
    assert recoveries[-1].outcome is RecoveryOutcome.SUCCEEDED
    assert len({r.recovery_id for r in recoveries}) == 1
    assert server.device("d1").restarts == 1
    # published only after the journal held it: every event the listener saw is in the journal
    assert [e.seq for e in rec.events] == sorted(e.seq for e in rec.events)
    assert all(e.seq > 0 for e in rec.events)


async def test_journal_holds_every_event_before_listeners_see_it(make_engine) -> None:
    async with SimServer([DeviceSpec("d1", "flapping", {"period_s": 0.3})]) as server:
        engine, _ = await make_engine(server, service_toml(server, "d1"))
        seen_in_journal: list[bool] = []
        engine.listeners.insert(0, lambda e: seen_in_journal.append(engine.journal.last_seq() >= e.seq > 0))
        try:
            await wait_for(lambda: len(seen_in_journal) >= 8, what="events")
        finally:
            await engine.stop()
    assert all(seen_in_journal)


async def test_restarts_follow_backoff_and_give_up_at_the_cap(make_engine) -> None:
    # sticky: the device fails again right after every reboot
    async with SimServer([DeviceSpec("d1", "down", reboot_s=0.05, sticky=True)]) as server:
        engine, rec = await make_engine(server, service_toml(server, "d1"))
        try:
            await wait_for(lambda: any(e.outcome is RecoveryOutcome.GAVE_UP for e in rec.of(RecoveryEvent, "d1")),
                           timeout=20, what="gave up")
        finally:
            await engine.stop()
    started = [e for e in rec.of(RecoveryEvent, "d1") if e.outcome is RecoveryOutcome.STARTED]
    # exponential: 0.2, 0.4, 0.8 (max 1.0), three attempts (the default cap), then gave up
    assert [e.delay_s for e in started] == pytest.approx([0.2, 0.4, 0.8])
    assert [e.attempt for e in started] == [1, 2, 3]
    assert server.device("d1").restarts == 3
    alerts = [a for a in rec.of(AlertEvent, "d1") if a.rule == "recovery_gave_up"]
    assert alerts and alerts[0].severity == "critical"


async def test_storm_guard_stops_automatic_restarts_until_reset(make_engine) -> None:
    async with SimServer([DeviceSpec("d1", "down", reboot_s=0.05, sticky=True)]) as server:
        engine, rec = await make_engine(server, service_toml(server, "d1"), storm=2)
        try:
            await wait_for(lambda: engine.snapshots()["d1"].storm_tripped, timeout=20, what="storm guard")
            restarts_at_trip = server.device("d1").restarts
            assert restarts_at_trip == 2
            storm = [a for a in rec.of(AlertEvent) if a.rule == "storm_guard" and a.state == "firing"]
            assert storm and storm[0].severity == "critical"
            result = await engine.reset(["d1"], "test")
            assert result.ok
            await wait_for(lambda: not engine.snapshots()["d1"].storm_tripped, what="storm cleared")
            assert engine.journal.load_state("storm:d1") is None
        finally:
            await engine.stop()


async def test_failover_to_backup_and_failback(make_engine) -> None:
    async with SimServer([DeviceSpec("gw", reboot_s=0.2), DeviceSpec("gw-standby")]) as server:
        backup = server.base_url("gw-standby")
        cfg = service_toml(server, "gw", backup_endpoints=f'["{backup}"]').replace(
            "[[services]]", "[[services]]\n", 1)
        engine, rec = await make_engine(server, cfg)
        try:
            await wait_for(lambda: engine.snapshots()["gw"].status is ServiceStatus.HEALTHY, what="healthy")
            server.device("gw").set_behaviour("down")
            await wait_for(lambda: engine.snapshots()["gw"].active_endpoint == backup, what="failover")
            standby_before = server.device("gw-standby").requests
            await wait_for(lambda: server.device("gw-standby").requests > standby_before + 2, what="checks on backup")
            # the restart repairs the primary; after failback_after_checks healthy side checks it comes back
            await wait_for(lambda: engine.snapshots()["gw"].active_endpoint_index == 0, timeout=15, what="failback")
        finally:
            await engine.stop()
    strategies = [(e.strategy, e.outcome) for e in rec.of(RecoveryEvent, "gw")]
    assert ("failover", RecoveryOutcome.SUCCEEDED) in strategies
    assert ("failback", RecoveryOutcome.SUCCEEDED) in strategies
    assert strategies.index(("failover", RecoveryOutcome.SUCCEEDED)) < strategies.index(
        ("failback", RecoveryOutcome.SUCCEEDED))


async def test_missed_heartbeat_is_a_fault_and_a_beat_clears_it(make_engine) -> None:
    async with SimServer([DeviceSpec("hb")]) as server:
        engine, rec = await make_engine(server, service_toml(server, "hb", heartbeat_interval_seconds="0.1"))
        try:
            await wait_for(lambda: engine.snapshots()["hb"].heartbeat == "missed", what="missed heartbeat")
            assert rec.of(HeartbeatEvent, "hb")[-1].status == "missed"
            assert engine.beat("hb") is True
            assert engine.beat("nope") is False
            await wait_for(lambda: engine.snapshots()["hb"].heartbeat == "ok", what="resumed")
        finally:
            await engine.stop()
    assert [e.status for e in rec.of(HeartbeatEvent, "hb")][:2] == ["missed", "resumed"]


async def test_forced_open_stops_checks_is_journaled_and_survives_restart(make_engine, tmp_path: Path) -> None:
    async with SimServer([DeviceSpec("d1"), DeviceSpec("witness")]) as server:
        services = service_toml(server, "d1") + service_toml(server, "witness")
        engine, rec = await make_engine(server, services)
        try:
            await wait_for(lambda: engine.snapshots()["d1"].checks_total >= 2, what="checks")
            result = await engine.force_open(["d1"], "gui")
            assert result.ok
            assert engine.snapshots()["d1"].breaker.state is BreakerState.FORCED_OPEN
            before = server.device("d1").requests
            await witness_checks(engine, "witness", 5)  # five intervals pass
            assert server.device("d1").requests == before  # no check hits the endpoint while open
            assert engine.snapshots()["d1"].stale  # last-known-good shown, marked stale
        finally:
            await engine.stop()
        actions = rec.of(ActionEvent, "d1")
        assert actions[-1].command == "force_open" and actions[-1].origin == "gui"
        engine2, _ = await make_engine(server, services)
        try:
            assert engine2.snapshots()["d1"].breaker.state is BreakerState.FORCED_OPEN
            history = engine2.journal.events(service="d1", kinds=["action"])
            assert history and history[-1].command == "force_open"  # type: ignore[attr-defined]
        finally:
            await engine2.stop()


async def test_maintenance_holds_automatic_recovery_and_alerts(make_engine) -> None:
    async with SimServer([DeviceSpec("d1", reboot_s=0.1), DeviceSpec("witness")]) as server:
        engine, rec = await make_engine(server, service_toml(server, "d1") + service_toml(
            server, "witness").replace('group = "rack"', 'group = "other"'))
        try:
            assert (await engine.maintenance(["rack"], True, "gui")).ok
            server.device("d1").set_behaviour("down")
            await wait_for(lambda: engine.snapshots()["d1"].failed, what="failed")
            await witness_checks(engine, "witness", 8)  # well past the first backoff delay (0.2 s)
            assert server.device("d1").restarts == 0
            assert engine.snapshots()["d1"].recovery is None  # no recovery was even started
            assert not [a for a in rec.of(AlertEvent) if a.state == "firing"]
            assert engine.snapshots()["d1"].maintenance
            assert (await engine.maintenance(["rack"], False, "gui")).ok
            unknown = await engine.maintenance(["no-such-rack"], True, "gui")
            assert not unknown.ok and "no-such-rack" in unknown.message
        finally:
            await engine.stop()
    commands = [a.command for a in rec.of(ActionEvent)]
    assert commands[:2] == ["maintenance_on", "maintenance_off"]


async def test_pause_makes_status_unknown_and_resume_checks_again(make_engine) -> None:
    async with SimServer([DeviceSpec("d1"), DeviceSpec("witness")]) as server:
        engine, _ = await make_engine(server, service_toml(server, "d1") + service_toml(server, "witness"))
        try:
            await wait_for(lambda: engine.snapshots()["d1"].status is ServiceStatus.HEALTHY, what="healthy")
            await engine.pause(["d1"], "api")
            assert engine.snapshots()["d1"].status is ServiceStatus.UNKNOWN
            before = server.device("d1").requests
            await witness_checks(engine, "witness", 4)
            assert server.device("d1").requests == before
            await engine.resume(["d1"], "api")
            await wait_for(lambda: engine.snapshots()["d1"].status is ServiceStatus.HEALTHY, what="checked again")
        finally:
            await engine.stop()


async def test_manual_restart_reaches_the_device(make_engine) -> None:
    async with SimServer([DeviceSpec("d1", reboot_s=0.1)]) as server:
        engine, rec = await make_engine(server, service_toml(server, "d1"))
        try:
            result = await engine.restart(["d1"], "gui")
            assert result.ok
            await wait_for(lambda: server.device("d1").restarts == 1, what="restart received")
            none = await engine.restart(["ghost"], "gui")
            assert not none.ok
        finally:
            await engine.stop()
    assert any(a.command == "restart" and a.origin == "gui" for a in rec.of(ActionEvent, "d1"))


async def test_reload_adds_removes_and_refuses_a_bad_config(make_engine, tmp_path: Path) -> None:
    async with SimServer([DeviceSpec("a"), DeviceSpec("b")]) as server:
        engine, rec = await make_engine(server, service_toml(server, "a"))
        try:
            good = tmp_path / "new.toml"
            good.write_text(FAST.format(storm=5) + service_toml(server, "b"))
            result = await engine.reload(str(good), "gui")
            assert result.ok, result.message
            assert set(engine.snapshots()) == {"b"}
            await wait_for(lambda: engine.snapshots()["b"].checks_total > 0, what="new service checked")
            bad = tmp_path / "bad.toml"
            bad.write_text("[fault_detection]\ncheck_interval_seconds = -1\n")
            refused = await engine.reload(str(bad), "gui")
            assert not refused.ok
            assert refused.message == "bad.toml: fault_detection.check_interval_seconds: must be greater than 0, got -1.0"
            assert set(engine.snapshots()) == {"b"}  # the running config stays
        finally:
            await engine.stop()
    reloads = [a for a in rec.of(ActionEvent) if a.command == "reload"]
    assert [r.ok for r in reloads] == [True, False]


async def test_garbage_and_hanging_devices_get_verdicts_without_crashing(make_engine) -> None:
    devices = [DeviceSpec("garbage", "garbage"), DeviceSpec("hang", "hanging"), DeviceSpec("huge", "huge"),
               DeviceSpec("reset", "reset"), DeviceSpec("ok")]
    async with SimServer(devices) as server:
        engine, rec = await make_engine(server, "".join(service_toml(server, d.id) for d in devices))
        try:
            await wait_for(lambda: all(s.failed for k, s in engine.snapshots().items() if k != "ok"),
                           what="all bad devices failed")
            assert engine.snapshots()["ok"].status is ServiceStatus.HEALTHY
        finally:
            await engine.stop()

    def first_error(device: str) -> str:
        return next(p.error or "" for p in rec.of(ProbeEvent, device) if p.status is ServiceStatus.UNHEALTHY)

    assert "timeout" in first_error("hang")
    assert "larger than" in first_error("huge")
    assert "not valid JSON" in first_error("garbage") or "not text" in first_error("garbage")
    assert first_error("reset")


async def test_anomalous_latency_raises_an_anomaly_event_and_alert(make_engine) -> None:
    async with SimServer([DeviceSpec("d1")]) as server:
        services = service_toml(server, "d1") + "[anomaly]\nwarmup_samples = 8\nk = 2\nn = 3\n"
        engine, rec = await make_engine(server, services.replace("[[services]]", "[[services]]", 1))
        try:
            await wait_for(lambda: engine.snapshots()["d1"].checks_total >= 10, what="warm-up checks")
            server.device("d1").set_behaviour("slow", delay_ms=60)  # slower than normal, not "slow"
            await wait_for(lambda: bool(rec.of(AnomalyEvent, "d1")), what="anomaly")
        finally:
            await engine.stop()
    anomaly = rec.of(AnomalyEvent, "d1")[0]
    assert anomaly.latency_ms >= 55 and anomaly.baseline_ms < 20
    assert engine.snapshots()["d1"].status is ServiceStatus.HEALTHY  # an anomaly is not a state change
    assert any(a.rule == "anomaly" and a.state == "firing" for a in rec.of(AlertEvent, "d1"))


async def test_alerts_reach_the_webhook(make_engine) -> None:
    from aiohttp import web

    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with SimServer([DeviceSpec("d1", "down")]) as server:
            hook_url = f'webhook_url = "http://127.0.0.1:{port}/hook"\n'
            engine, _ = await make_engine(server, service_toml(server, "d1").replace("restart = ", "# restart = "),
                                          alerts=hook_url)
            try:
                await wait_for(lambda: any(r.get("rule") == "breaker_open" for r in received), what="webhook POST")
            finally:
                await engine.stop()
    finally:
        await runner.cleanup()
    first = next(r for r in received if r["rule"] == "breaker_open")
    assert first["kind"] == "alert" and first["state"] == "firing" and first["service"] == "d1" and first["seq"] > 0


async def test_maintenance_always_ends_by_itself(make_engine) -> None:
    async with SimServer([DeviceSpec("d1")]) as server:
        engine, rec = await make_engine(server, service_toml(server, "d1"))
        try:
            result = await engine.maintenance(["d1"], True, "gui")  # no end time given
            snap = engine.snapshots()["d1"]
            assert snap.maintenance and snap.maintenance_until_wall is not None
            assert snap.maintenance_until_wall == pytest.approx(time.time() + 8 * 3600, abs=5)
            assert "until" in result.message
            await engine.maintenance(["d1"], True, "gui", until_wall=time.time() + 0.3)
            await wait_for(lambda: not engine.snapshots()["d1"].maintenance, what="maintenance window end")
        finally:
            await engine.stop()
    ended = [a for a in rec.of(ActionEvent, "d1") if a.command == "maintenance_off"]
    assert ended and ended[0].origin == "engine" and ended[0].detail == "maintenance window ended"
