"""Alerts: what needs a person's attention, managed the ISA-18.2 way, and where alerts go.

The manager keeps two layers apart:

* **conditions** — what is true about the fleet right now according to the rules ("svc-1 has been
  unhealthy for 30 s", "rack-a is flooding"). Events and time set and clear them.
* **alerts** — what is shown and announced. An alert is active while its condition holds and
  nothing holds it back (maintenance, or the group alert of a flooding rack). Acknowledgement is a
  separate fact: a cleared alert that was never acknowledged stays on the list until someone
  acknowledges it; shelving (silence) flags an alert until its expiry and then lifts by itself.

Keeping conditions separate is what makes "held, not lost" work: when maintenance ends or a group
alert resolves, every condition that is still true simply fires. Dependencies hold the same way: a
service behind a down parent (`set_blocked()`) has its fault alerts held as "blocked by switch-3",
and the parent's alert says how many devices it stands for.

Sinks: `LogSink` writes firing/resolved to the log; `WebhookSink` POSTs events as JSON from its own
bounded queue so a slow receiver never blocks the engine.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from dataclasses import dataclass
from typing import Callable, Mapping
from urllib.parse import urlsplit

import aiohttp

from core.backoff import backoff_delay
from core.clock import Clock
from core.config import AlertsConfig
from core.snapshot import AlertView
from core.logs import ALERTS as log
from core.events import (AlertSeverity, AlertState,
    AlertEvent,
    AnomalyEvent,
    BreakerEvent,
    BreakerState,
    Event,
    HeartbeatEvent,
    ProbeEvent,
    RecoveryEvent,
    RecoveryOutcome,
    ServiceStatus,
)


SEVERITIES = tuple(AlertSeverity)

RULE_UNHEALTHY = "unhealthy"
RULE_BREAKER_OPEN = "breaker_open"
RULE_RECOVERY_GAVE_UP = "recovery_gave_up"
RULE_HEARTBEAT_MISSED = "heartbeat_missed"
RULE_ANOMALY = "anomaly"
RULE_STORM_GUARD = "storm_guard"
RULE_GROUP_DOWN = "group_down"

# An anomaly is a burst of slow samples, not a state with an explicit end; it counts as over after
# this long without a new anomaly event for the service.
ANOMALY_CLEAR_SECONDS = 300.0

# Per-device rules that a group alert stands in for: when a rack loses power, its devices also miss
# heartbeats, open breakers and exhaust recoveries; all of that is the same one fact. Engine-raised
# rules (storm_guard) are about the engine's own behaviour and are never folded into a group.
_FLOOD_HELD_RULES = frozenset(
    {RULE_UNHEALTHY, RULE_BREAKER_OPEN, RULE_RECOVERY_GAVE_UP, RULE_HEARTBEAT_MISSED, RULE_ANOMALY})


def alert_id(rule: str, target: str) -> str:
    """Stable id of the alert of `rule` for a service (or, for group_down, a group).

    Engine-wide alerts (no service) are just the rule name, e.g. "storm_guard".
    """
    if rule == RULE_GROUP_DOWN:
        return f"group:{target}"
    return f"{rule}:{target}" if target else rule


# The shown form of an alert is the snapshot value every consumer already reads (GUI, API).
Alert = AlertView


@dataclass(slots=True)
class _Condition:
    rule: str
    service: str
    group: str
    severity: AlertSeverity
    message: str


@dataclass(slots=True)
class _Record:
    id: str
    rule: str
    service: str
    group: str
    severity: AlertSeverity
    message: str
    active: bool
    acknowledged: bool
    silenced_until_mono: float | None
    silenced_until_wall: float | None
    first_wall: float
    last_wall: float
    count: int
    order: int  # newest-first sort key; wall times tie too easily (and under a FakeClock, always)

    def freeze(self) -> Alert:
        return Alert(id=self.id, rule=self.rule, service=self.service, group=self.group,
                     severity=self.severity, message=self.message, active=self.active,
                     acknowledged=self.acknowledged, silenced_until_wall=self.silenced_until_wall,
                     first_wall=self.first_wall, last_wall=self.last_wall, count=self.count)


class AlertManager:
    """Turns engine events into alerts, and operator commands into alert state changes.

    Every state change is passed to `emit` as an `AlertEvent` (firing, resolved, acknowledged,
    silenced, unsilenced). Re-firing an alert that is already active only bumps its count.
    """

    def __init__(self, config: AlertsConfig, clock: Clock, groups: Mapping[str, str],
                 emit: Callable[[AlertEvent], None],
                 maintenance: Callable[[str], bool] = lambda target: False) -> None:
        self._config = config
        self._clock = clock
        self._emit = emit
        self._groups: dict[str, str] = {}
        self._members: dict[str, set[str]] = {}
        self._conditions: dict[str, _Condition] = {}
        self._records: dict[str, _Record] = {}
        self._unhealthy_since: dict[str, float] = {}
        self._breaker_down_since: dict[str, float] = {}
        self._anomaly_last: dict[str, float] = {}
        # The engine owns maintenance (one owner per fact); alerts only ask whether a service or group
        # is in it, and are told when that changed.
        self._in_maintenance = maintenance
        self._blocked: dict[str, str] = {}  # service -> the (nearest) down parent it sits behind
        self._judge_from: dict[str, float] = {}  # released from a parent: the unhealthy timer restarts here
        self._settle: dict[str, float] = {}  # service with parents -> seconds its faults wait for them
        self._settle_due: dict[str, float] = {}  # service -> when its held-while-settling faults are judged
        self._order = itertools.count()
        self._set_group_map(groups)

    # ------------------------------------------------------------------ events in

    def observe(self, event: Event) -> None:
        """Feed every engine event; kinds without a rule are ignored."""
        if isinstance(event, ProbeEvent):
            self._on_probe(event)
        elif isinstance(event, BreakerEvent):
            self._on_breaker(event)
        elif isinstance(event, RecoveryEvent):
            if event.outcome == RecoveryOutcome.GAVE_UP:
                detail = f": {event.detail}" if event.detail else ""
                self._set_condition(
                    RULE_RECOVERY_GAVE_UP, event.service, AlertSeverity.CRITICAL,
                    f"{event.strategy} gave up after {event.attempt} of "
                    f"{event.max_attempts} attempts{detail}")
        elif isinstance(event, HeartbeatEvent):
            if event.status == "missed":
                age = ("never beat" if event.last_beat_age_s is None
                       else f"last beat {event.last_beat_age_s:.0f} s ago")
                self._set_condition(RULE_HEARTBEAT_MISSED, event.service, AlertSeverity.WARNING,
                                    f"heartbeat missed ({age})")
            elif event.status == "resumed":
                self._clear_condition(alert_id(RULE_HEARTBEAT_MISSED, event.service))
        elif isinstance(event, AnomalyEvent):
            if self._config.anomaly:
                self._anomaly_last[event.service] = event.mono
                self._set_condition(
                    RULE_ANOMALY, event.service, AlertSeverity.WARNING,
                    f"response time {event.latency_ms:.0f} ms, "
                    f"usually {event.baseline_ms:.0f} ms")

    def _on_probe(self, event: ProbeEvent) -> None:
        service = event.service
        if event.status == ServiceStatus.UNHEALTHY:
            if service not in self._unhealthy_since:
                self._unhealthy_since[service] = event.mono
                # Group first: if this failure completes a flood, the per-device alert below is
                # born held instead of firing and being retracted a moment later.
                self._evaluate_group(self._group_of(service))
            self._check_unhealthy(service, self._clock.monotonic())
        elif event.status in (ServiceStatus.HEALTHY, ServiceStatus.DEGRADED):
            # Degraded answers, so it is not "down"; but gave_up is about being back to healthy.
            was_down = self._unhealthy_since.pop(service, None) is not None
            self._judge_from.pop(service, None)
            self._clear_condition(alert_id(RULE_UNHEALTHY, service))
            if event.status == ServiceStatus.HEALTHY:
                self._clear_condition(alert_id(RULE_RECOVERY_GAVE_UP, service))
            if was_down:
                self._evaluate_group(self._group_of(service))
        # UNKNOWN (not checked yet, paused) says nothing either way: keep what we had.

    def _on_breaker(self, event: BreakerEvent) -> None:
        service = event.service
        if event.to_state == BreakerState.OPEN:
            self._breaker_down_since.setdefault(service, event.mono)
            self._evaluate_group(self._group_of(service))
            reason = f": {event.reason}" if event.reason else ""
            self._set_condition(RULE_BREAKER_OPEN, service, AlertSeverity.WARNING,
                                f"circuit breaker open{reason}")
        elif event.to_state == BreakerState.HALF_OPEN:
            pass  # a trial is not a recovery; the alert stays until the breaker closes
        else:
            # CLOSED ends it; FORCED_CLOSED is closed too; FORCED_OPEN is an operator's deliberate
            # suppression, shown as such elsewhere, so it must not read as a fault alert.
            self._breaker_down_since.pop(service, None)
            self._clear_condition(alert_id(RULE_BREAKER_OPEN, service))
            self._evaluate_group(self._group_of(service))

    # ------------------------------------------------------------------ time

    def poll(self) -> None:
        """Apply the time-based rules; the engine's ticker calls it every 0.25 s (more often is harmless)."""
        now = self._clock.monotonic()
        for service in list(self._unhealthy_since):
            self._check_unhealthy(service, now)
        for service, last in list(self._anomaly_last.items()):
            if now - last >= ANOMALY_CLEAR_SECONDS:
                del self._anomaly_last[service]
                self._clear_condition(alert_id(RULE_ANOMALY, service))
        for record in list(self._records.values()):
            if record.silenced_until_mono is not None and record.silenced_until_mono <= now:
                self._lift_silence(record, "silence expired")
        for service, due in list(self._settle_due.items()):
            if now >= due:
                # Its parents had their chance to be checked: judge what it held back.
                del self._settle_due[service]
                self._evaluate_group(self._group_of(service))
                for aid in [a for a, c in self._conditions.items() if c.service == service]:
                    self._reconcile(aid)

    def _check_unhealthy(self, service: str, now: float) -> None:
        since = self._unhealthy_since.get(service)
        if since is None or alert_id(RULE_UNHEALTHY, service) in self._conditions:
            return
        since = max(since, self._judge_from.get(service, since))
        if now - since >= self._config.unhealthy_for_seconds:
            self._set_condition(RULE_UNHEALTHY, service, AlertSeverity.CRITICAL,
                                f"unhealthy for {now - since:.0f} s")

    # ------------------------------------------------------------------ operator commands

    def acknowledge(self, alert_id: str) -> bool:
        """Acknowledge an alert; a cleared one then leaves the list. False if there is no such alert."""
        record = self._records.get(alert_id)
        if record is None:
            return False
        if not record.acknowledged:
            record.acknowledged = True
            self._send(record, AlertState.ACKNOWLEDGED, record.message)
            if not record.active:
                del self._records[alert_id]
        return True

    def silence(self, alert_id: str, seconds: float) -> bool:
        """Shelve an alert for `seconds`; it un-shelves by itself. False if unknown or not a duration."""
        record = self._records.get(alert_id)
        if record is None or not math.isfinite(seconds) or seconds <= 0:
            return False
        record.silenced_until_mono = self._clock.monotonic() + seconds
        record.silenced_until_wall = self._clock.wall() + seconds
        self._send(record, AlertState.SILENCED, f"{record.message} (silenced for {seconds:g} s)")
        return True

    def raise_alert(self, rule: str, service: str, severity: AlertSeverity | str, message: str) -> None:
        """Raise (or re-raise) an alert whose condition the engine decides, e.g. storm_guard."""
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
        severity = AlertSeverity(severity)
        if rule == RULE_GROUP_DOWN:
            raise ValueError("group_down alerts are raised by the group rule only")
        self._set_condition(rule, service, severity, message)

    def resolve(self, rule: str, service: str) -> None:
        """Clear the condition of an engine-raised alert (no-op if it is not raised)."""
        self._clear_condition(alert_id(rule, service))

    def forget(self, service: str) -> None:
        """The service left the config: its alerts resolve and nothing about it is kept."""
        for aid in [a for a, c in self._conditions.items() if c.service == service and c.rule != RULE_GROUP_DOWN]:
            self._clear_condition(aid)
        for aid in [a for a, r in self._records.items() if r.service == service and r.rule != RULE_GROUP_DOWN]:
            del self._records[aid]
        for times in (self._unhealthy_since, self._breaker_down_since, self._anomaly_last, self._judge_from,
                      self._settle, self._settle_due):
            times.pop(service, None)
        if service in self._blocked:
            del self._blocked[service]

    def maintenance_changed(self) -> None:
        """Maintenance started or ended somewhere: held alerts are re-judged."""
        self._evaluate_all_groups()
        self._reconcile_all()

    def set_blocked(self, blocked: Mapping[str, str]) -> None:
        """Which services sit behind a down parent (core.dependencies.BlockTracker.blocked).

        A blocked service's fault alerts are held ("blocked by switch-3"), it does not count towards
        its group's flood, and its parent's alerts say how many devices they stand for. When the
        parent recovers (the service leaves the map), conditions still true fire again.
        """
        if dict(blocked) == self._blocked:
            return
        now = self._clock.monotonic()
        for released in [sid for sid in self._blocked if sid not in blocked]:
            # Judged afresh: a child still down when its parent comes back gets the full
            # unhealthy_for_seconds before it alerts, instead of firing at once on old evidence.
            # (_unhealthy_since stays: the group rule must not see old failures as a fresh flood.)
            if released in self._unhealthy_since:
                self._judge_from[released] = now
                self._conditions.pop(alert_id(RULE_UNHEALTHY, released), None)
        self._blocked = dict(blocked)
        self._evaluate_all_groups()
        self._reconcile_all()
        for record in self._records.values():
            if record.active and record.rule in _FLOOD_HELD_RULES:
                cond = self._conditions.get(record.id)
                if cond is not None:
                    record.message = self._with_affected(cond)  # a running tally, not a new announcement

    def blocked_by(self, service: str) -> str | None:
        return self._blocked.get(service)

    def set_settle(self, settle: Mapping[str, float]) -> None:
        """Seconds a service's faults wait before they alert or count towards a flood: for a service
        with parents, about one check of its slowest parent. Devices behind a switch are often
        checked before the switch itself; without the wait their failures would alarm (or flood
        the rack) a moment before the switch's own failure blocks them."""
        self._settle = {k: v for k, v in settle.items() if v > 0}
        for gone in [k for k in self._settle_due if k not in self._settle]:
            del self._settle_due[gone]

    def _settling(self, service: str) -> bool:
        wait = self._settle.get(service)
        if wait is None:
            return False
        since = self._down_since(service)
        if since is None:
            return False
        due = max(since, self._judge_from.get(service, since)) + wait
        if self._clock.monotonic() >= due:
            return False
        self._settle_due[service] = due
        return True

    def first_wall(self, alert_id: str) -> float | None:
        """When a shown alert first fired (for "down for ..." in notifications), or None."""
        record = self._records.get(alert_id)
        return None if record is None else record.first_wall

    def affected_count(self, service: str) -> int:
        """How many blocked services lead up to `service` (directly or through other blocked ones)."""
        count = 0
        for child in self._blocked:
            root, seen = child, set()
            while root in self._blocked and root not in seen:
                seen.add(root)
                root = self._blocked[root]
            if root == service:
                count += 1
        return count

    def _with_affected(self, cond: _Condition) -> str:
        n = self.affected_count(cond.service) if cond.service and cond.rule in _FLOOD_HELD_RULES else 0
        if not n:
            return cond.message
        return f"{cond.message}; {n} device{'s' if n != 1 else ''} behind it blocked"

    def set_groups(self, groups: Mapping[str, str]) -> None:
        self._set_group_map(groups)
        for cond in self._conditions.values():
            if cond.rule != RULE_GROUP_DOWN:
                cond.group = self._group_of(cond.service)
        for gid in [i for i, c in self._conditions.items() if c.rule == RULE_GROUP_DOWN]:
            if self._conditions[gid].group not in self._members:
                self._clear_condition(gid)
        self._evaluate_all_groups()
        self._reconcile_all()

    def set_config(self, config: AlertsConfig) -> None:
        self._config = config
        if not config.anomaly:
            self._anomaly_last.clear()
            for aid in [i for i, c in self._conditions.items() if c.rule == RULE_ANOMALY]:
                self._clear_condition(aid)
        self._evaluate_all_groups()
        self.poll()

    # ------------------------------------------------------------------ queries

    def alerts(self) -> list[Alert]:
        """Active alerts and cleared-but-unacknowledged ones, newest first; silenced ones flagged."""
        return [r.freeze() for r in sorted(self._records.values(), key=lambda r: r.order, reverse=True)]


    # ------------------------------------------------------------------ conditions -> alerts

    def _set_condition(self, rule: str, service: str, severity: AlertSeverity, message: str,
                       group: str | None = None) -> None:
        aid = alert_id(rule, group if rule == RULE_GROUP_DOWN and group is not None else service)
        cond = self._conditions.get(aid)
        if cond is None:
            self._conditions[aid] = _Condition(
                rule=rule, service=service, group=group if group is not None else self._group_of(service),
                severity=severity, message=message)
            self._reconcile(aid)
            return
        cond.severity = severity
        cond.message = message
        record = self._records.get(aid)
        if record is not None and record.active:
            # Dedup: the same fact again is one alert with a higher count, not a new announcement.
            record.count += 1
            record.last_wall = self._clock.wall()
            record.severity = severity
            record.message = self._with_affected(cond)
            record.order = next(self._order)
        else:
            self._reconcile(aid)

    def _clear_condition(self, aid: str) -> None:
        if self._conditions.pop(aid, None) is not None:
            self._reconcile(aid)

    def _held(self, cond: _Condition) -> str | None:
        """Why an alert whose condition holds must not be active right now, or None."""
        if cond.rule == RULE_GROUP_DOWN:
            return "maintenance" if self._in_maintenance(cond.group) else None
        if self._in_maintenance(cond.service) or (cond.group and self._in_maintenance(cond.group)):
            return "maintenance"
        if cond.rule in _FLOOD_HELD_RULES and cond.service in self._blocked:
            return f"blocked by {self._blocked[cond.service]}"
        if cond.rule in _FLOOD_HELD_RULES and self._settling(cond.service):
            return "waiting for its parent's next check"
        if cond.rule in _FLOOD_HELD_RULES and cond.group:
            if alert_id(RULE_GROUP_DOWN, cond.group) in self._conditions:
                return f"covered by group alert {alert_id(RULE_GROUP_DOWN, cond.group)}"
        return None

    def _reconcile(self, aid: str) -> None:
        cond = self._conditions.get(aid)
        record = self._records.get(aid)
        held = self._held(cond) if cond is not None else None
        if cond is not None and held is None:
            wall = self._clock.wall()
            if record is None:
                record = _Record(id=aid, rule=cond.rule, service=cond.service, group=cond.group,
                                 severity=cond.severity, message=self._with_affected(cond), active=True,
                                 acknowledged=False, silenced_until_mono=None, silenced_until_wall=None,
                                 first_wall=wall, last_wall=wall, count=1, order=next(self._order))
                self._records[aid] = record
            elif not record.active:
                # Back while still shown (cleared, unacknowledged): same alert, one more occurrence.
                record.active = True
                record.acknowledged = False
                record.count += 1
                record.last_wall = wall
                record.severity = cond.severity
                record.message = self._with_affected(cond)
                record.group = cond.group
                record.order = next(self._order)
            else:
                record.message = self._with_affected(cond)
                record.group = cond.group
                return
            self._send(record, AlertState.FIRING, record.message)
            return
        if record is None or not record.active:
            return
        record.active = False
        if held is not None:
            # Held, not cleared: the alert leaves the list (the operator chose maintenance, or the
            # group alert says it all) and comes back by itself if the condition is still true.
            self._send(record, AlertState.RESOLVED, f"{record.message} (held: {held})")
            del self._records[aid]
            return
        self._send(record, AlertState.RESOLVED, record.message)
        if record.acknowledged:
            del self._records[aid]

    def _reconcile_all(self) -> None:
        for aid in list({*self._conditions, *self._records}):
            self._reconcile(aid)

    def _lift_silence(self, record: _Record, why: str) -> None:
        record.silenced_until_mono = None
        record.silenced_until_wall = None
        self._send(record, AlertState.UNSILENCED, f"{record.message} ({why})")

    def _send(self, record: _Record, state: AlertState, message: str) -> None:
        log.debug("%s %s: %s", record.id, state, message)
        self._emit(AlertEvent(service=record.service, mono=self._clock.monotonic(), wall=self._clock.wall(),
                              alert_id=record.id, severity=AlertSeverity(record.severity), rule=record.rule,
                              state=state, message=message, group=record.group))

    # ------------------------------------------------------------------ groups

    def _set_group_map(self, groups: Mapping[str, str]) -> None:
        self._groups = dict(groups)
        self._members = {}
        for service, group in self._groups.items():
            if group:
                self._members.setdefault(group, set()).add(service)

    def _group_of(self, service: str) -> str:
        return self._groups.get(service, "")

    def _down_since(self, service: str) -> float | None:
        times = [t for t in (self._unhealthy_since.get(service), self._breaker_down_since.get(service))
                 if t is not None]
        return min(times) if times else None

    def _evaluate_all_groups(self) -> None:
        for group in list(self._members):
            self._evaluate_group(group)

    def _evaluate_group(self, group: str) -> None:
        """Raise, update or resolve one group's flood alert.

        It fires when at least group_share of the group, and at least group_min_services devices,
        went down (unhealthy or breaker open) within the last group_window_seconds and are still
        down: a correlated failure, not a slow trickle of unrelated ones. Once active it stays
        until the number down (whenever they went down) drops below that share. Devices under
        maintenance are down on purpose and are not counted.
        """
        if not group:
            return
        members = self._members.get(group, set())
        size = len(members)
        cfg = self._config
        gid = alert_id(RULE_GROUP_DOWN, group)
        active = gid in self._conditions
        down: list[float] = []
        if size >= cfg.group_min_services:
            for service in members:
                since = self._down_since(service)
                # Down on purpose (maintenance) or because of a parent: not part of a rack flood.
                if since is not None and not self._in_maintenance(service) and service not in self._blocked \
                        and not self._settling(service):
                    down.append(since)
        needed = max(cfg.group_share * size - 1e-9, float(cfg.group_min_services))
        if active:
            want = len(down) >= needed
        else:
            horizon = self._clock.monotonic() - cfg.group_window_seconds
            want = sum(1 for since in down if since >= horizon) >= needed
        if want:
            message = f"{group}: {len(down)} of {size} services down"
            if active:
                self._conditions[gid].message = message
                record = self._records.get(gid)
                if record is not None and record.active:
                    record.message = message  # a running tally, not a new announcement
                return
            log.warning("group flood: %s", message)
            self._set_condition(RULE_GROUP_DOWN, "", AlertSeverity.CRITICAL, message, group=group)
        elif active:
            self._clear_condition(gid)
        else:
            return
        # The group alert appeared or went: per-device alerts of the group are held or released.
        for aid, cond in list(self._conditions.items()):
            if cond.group == group and cond.rule != RULE_GROUP_DOWN:
                self._reconcile(aid)


