"""Engine behaviour on a FakeClock with scripted devices: breaker, recovery, failover, storms,
maintenance, reload and removal. The real Engine, journal and recovery; no sockets, no sleeps."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from core.config import parse_config
from core.events import (ActionEvent, AlertEvent, AnomalyEvent, BreakerEvent, BreakerState, ProbeEvent,
                         RebootEvent, RecoveryEvent, RecoveryOutcome, RecoveryState, ServiceStatus)
from engine_harness import BASE, EngineHarness, service


async def test_a_dead_device_is_detected_isolated_restarted_and_verified(tmp_path: Path) -> None:
    async with EngineHarness(BASE + service("plc"), tmp_path) as h:
        await h.advance(3)
        assert h.engine.snapshots()["plc"].status is ServiceStatus.HEALTHY
        h.dev("plc").healthy = False
        h.dev("plc").heal_on_restart = True
        await h.advance(2.5)
        snap = h.engine.snapshots()["plc"]
        assert snap.failed and snap.breaker.state is BreakerState.OPEN
        await h.advance(15)
        outcomes = [e.outcome for e in h.of(RecoveryEvent, "plc")]
        assert outcomes[:1] == [RecoveryOutcome.STARTED] and RecoveryOutcome.SUCCEEDED in outcomes
        assert len(h.fleet.restarts) == 1
        assert h.engine.snapshots()["plc"].status is ServiceStatus.HEALTHY
        assert [e.to_state for e in h.of(BreakerEvent, "plc")] == [
            BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


async def test_restarts_back_off_and_give_up_at_the_cap(tmp_path: Path) -> None:
    async with EngineHarness(BASE + service("plc"), tmp_path) as h:
        h.dev("plc").healthy = False
        h.dev("plc").heal_on_restart = False
        await h.advance(120)
        started = [e for e in h.of(RecoveryEvent, "plc") if e.outcome is RecoveryOutcome.STARTED]
        assert [e.attempt for e in started] == [1, 2, 3]
        assert [e.delay_s for e in started] == [1.0, 2.0, 4.0]  # exponential from 1 s
        assert h.of(RecoveryEvent, "plc")[-1].outcome is RecoveryOutcome.GAVE_UP
        assert h.engine.snapshots()["plc"].recovery.state is RecoveryState.GAVE_UP  # type: ignore[union-attr]


async def test_storm_guard_stops_restarts_until_an_operator_resets(tmp_path: Path) -> None:
    text = BASE.replace("storm_max_restarts = 3", "storm_max_restarts = 2") + service("plc")
    async with EngineHarness(text, tmp_path) as h:
        h.dev("plc").healthy = False
        h.dev("plc").heal_on_restart = False
        await h.advance(1200)
        assert len(h.fleet.restarts) == 2 and h.engine.snapshots()["plc"].storm_tripped
        assert any(isinstance(e, AlertEvent) and e.rule == "storm_guard" for e in h.events)
        assert (await h.engine.reset(["plc"], "test")).ok
        await h.advance(60)
        assert len(h.fleet.restarts) > 2, "automatic restarts did not resume after the reset"


async def test_failover_to_a_healthy_backup_and_failback(tmp_path: Path) -> None:
    text = BASE + service("cam", restart=False, backup_endpoints='["http://cam-b.test"]')
    async with EngineHarness(text, tmp_path) as h:
        await h.advance(2)
        h.dev("cam").healthy = False
        await h.advance(4)
        snap = h.engine.snapshots()["cam"]
        assert snap.active_endpoint == "http://cam-b.test" and snap.status is ServiceStatus.HEALTHY
        h.dev("cam").healthy = True
        await h.advance(6)
        assert h.engine.snapshots()["cam"].active_endpoint_index == 0
        assert [e.strategy for e in h.of(RecoveryEvent, "cam") if e.outcome is RecoveryOutcome.SUCCEEDED] == [
            "failover", "failback"]


async def test_maintenance_holds_recovery_and_alerts_and_ends_by_itself(tmp_path: Path) -> None:
    text = BASE.replace("[alerts]", "[alerts]\nmaintenance_default_hours = 0.01") + service("plc")
    async with EngineHarness(text, tmp_path) as h:
        await h.advance(2)
        assert (await h.engine.maintenance(["rack"], True, "test")).ok
        h.dev("plc").healthy = False
        h.dev("plc").heal_on_restart = False
        await h.advance(20)
        assert h.fleet.restarts == [] and h.engine.alerts() == []
        assert h.engine.snapshots()["plc"].maintenance
        await h.advance(30)  # 0.01 h = 36 s after it started
        assert not h.engine.snapshots()["plc"].maintenance
        ended = [e for e in h.of(ActionEvent) if e.command == "maintenance_off"]
        assert ended and ended[0].origin == "engine"


async def test_forced_open_stops_checks_and_survives_a_restart_of_the_engine(tmp_path: Path) -> None:
    async with EngineHarness(BASE + service("plc"), tmp_path) as h:
        await h.advance(2)
        await h.engine.force_open(["plc"], "test")
        before = h.dev("plc").checks
        await h.advance(20)
        assert h.dev("plc").checks == before
    async with EngineHarness(BASE + service("plc"), tmp_path) as h2:
        assert h2.engine.snapshots()["plc"].breaker.state is BreakerState.FORCED_OPEN


async def test_pause_is_unknown_and_resume_checks_again(tmp_path: Path) -> None:
    async with EngineHarness(BASE + service("plc"), tmp_path) as h:
        await h.advance(2)
        await h.engine.pause(["plc"], "test")
        assert h.engine.snapshots()["plc"].status is ServiceStatus.UNKNOWN
        before = h.dev("plc").checks
        await h.advance(5)
        assert h.dev("plc").checks == before
        await h.engine.resume(["plc"], "test")
        await h.advance(2)
        assert h.engine.snapshots()["plc"].status is ServiceStatus.HEALTHY


async def test_reading_snapshots_never_publishes(tmp_path: Path) -> None:
    async with EngineHarness(BASE + service("plc"), tmp_path) as h:
        h.dev("plc").healthy = False
        await h.advance(2.5)
        assert h.engine.snapshots()["plc"].breaker.state is BreakerState.OPEN
        n = len(h.events)
        h.clock.advance_sync(10)  # the open timeout passes, but nobody ticks
        for _ in range(3):
            h.engine.refresh_views()
            h.engine.snapshots()
        assert len(h.events) == n


async def test_values_and_reboots_reach_events_and_snapshots(tmp_path: Path) -> None:
    async with EngineHarness(BASE + service("pdu"), tmp_path) as h:
        h.dev("pdu").value = 41.5
        await h.advance(3)
        snap = h.engine.snapshots()["pdu"]
        assert snap.value == 41.5 and snap.values[-1] == 41.5
        h.dev("pdu").reboot = "uptime went back from 9000 to 12"
        await h.advance(1)
        h.dev("pdu").reboot = None
        [reboot] = h.of(RebootEvent, "pdu")
        assert reboot.reason.startswith("uptime went back") and reboot.seq > 0
        assert h.engine.snapshots()["pdu"].last_reboot_wall is not None


async def test_a_latency_jump_nine_checks_after_start_raises_an_anomaly(tmp_path: Path) -> None:
    async with EngineHarness(BASE.replace("slow_response_threshold_ms = 200", "slow_response_threshold_ms = 1000")
                             + service("plc"), tmp_path) as h:
        h.dev("plc").latency_ms = 20.0
        await h.advance(8.5)
        h.dev("plc").latency_ms = 450.0
        await h.advance(5)
        assert h.of(AnomalyEvent, "plc"), "a x20 jump under the slow threshold went unnoticed"


# ---------------------------------------------------------------- reload and removal

CHANGED = {
    "fault_detection": "check_interval_seconds = 2\ntimeout_seconds = 0.7\nslow_response_threshold_ms = 300\n"
                       "max_failures = 4\nmax_body_bytes = 1000\njitter_fraction = 0.05",
    "circuit_breaker": "failure_threshold = 7\nsuccess_threshold = 4\ntimeout_seconds = 30\nhalf_open_max_calls = 2",
    "recovery": "max_restart_attempts = 5\nrestart_backoff_strategy = \"linear\"\nrestart_base_delay_seconds = 2\n"
                "restart_max_delay_seconds = 20\nreset_after_stable_seconds = 42\nrestart_timeout_seconds = 3\n"
                "verify_checks = 3\nverify_timeout_seconds = 50\nauto_restart = false\nstorm_max_restarts = 9\n"
                "storm_period_seconds = 60\ngroup_storm_max_restarts = 30\nfailover = false\nfailback_after_checks = 5",
}


async def test_a_reload_that_changes_every_per_service_key_takes_effect(tmp_path: Path) -> None:
    async with EngineHarness(BASE + service("plc"), tmp_path) as h:
        await h.advance(2)
        h.dev("plc").healthy = False
        h.dev("plc").heal_on_restart = False
        await h.advance(4)  # a recovery episode exists: its tracker must follow the reload too
        per_service = "".join(f"[services.{name}]\n{body}\n" for name, body in CHANGED.items())
        new_text = (BASE + service("plc", group="rack-2", name='"PLC two"', tags='["x"]',
                                   backup_endpoints='["http://plc-b.test"]', heartbeat_interval_seconds="9",
                                   tls_verify="false", health_path='"/hz"',
                                   check='{ type = "http", method = "HEAD" }') + per_service)
        h.path.write_text(new_text, encoding="utf-8")
        assert (await h.engine.reload(str(h.path), "test")).ok
        svc = h.engine.services["plc"]
        want = parse_config(new_text).service("plc")
        assert svc.cfg == want
        assert svc.monitor.breaker.config == want.circuit_breaker  # type: ignore[union-attr]
        assert svc.recovery.tracker._reset_after == 42  # the bug: trackers kept their first value
        assert h.engine.heartbeat.knows("plc")
        assert h.fleet.made.count("plc") == 2, "a changed check was not remade"
        snap = h.engine.snapshots()["plc"]
        assert (snap.name, snap.group, snap.check_interval_s, snap.max_failures) == ("PLC two", "rack-2", 2.0, 4)


async def test_after_removing_a_service_no_component_holds_its_id(tmp_path: Path) -> None:
    text = BASE + service("keep") + service("gone", heartbeat_interval_seconds="2")
    async with EngineHarness(text, tmp_path) as h:
        h.dev("gone").healthy = False
        h.dev("gone").heal_on_restart = False
        await h.advance(30)
        assert h.fleet.restarts  # recovery, storm and limiter state exist for it
        h.path.write_text(BASE + service("keep"), encoding="utf-8")
        assert (await h.engine.reload(str(h.path), "test")).ok
        await h.advance(1)
        holders = _holders(h.engine, "gone")
        assert holders == [], f"still holding 'gone': {holders}"
        assert "gone" in h.fleet.closed
        assert "gone" not in h.engine.snapshots()


def _holders(root: Any, needle: str) -> list[str]:
    """Paths of containers under `root` (the engine's object graph) keyed by or holding `needle`."""
    found: list[str] = []
    seen: set[int] = set()

    def walk(obj: Any, path: str, depth: int) -> None:
        if id(obj) in seen or depth > 6 or isinstance(obj, (str, bytes, int, float, bool, type(None))):
            return
        seen.add(id(obj))
        if isinstance(obj, dict):
            if needle in obj or f"group:{needle}" in obj:
                found.append(path)
            for k, v in list(obj.items()):
                walk(v, f"{path}[{k!r}]", depth + 1)
        elif isinstance(obj, (list, tuple, set, frozenset)):
            if needle in obj:
                found.append(path)
            for i, v in enumerate(list(obj)):
                walk(v, f"{path}[{i}]", depth + 1)
        elif dataclasses.is_dataclass(obj) or hasattr(obj, "__dict__") or hasattr(obj, "__slots__"):
            mod = type(obj).__module__
            if not mod.startswith("core."):
                return
            names = list(getattr(obj, "__dict__", {}))
            for cls in type(obj).__mro__:
                names += list(getattr(cls, "__slots__", ()))
            for name in names:
                if name in ("config", "listeners", "journal", "_events"):
                    continue  # the journal keeps history on purpose
                try:
                    walk(getattr(obj, name), f"{path}.{name}", depth + 1)
                except AttributeError:
                    pass

    walk(root, "engine", 0)
    return found


@pytest.mark.parametrize("key", ["unknown_thing"])
async def test_a_bad_reload_keeps_the_running_config(tmp_path: Path, key: str) -> None:
    async with EngineHarness(BASE + service("plc"), tmp_path) as h:
        h.path.write_text(BASE + service("plc", **{key: "1"}), encoding="utf-8")
        result = await h.engine.reload(str(h.path), "test")
        assert not result.ok and "unknown_thing" in result.message
        assert "plc" in h.engine.services
        assert [e for e in h.of(ActionEvent) if e.command == "reload"][-1].ok is False


async def test_probe_events_name_their_check(tmp_path: Path) -> None:
    async with EngineHarness(BASE + service("plc"), tmp_path) as h:
        await h.advance(2)
        [first] = h.of(ProbeEvent, "plc")[:1]
        assert first.check == "http" and first.to_record()["check"] == "http"


async def test_a_wall_clock_step_does_not_end_maintenance_early(tmp_path: Path) -> None:
    async with EngineHarness(BASE + service("plc"), tmp_path) as h:
        assert (await h.engine.maintenance(["plc"], True, "test", until_wall=h.clock.wall() + 600)).ok
        h.clock.step_wall(3600)  # an NTP correction of +1 h
        await h.advance(60)
        assert h.engine.snapshots()["plc"].maintenance, "a wall-clock step ended maintenance early"
        await h.advance(560)
        assert not h.engine.snapshots()["plc"].maintenance


# ---------------------------------------------------------------- control room (issue 13)

def _rack_behind_switch(children: int = 10) -> str:
    text = BASE + service("switch-3", restart=False)
    for i in range(children):
        text += service(f"plc-{i}", depends_on='["switch-3"]')
    return text


async def test_a_dead_switch_gives_one_alert_no_child_restarts_and_blocked_rows(tmp_path: Path) -> None:
    async with EngineHarness(_rack_behind_switch(), tmp_path) as h:
        await h.advance(3)
        for sid in ["switch-3", *(f"plc-{i}" for i in range(10))]:
            h.dev(sid).healthy = False
            h.dev(sid).heal_on_restart = False
        await h.advance(60)
        assert h.fleet.restarts == [], "children behind a dead switch were restarted"
        snaps = h.engine.snapshots()
        assert all(snaps[f"plc-{i}"].blocked_by == "switch-3" for i in range(10))
        firing = [e for e in h.of(AlertEvent) if e.state == "firing"]
        assert {e.service for e in firing} == {"switch-3"}, [e.alert_id for e in firing]
        # The children's breakers still move (their trials fail through the switch); each move says
        # whose fault it is, so the timeline and the stream do not read as twenty alarms.
        trials = [e for e in h.of(BreakerEvent) if e.service != "switch-3"
                  and BreakerState.HALF_OPEN in (e.from_state, e.to_state)]
        assert trials and all(e.blocked_by == "switch-3" for e in trials)
        assert all(e.blocked_by == "" for e in h.of(BreakerEvent, "switch-3"))
        h.dev("switch-3").healthy = True
        await h.advance(30)
        assert all(not h.engine.snapshots()[f"plc-{i}"].blocked_by for i in range(10))
        assert h.fleet.restarts, "released children still failing were not judged afresh"


async def test_scheduled_maintenance_across_midnight_in_berlin_holds_recovery(tmp_path: Path) -> None:
    from core.schedule import utc

    text = (BASE + service("plc") + '[[maintenance]]\nname = "night"\nservices = ["plc"]\nstart = "23:30"\n'
            'duration_minutes = 60\nrepeat = "daily"\ntime_zone = "Europe/Berlin"\n')
    fleet = None
    h = EngineHarness(text, tmp_path)
    # 23:00 Berlin in winter is 22:00 UTC: start half an hour before the window opens.
    h.clock.step_wall(utc(2026, 12, 1, 22, 0) - h.clock.wall())
    async with h:
        await h.advance(1800 + 5)
        assert h.engine.snapshots()["plc"].maintenance
        h.dev("plc").healthy = False
        h.dev("plc").heal_on_restart = False
        await h.advance(600)
        assert h.fleet.restarts == []
        await h.advance(3000)  # past 00:30 Berlin
        assert not h.engine.snapshots()["plc"].maintenance
        await h.advance(30)
        assert h.fleet.restarts, "recovery did not resume after the window"
        actions = [e.command for e in h.of(ActionEvent)]
        assert "maintenance_window_start" in actions and "maintenance_window_end" in actions
    del fleet


async def test_a_critical_alert_unacknowledged_escalates_to_the_next_channel(tmp_path: Path) -> None:
    from core.events import NotifyEvent

    text = (BASE + service("plc", restart=False)
            + '[[notify]]\nname = "desk"\nurl = "json://127.0.0.1:9/desk"\nmin_severity = "critical"\n'
            + '[[notify]]\nname = "oncall"\nurl = "json://127.0.0.1:9/oncall"\nmin_severity = "critical"\n'
              'escalate_after_minutes = 10\n')
    sent: list[tuple[str, str, str]] = []
    async with EngineHarness(text, tmp_path) as h:
        assert h.engine.notifier is not None

        async def deliver(url: str, message):  # type: ignore[no-untyped-def]
            sent.append((url.rsplit("/", 1)[-1], message.trigger, message.title))
            return True, ""
        h.engine.notifier._deliver = deliver  # the real delivery is tested against real receivers
        h.dev("plc").healthy = False
        await h.advance(30)
        assert [(c, t) for c, t, _ in sent] == [("desk", "firing")]
        await h.advance(600)
        assert ("oncall", "escalated") in [(c, t) for c, t, _ in sent]
        assert any(isinstance(e, NotifyEvent) and e.channel == "oncall" for e in h.events)


async def test_an_unknown_result_is_neither_success_nor_failure(tmp_path: Path) -> None:
    from core.checks.base import CheckResult

    async with EngineHarness(BASE + service("sensor"), tmp_path) as h:
        await h.advance(2)
        check = h.engine.services["sensor"].monitor.check

        async def unknown(endpoint: str) -> CheckResult:
            return CheckResult(ServiceStatus.UNKNOWN, 0.0, "broker reconnecting", check="mqtt")
        check.run = unknown  # type: ignore[method-assign]
        await h.advance(10)
        snap = h.engine.snapshots()["sensor"]
        assert snap.status is ServiceStatus.UNKNOWN and snap.consecutive_failures == 0 and not snap.failed
        assert snap.breaker.state is BreakerState.CLOSED and h.fleet.restarts == []
