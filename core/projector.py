"""Projector: one service's state, as the frozen snapshot every reader sees.

Snapshots are built here and nowhere else, from what the service owns (its monitor, its recovery
slot, its maintenance) plus the two facts that belong to fleet-wide owners (heartbeats, the storm
guard). The GUI, the API and the headless status lines only ever read the result.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable

from core.actions import describe_action
from core.events import HeartbeatStatus
from core.snapshot import ServiceSnapshot

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.service import Service

SPARK_POINTS = 30  # latencies and values carried in a snapshot, for sparklines


def slot_builder(cls: type[Any]) -> Callable[..., Any]:
    """A keyword-only constructor for a frozen, slotted dataclass that sets each slot directly.

    A frozen dataclass's own __init__ goes through object.__setattr__ once per field (about 0.3 µs
    each: 12 µs for a snapshot's 39 fields, the largest part of rebuilding one, which happens once
    per check); the slots' descriptors do the same for half of that. Every field must be given, and
    the result is the same frozen value (`test_projector_builds_what_the_dataclass_builds`).
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not (params.frozen and "__slots__" in cls.__dict__) or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: only for frozen, slotted dataclasses without __post_init__")
    names = [f.name for f in dataclasses.fields(cls)]
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    scope.update({f"_set_{n}": cls.__dict__[n].__set__ for n in names})
    body = "".join(f"    _set_{n}(o, {n})\n" for n in names)
    exec(f"def build(*, {', '.join(names)}):\n    o = _new(_cls)\n{body}    return o\n", scope)  # noqa: S102
    build: Callable[..., Any] = scope["build"]
    return build


_snapshot = slot_builder(ServiceSnapshot)


def _quantile(sorted_values: list[float], q: float) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _tail(values: "itertools.islice[float] | list[float]", n: int) -> tuple[float, ...]:
    return tuple(values)[-n:]


def project(svc: Service, *, heartbeat: HeartbeatStatus, blocked_by: str, storm_tripped: bool,
            maintenance_until: tuple[bool, float | None]) -> ServiceSnapshot:
    mon = svc.monitor
    cfg = mon.cfg
    fd = cfg.fault_detection
    bview = mon.breaker.view()
    lat = mon.sorted_latencies
    maint, maint_until = maintenance_until
    snap: ServiceSnapshot = _snapshot(
        id=cfg.id, name=cfg.name, group=cfg.group, endpoint=cfg.endpoint,
        active_endpoint=mon.active_endpoint, active_endpoint_index=mon.active_index,
        status=mon.status, failed=mon.failed, consecutive_failures=mon.consecutive_failures,
        last_latency_ms=mon.last_latency_ms,
        p50_ms=_quantile(lat, 0.5) if lat else None, p95_ms=_quantile(lat, 0.95) if lat else None,
        last_check_wall=mon.last_check_wall, last_ok_wall=mon.last_ok_wall, last_error=mon.last_error,
        stale=mon.failed or bview.state.blocks_calls or mon.paused,
        breaker=bview, recovery=svc.recovery.view(), paused=mon.paused, maintenance=maint,
        maintenance_until_wall=maint_until, heartbeat=heartbeat, storm_tripped=storm_tripped,
        slow_threshold_ms=fd.slow_response_threshold_ms, timeout_ms=fd.timeout_seconds * 1000.0,
        check_interval_s=fd.check_interval_seconds, restart_action=describe_action(cfg.restart),
        checks_total=mon.checks_total, restarts_total=svc.recovery.restarts_total,
        latencies_ms=tuple(itertools.islice(mon.latencies, max(0, len(mon.latencies) - SPARK_POINTS), None)),
        max_failures=fd.max_failures, check_type=cfg.check_type, target=cfg.target, value=mon.last_value,
        detail=mon.last_detail,
        values=tuple(itertools.islice(mon.values, max(0, len(mon.values) - SPARK_POINTS), None)),
        last_reboot_wall=mon.last_reboot_wall, depends_on=cfg.depends_on, blocked_by=blocked_by,
    )
    return snap
