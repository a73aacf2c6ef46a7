"""The engine's cost follows the checks it makes, not the size of its fleet (docs/benchmarks.md).

Counted, never timed: on a FakeClock with scripted devices, how often per-service work runs between
checks, and where check wake-ups fall when the fleet is big enough to coalesce them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from core import engine as engine_module
from core.checks.base import CheckResult
from core.config import ServiceConfig
from core.monitor import COALESCE_MIN_RATE, MAX_WAKE_GRID_S, on_grid, wake_grid_s
from engine_harness import BASE, EngineHarness, FakeFleet, service


def _fleet_text(n: int, interval_s: float, jitter: float = 0.0) -> str:
    text = BASE.replace("check_interval_seconds = 1", f"check_interval_seconds = {interval_s!r}")
    text = text.replace("jitter_fraction = 0.0", f"jitter_fraction = {jitter!r}")
    return text + "".join(service(f"d{i:04d}") for i in range(n))


class _TimedFleet(FakeFleet):
    """Records the fake time of every check run."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def check_for(self, svc: ServiceConfig) -> Any:
        inner = super().check_for(svc)
        fleet = self

        class _Check:
            async def run(self, endpoint: str) -> CheckResult:
                fleet.times.append(fleet.clock.monotonic())
                return await inner.run(endpoint)

            def describe_error(self, exc: BaseException) -> Any:
                return inner.describe_error(exc)

            async def close(self) -> None:
                await inner.close()

        return _Check()


def test_the_wake_grid_follows_the_rate_the_fleet_asks_for() -> None:
    assert wake_grid_s(COALESCE_MIN_RATE / 2) == 0.0  # a small fleet: checks keep their exact times
    assert wake_grid_s(50.0) == MAX_WAKE_GRID_S  # 1,000 devices at 20 s: the engine's tick
    assert 0.0 < wake_grid_s(1000.0) < 0.02  # 1,000 at 1 s: a few checks per wake-up, not hundreds
    assert on_grid(10.03, 2.0, 0.0) == 2.0
    assert math.isclose(on_grid(10.03, 2.0, 0.25), 1.97)  # 12.03 → 12.0, the nearest point
    assert math.isclose(on_grid(10.03, 2.1, 0.25), 2.22)  # 12.13 → 12.25
    assert on_grid(10.0, 2.0, 0.25) == 2.0  # already on the grid: unchanged
    assert math.isclose(on_grid(10.1, 0.05, 0.25), 0.15)  # never at or before now: the next point