# ---------------------------------------------------------------------- sinks

class LogSink:
    """Writes firing alerts at WARNING and resolutions at INFO to the "core.alerts" log."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger if logger is not None else log

    def __call__(self, event: AlertEvent) -> None:
        if event.state == "firing":
            self._log.warning("ALERT %s [%s] %s", event.alert_id, event.severity, event.message)
        elif event.state == "resolved":
            self._log.info("resolved %s: %s", event.alert_id, event.message)
        else:
            self._log.info("alert %s %s: %s", event.alert_id, event.state, event.message)


class WebhookSink:
    """POSTs alert events as JSON (`event.to_record()`), from a bounded queue.

    `submit()` never blocks: when the queue is full the oldest queued event is dropped (and
    logged), because the newest state is what a receiver needs. `run()` delivers in order; a failed
    POST (connection error, timeout, HTTP 5xx) is retried `retries` times with backoff 1, 2, 4 s...
    on the injected clock. The bearer token is sent but never logged; logged URLs lose their query
    and credentials.

    Attributes:
        dropped: events dropped because the queue was full.
    """

    def __init__(self, url: str, session: aiohttp.ClientSession, clock: Clock, retries: int,
                 token: str | None = None, *, queue_size: int = 1000, timeout_s: float = 10.0,
                 max_backoff_s: float = 60.0) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        if token and (urlsplit(url).username or urlsplit(url).password):
            # aiohttp refuses both at request time; say so at configuration time instead.
            raise ValueError("webhook URL carries credentials and a bearer token was given too; use one")
        self._url = url
        self._session = session
        self._clock = clock
        self._retries = retries
        self._token = token or None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_backoff = max_backoff_s
        self._queue: asyncio.Queue[AlertEvent | None] = asyncio.Queue(maxsize=max(1, queue_size))
        self._closed = False
        self.dropped = 0
        self._where = _loggable_url(url)

    def submit(self, event: AlertEvent) -> None:
        """Queue an event for delivery; never waits."""
        if self._closed:
            return
        if self._queue.full():
            old = self._queue.get_nowait()
            self.dropped += 1
            # One line per drop would itself flood the log during a flood; first and every 100th.
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("webhook %s: queue full, dropped %s %s (%d dropped so far)", self._where,
                            old.alert_id if old is not None else "-", old.state if old is not None else "",
                            self.dropped)
        self._queue.put_nowait(event)

    async def run(self) -> None:
        """Deliver queued events until `close()`."""
        while True:
            event = await self._queue.get()
            if event is None or self._closed:
                return
            try:
                await self.send(event)
            except Exception:  # a bug around one event must not end delivery of all later ones
                log.exception("webhook %s: unexpected error delivering %s", self._where, event.alert_id)

    def close(self) -> None:
        """Stop `run()` after the POST in flight (no further retries); queued events are dropped.

        The engine owns (and closes) the HTTP session. Shutdown must not wait out a dead receiver's
        backoff, so cancel the `run()` task as well if it has to stop immediately.
        """
        if self._closed:
            return
        self._closed = True
        pending = 0
        while not self._queue.empty():
            self._queue.get_nowait()
            pending += 1
        if pending:
            log.info("webhook %s: closing, %d queued alert events not sent", self._where, pending)
        self._queue.put_nowait(None)

    async def send(self, event: AlertEvent) -> bool:
        """POST one event, retrying; True when the receiver accepted it (2xx)."""
        record = event.to_record()
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        attempt = 0
        while True:
            try:
                async with self._session.post(self._url, json=record, headers=headers,
                                              timeout=self._timeout, allow_redirects=False) as resp:
                    status = resp.status
                    await resp.read()
                if 200 <= status < 300:
                    return True
                if status < 500:
                    # The receiver understood and refused (auth, schema): retrying would not help.
                    log.warning("webhook %s: HTTP %d for %s, not retried", self._where, status, event.alert_id)
                    return False
                reason = f"HTTP {status}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                reason = self._scrub(f"{type(exc).__name__}: {exc}")
            if attempt >= self._retries or self._closed:
                log.warning("webhook %s: gave up on %s %s after %d retries (%s)", self._where,
                            event.alert_id, event.state, attempt, reason)
                return False
            delay = backoff_delay("exponential", attempt + 1, 1.0, self._max_backoff)
            attempt += 1
            log.info("webhook %s: %s, retry %d of %d in %g s", self._where, reason, attempt,
                     self._retries, delay)
            await self._clock.sleep(delay)

    def _scrub(self, text: str) -> str:
        # Belt and braces: no exception text we know of carries request headers, but a token must
        # never reach a log even if one starts to.
        return text.replace(self._token, "***") if self._token else text


def _loggable_url(url: str) -> str:
    """scheme://host[:port]/path — without credentials or query, which may hold secrets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
