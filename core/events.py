"""Events: the only thing that leaves the core.

Every fact the engine learns or does is one frozen event value. The journal numbers it (`seq`) and
stores it before anyone else sees it; the JSON-lines stream, the HTTP API and the GUI all receive the
same values. `to_record()` is the one documented wire shape (docs/events.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
import typing
from typing import Any, ClassVar

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


class RecoveryStrategyName(StrEnum):
    RESTART = "restart"
    FAILOVER = "failover"
    FAILBACK = "failback"


class RecoveryState(StrEnum):
    """Where one recovery stands (the detail panel's and the wall's words)."""

    WAITING = "waiting"
    IN_PROGRESS = "in_progress"
    VERIFYING = "verifying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    GAVE_UP = "gave_up"

    @property
    def active(self) -> bool:
        """Still working on the device: the one definition of "recovery in progress"."""
        return self in (RecoveryState.WAITING, RecoveryState.IN_PROGRESS, RecoveryState.VERIFYING)


class AlertSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return (AlertSeverity.INFO, AlertSeverity.WARNING, AlertSeverity.CRITICAL).index(self)


class AlertState(StrEnum):
    """What happened to an alert (an AlertEvent's `state`)."""

    FIRING = "firing"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    SILENCED = "silenced"
    UNSILENCED = "unsilenced"


class HeartbeatStatus(StrEnum):
    """A heartbeat event's news, and a snapshot's heartbeat state (NONE: not configured)."""

    NONE = ""
    OK = "ok"
    WAITING = "waiting"
    MISSED = "missed"
    RESUMED = "resumed"


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
    check: str = "http"  # the check type that judged it
    value: float | str | bool | None = None  # what the check read, for types that read a value


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerEvent(Event):
    KIND: ClassVar[str] = "breaker"
    from_state: BreakerState = dataclasses.field(metadata={"wire": "from"})
    to_state: BreakerState = dataclasses.field(metadata={"wire": "to"})
    reason: str
    blocked_by: str = ""  # the down parent it sits behind: the transition is the parent's fault, not its own


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryEvent(Event):
    KIND: ClassVar[str] = "recovery"
    recovery_id: str
    strategy: RecoveryStrategyName
    attempt: int
    max_attempts: int
    outcome: RecoveryOutcome
    delay_s: float = 0.0
    failure_type: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatEvent(Event):
    KIND: ClassVar[str] = "heartbeat"
    status: HeartbeatStatus  # missed | resumed
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
    severity: AlertSeverity
    rule: str
    state: AlertState
    message: str
    group: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RebootEvent(Event):
    """The device restarted by itself: its uptime or a counter that only grows went backwards."""

    KIND: ClassVar[str] = "reboot"
    reason: str
    check: str = ""


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
    for cls in (ProbeEvent, BreakerEvent, RecoveryEvent, HeartbeatEvent, AnomalyEvent, AlertEvent, RebootEvent,
                ActionEvent, NotifyEvent)
}


class EventDecodeError(ValueError):
    """A record that is not an event this version knows: refused at the boundary, never half-read."""


def _enum_fields(cls: type[Event]) -> dict[str, type[StrEnum]]:
    hints = typing.get_type_hints(cls)
    return {name: t for name, t in hints.items() if isinstance(t, type) and issubclass(t, StrEnum)}


_ENUM_FIELDS: dict[str, dict[str, type[StrEnum]]] = {kind: _enum_fields(cls) for kind, cls in EVENT_TYPES.items()}


def event_from_record(record: dict[str, Any], mono: float = 0.0, wall: float = 0.0) -> Event:
    """Rebuild an event from its `to_record()` shape (the journal and the API stream carry it).

    Strict: an unknown kind or a word outside a field's vocabulary raises EventDecodeError, so no
    consumer ever has to guard against a raw string where an enum belongs.
    """
    kind = record.get("kind")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EventDecodeError(f"unknown event kind {kind!r}")
    kwargs: dict[str, Any] = {"service": record.get("service", ""), "mono": mono, "wall": wall,
                              "seq": int(record.get("seq", 0))}
    for f in dataclasses.fields(cls):
        if f.name in kwargs:
            continue
        wire = f.metadata.get("wire", f.name)
        if wire in record:
            kwargs[f.name] = record[wire]
    for name, enum in _ENUM_FIELDS[cls.KIND].items():
        if name in kwargs:
            try:
                kwargs[name] = enum(kwargs[name])
            except ValueError:
                raise EventDecodeError(f"{cls.KIND}.{name}: {kwargs[name]!r} is not one of "
                                       f"{', '.join(repr(m.value) for m in enum)}") from None
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise EventDecodeError(f"{cls.KIND}: {exc}") from None