async def test_an_idle_fleet_does_no_per_service_work_between_its_checks(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    projected: list[str] = []
    real_project = engine_module.project

    def counting_project(svc: Any, **kw: Any) -> Any:
        projected.append(svc.id)
        return real_project(svc, **kw)

    monkeypatch.setattr(engine_module, "project", counting_project)
    fleet = _TimedFleet()
    async with EngineHarness(_fleet_text(200, 20.0), tmp_path, fleet) as h:
        await h.advance(25)
        projected.clear()
        checks_before = len(fleet.times)
        await h.advance(10)  # 40 ticks of the engine
        checks = len(fleet.times) - checks_before
        assert 80 <= checks <= 120  # 200 devices checked every 20 s, for 10 s
        # One snapshot rebuilt per check, none for the devices waiting for their next check: the
        # 40 ticks x 200 devices a per-tick sweep would cost are not paid.
        assert len(projected) == checks
        assert set(projected) == {h.engine.services[sid].id for sid in projected}


async def test_a_big_fleet_starts_its_checks_on_the_wake_grid(tmp_path: Path) -> None:
    fleet = _TimedFleet()
    # 60 devices at 1 s with jitter: 60 checks/s asked, above the coalescing threshold.
    async with EngineHarness(_fleet_text(60, 1.0, jitter=0.1), tmp_path, fleet) as h:
        grid = h.engine.wake_grid_s
        assert grid == wake_grid_s(60.0) > 0
        await h.advance(6)
        assert len(fleet.times) >= 5 * 60 * 0.9
        for t in fleet.times:
            steps = t / grid
            assert abs(steps - round(steps)) < 1e-6, f"a check at {t} is off the {grid} s grid"
        # Coalesced: far fewer distinct wake-up times than checks.
        assert len({round(t, 6) for t in fleet.times}) <= len(fleet.times) / 4


async def test_a_small_fleet_keeps_its_exact_check_times(tmp_path: Path) -> None:
    fleet = _TimedFleet()
    async with EngineHarness(_fleet_text(5, 1.0), tmp_path, fleet) as h:
        assert h.engine.wake_grid_s == 0.0
        await h.advance(4)
        per_device: dict[float, int] = {}
        for t in fleet.times:
            per_device[round(t % 1.0, 6)] = per_device.get(round(t % 1.0, 6), 0) + 1
        assert len(per_device) == 5  # five spread phases, each device on its own


async def test_a_reload_that_grows_the_fleet_moves_every_monitor_to_the_new_grid(tmp_path: Path) -> None:
    async with EngineHarness(_fleet_text(5, 1.0), tmp_path) as h:
        assert all(s.monitor.wake_grid_s == 0.0 for s in h.engine.services.values())
        h.path.write_text(_fleet_text(80, 1.0), encoding="utf-8")
        assert (await h.engine.reload(str(h.path), "test")).ok
        grid = wake_grid_s(80.0)
        assert h.engine.wake_grid_s == grid > 0
        assert {s.monitor.wake_grid_s for s in h.engine.services.values()} == {grid}


def test_projector_builds_what_the_dataclass_builds() -> None:
    import dataclasses

    from core.events import BreakerState, HeartbeatStatus, ServiceStatus
    from core.projector import slot_builder
    from core.snapshot import BreakerView, ServiceSnapshot

    build = slot_builder(ServiceSnapshot)
    values: dict[str, Any] = {}
    for i, f in enumerate(dataclasses.fields(ServiceSnapshot)):
        values[f.name] = f"v{i}"  # a distinct value per field: a swapped or dropped one shows
    values["breaker"] = BreakerView(BreakerState.OPEN, 3, 0, 1, 0, 2, 5, 4.5)
    values["status"], values["heartbeat"] = ServiceStatus.DEGRADED, HeartbeatStatus.MISSED
    built, made = build(**values), ServiceSnapshot(**values)
    assert built == made and hash(built) == hash(made) and type(built) is ServiceSnapshot
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.status = ServiceStatus.HEALTHY  # type: ignore[misc]
    with pytest.raises(TypeError):
        build(**{k: v for k, v in values.items() if k != "blocked_by"})  # every field, no silent default
    with pytest.raises(TypeError):
        slot_builder(type("Plain", (), {}))


async def test_the_sorted_latency_window_stays_the_window_sorted(tmp_path: Path) -> None:
    async with EngineHarness(_fleet_text(1, 1.0), tmp_path) as h:
        dev = h.dev("d0000")
        mon = h.engine.services["d0000"].monitor
        for i in range(300):  # past the 120-sample window, with repeats and reorderings
            dev.latency_ms = float((i * 37) % 50)
            await h.advance(1)
            assert mon.sorted_latencies == sorted(mon.latencies)
        assert len(mon.latencies) == 120
        snap = h.engine.snapshots()["d0000"]
        assert snap.p50_ms is not None and snap.p95_ms is not None and snap.p50_ms <= snap.p95_ms


async def test_the_grid_does_not_stretch_the_check_interval(tmp_path: Path) -> None:
    fleet = _TimedFleet()
    # 70 checks/s: a grid step of 16/70 s, which 1 s is not a multiple of.
    async with EngineHarness(_fleet_text(70, 1.0), tmp_path, fleet) as h:
        assert 1.0 / h.engine.wake_grid_s != round(1.0 / h.engine.wake_grid_s)
        await h.advance(5)
        before = len(fleet.times)
        await h.advance(30)
        per_device = (len(fleet.times) - before) / 70
        assert 29.0 <= per_device <= 31.0  # rounding up each time would give 30 s / (5 steps) = 26.25
