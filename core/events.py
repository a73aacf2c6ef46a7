"""Events: the only thing that leaves the core.

Every fact the engine learns or does is one frozen event value. The journal numbers it (`seq`) and
stores it before anyone else sees it; the JSON-lines stream, the HTTP API and the GUI all receive the
same values. `to_record()` is the one documented wire shape (docs/events.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from core.clock import iso_utc


class ServiceStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    FORCED_CLOSED = "forced_closed"

    @property
    def forced(self) -> bool:
        return self in (BreakerState.FORCED_OPEN, BreakerState.FORCED_CLOSED)

    @property
    def blocks_calls(self) -> bool:
        return self in (BreakerState.OPEN, BreakerState.FORCED_OPEN)


class RecoveryOutcome(StrEnum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    GAVE_UP = "gave_up"


class FailureType(StrEnum):
    """Why a service failed, derived from what the checks saw; strategies declare which they handle."""

    SERVICE_UNAVAILABLE = "service_unavailable"
    NETWORK_PARTITION = "network_partition"
    RESOURCE_EXHAUSTION = "resource_exhaustion"
    DATA_CORRUPTION = "data_corruption"
    CONFIGURATION_ERROR = "configuration_error"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Common to all events.

    Attributes:
        service: the service id, or "" for engine-wide facts.
        mono: monotonic time of the fact (durations, ordering within a run).
        wall: wall time of the fact (seconds since the epoch, UTC).
        seq: journal sequence number; 0 until the journal has stored the event.
    """

    KIND: ClassVar[str] = "event"
    service: str
    mono: float
    wall: float
    seq: int = 0

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in ("service", "mono", "wall", "seq"):
                continue
            value = getattr(self, f.name)
            out[f.metadata.get("wire", f.name)] = value.value if isinstance(value, StrEnum) else value
        return out

    def to_record(self) -> dict[str, Any]:
        """The documented JSON shape: ts, seq, kind, service, then the kind's own fields."""
        record: dict[str, Any] = {
            "ts": iso_utc(self.wall),
            "seq": self.seq,
            "kind": self.KIND,
            "service": self.service,
        }
        record.update(self.payload())
        return record


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeEvent(Event):
    """A service's verdict changed (or its consecutive-failure count did)."""

    KIND: ClassVar[str] = "probe"
    status: ServiceStatus
    latency_ms: float | None
    error: str | None
    consecutive_failures: int
    endpoint: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerEvent(Event):
    KIND: ClassVar[str] = "breaker"
    from_state: BreakerState = dataclasses.field(metadata={"wire": "from"})
    to_state: BreakerState = dataclasses.field(metadata={"wire": "to"})
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryEvent(Event):
    KIND: ClassVar[str] = "recovery"
    recovery_id: str
    strategy: str  # restart | failover | failback
    attempt: int
    max_attempts: int
    outcome: RecoveryOutcome
    delay_s: float = 0.0
    failure_type: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatEvent(Event):
    KIND: ClassVar[str] = "heartbeat"
    status: str  # missed | resumed
    last_beat_age_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AnomalyEvent(Event):
    KIND: ClassVar[str] = "anomaly"
    latency_ms: float
    baseline_ms: float
    score: float
    detector: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertEvent(Event):
    """An alert changed: firing, resolved, acknowledged, silenced, unsilenced."""

    KIND: ClassVar[str] = "alert"
    alert_id: str
    severity: str  # info | warning | critical
    rule: str
    state: str
    message: str
    group: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionEvent(Event):
    """Something a person (or the API) told the engine to do, with its origin and result."""

    KIND: ClassVar[str] = "action"
    command: str
    origin: str  # gui | api | cli | engine
    ok: bool = True
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyEvent(Event):
    """One delivery step of an alert notification to a channel (never the channel's URL or secrets)."""

    KIND: ClassVar[str] = "notify"
    channel: str
    outcome: str  # sent | failed | gave_up | rate_limited | dropped | unavailable
    attempt: int
    alert_id: str
    trigger: str  # firing | resolved | escalated
    detail: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.KIND: cls
    for cls in (ProbeEvent, BreakerEvent, RecoveryEvent, HeartbeatEvent, AnomalyEvent, AlertEvent, ActionEvent,
                NotifyEvent)
}


def event_from_record(record: dict[str, Any], mono: float = 0.0, wall: float = 0.0) -> Event:
    """Rebuild an event from its `to_record()` shape (the journal stores that shape)."""
    cls = EVENT_TYPES[record["kind"]]
    kwargs: dict[str, Any] = {"service": record.get("service", ""), "mono": mono, "wall": wall,
                              "seq": int(record.get("seq", 0))}
    for f in dataclasses.fields(cls):
        if f.name in kwargs:
            continue
        wire = f.metadata.get("wire", f.name)
        if wire in record:
            kwargs[f.name] = record[wire]
    for name, enum in (("status", ServiceStatus), ("from_state", BreakerState),
                       ("to_state", BreakerState), ("outcome", RecoveryOutcome)):
        if name in kwargs and cls is not HeartbeatEvent:
            try:
                kwargs[name] = enum(kwargs[name])
            except ValueError:
                pass
    return cls(**kwargs)


class EventListener(Protocol):
    def __call__(self, event: Event) -> None: ...
