"""Notifications: alerts told to people where they are (mail, chat, phones), through apprise.

Each `[[notify]]` table is a channel: an apprise URL (from the file or, better, from an environment
variable) and a filter (least severity; groups, services or tags). The `Notifier` is fed the alert
manager's `AlertEvent`s with a small context the engine supplies (device name, since when, what
recovery is doing) and tells the matching channels when an alert fires, resolves or escalates:

* **firing** goes to every matching channel with `escalate_after_minutes = 0`;
* **escalated**: a critical alert still active, unacknowledged and unsilenced `escalate_after_minutes`
  after it fired goes to the channels with that delay (the next tier), once;
* **resolved** goes to the channels that were told it fired or escalated, and only to them.

Delivery never blocks the caller: `on_alert()` and `poll()` only queue. `run()` delivers, one worker
per channel (a dead mail server does not delay the chat channel, and one channel's messages stay in
order), rate limited per channel (core/ratelimit), failures retried with exponential backoff
(core/backoff) on the injected clock. Every step is one `NotifyEvent`: channel name without secrets,
outcome, attempt.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping, Sequence
from urllib.parse import unquote, urlsplit

from core.backoff import backoff_delay
from core.clock import Clock, iso_utc
from core.config import NotifyConfig
from core.events import AlertEvent, NotifyEvent
from core.ratelimit import TokenBucket, per_minute
from core.snapshot import RecoveryView

log = logging.getLogger("core.notify")

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
RETRY_BASE_S = 2.0
RETRY_MAX_S = 300.0


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """What a channel filter and a message need to know about a service."""

    name: str = ""
    group: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AlertContext:
    """What the engine knows about an alert beyond its event, given with each `on_alert()`.

    Attributes:
        device: display name (default: the service's name, else its id).
        since_wall: when the trouble began (the alert's `first_wall`); default: when it fired.
        recovery: what recovery is doing, in words: "restart 2 of 3, next in 8 s", "gave up after 3
            restarts", "held: blocked by switch-3", "" when nothing is being done.
        affects: a folded alert on a parent stands for this many devices behind it.
    """

    device: str = ""
    since_wall: float | None = None
    recovery: str = ""
    affects: int = 0


@dataclass(frozen=True, slots=True)
class Message:
    """One notification, as sent: a title (mail subject) and a plain-text body."""

    trigger: str  # firing | resolved | escalated
    alert_id: str
    service: str
    severity: str
    title: str
    body: str


Deliver = Callable[[str, Message], Awaitable[tuple[bool, str]]]


async def apprise_deliver(url: str, message: Message) -> tuple[bool, str]:
    """Send one message with apprise; (delivered, why not). apprise runs blocking plugins in threads."""
    import apprise  # imported on first delivery: a config without [[notify]] never pays for it

    sender = apprise.Apprise()
    if not sender.add(url):
        return False, "apprise does not understand this URL"
    kind = {"critical": apprise.NotifyType.FAILURE, "warning": apprise.NotifyType.WARNING}.get(
        message.severity, apprise.NotifyType.INFO)
    if message.trigger == "resolved":
        kind = apprise.NotifyType.SUCCESS
    result = await sender.async_notify(body=message.body, title=message.title, notify_type=kind,
                                       body_format=apprise.NotifyFormat.TEXT)
    if result:
        return True, ""
    reasons = [entry.message for attempt in result for entry in attempt.logs()
               if entry.level in ("WARNING", "ERROR")]
    return False, reasons[-1] if reasons else f"apprise: {result.status.name.lower()}"


class _ApprisePrivacy(logging.Filter):
    """Drops apprise's (and urllib3's) DEBUG/INFO lines: they print service URLs, whose paths often are the token
    (`json://host/hook/<token>`, webhook URLs). Its warnings and errors carry the reasons and mask
    credentials; each delivery is also reported by this module with secrets scrubbed."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def _quiet_apprise() -> None:
    # urllib3 (under apprise's HTTP plugins) logs each request line, path and all, at DEBUG.
    for name in ("apprise", "urllib3.connectionpool"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ApprisePrivacy) for f in logger.filters):
            logger.addFilter(_ApprisePrivacy())


def recovery_words(rec: RecoveryView | None, now_wall: float, *, blocked_by: str = "",
                   maintenance: bool = False, auto_restart: bool = True, has_restart: bool = True) -> str:
    """What recovery is doing, for `AlertContext.recovery`: "restart 2 of 3, next in 8 s" and the like."""
    if maintenance:
        return "held: in maintenance"
    if blocked_by:
        return f"held: blocked by {blocked_by}"
    if rec is None:
        if not has_restart:
            return "no restart action configured"
        return "" if auto_restart else "automatic restarts are off"
    step = f"{rec.strategy} {rec.attempt} of {rec.max_attempts}"
    if rec.state == "waiting" and rec.next_attempt_wall is not None:
        return f"{step}, next in {_duration(max(0.0, rec.next_attempt_wall - now_wall))}"
    words = {"in_progress": "running", "verifying": "verifying", "succeeded": "succeeded",
             "failed": "failed", "gave_up": "gave up", "waiting": "waiting"}
    if rec.state == "gave_up":
        return f"{rec.strategy} gave up after {rec.attempt} of {rec.max_attempts}"
    return f"{step} {words.get(rec.state, rec.state)}"


def channel_name(cfg: NotifyConfig, url: str) -> str:
    """The channel's name for events and logs: its `name`, else scheme://host of its URL, no secrets."""
    if cfg.name:
        return cfg.name
    if not url:
        return f"${cfg.url_env}" if cfg.url_env else "channel"
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a malformed port or bracket: say nothing of the URL rather than too much
        return "channel"
    return f"{scheme}://{host}{port}"


def _secrets_of(url: str) -> list[str]:
    """Pieces of an apprise URL that may be secret (tokens often sit in the path or query)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    pieces = [url, parts.username or "", parts.password or "", parts.path, parts.query]
    pieces += [p for p in parts.path.split("/") if len(p) >= 4]
    pieces += [v for kv in parts.query.split("&") for v in kv.split("=")[1:] if len(v) >= 4]
    pieces += [unquote(p) for p in pieces if p]
    return sorted({p for p in pieces if p and p != "/"}, key=len, reverse=True)


@dataclass(slots=True)
class _Channel:
    cfg: NotifyConfig
    name: str
    url: str
    secrets: list[str]
    bucket: TokenBucket
    queue: asyncio.Queue[Message | None] = field(default_factory=lambda: asyncio.Queue())
    told: set[str] = field(default_factory=set)  # alert ids this channel was told fired/escalated

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


@dataclass(slots=True)
class _Tracked:
    event: AlertEvent
    context: AlertContext
    fired_mono: float
    since_wall: float
    acknowledged: bool = False
    silenced: bool = False


class Notifier:
    """Tells `[[notify]]` channels about alerts; see the module docstring for the rules.

    Attributes:
        channels: the `[[notify]]` settings it was made from (a reload compares them).
        problems: one line per channel that cannot deliver (its `url_env` is unset), for the log
            and `--check-config`; such a channel journals `unavailable` instead of sending.
        dropped: messages dropped because a channel's queue was full.
    """

    def __init__(self, channels: Sequence[NotifyConfig], clock: Clock, emit: Callable[[NotifyEvent], object],
                 services: Mapping[str, ServiceInfo] | None = None, *, env: Mapping[str, str] | None = None,
                 deliver: Deliver | None = None, queue_size: int = 200, timeout_s: float = 30.0) -> None:
        self.channels: tuple[NotifyConfig, ...] = tuple(channels)
        self._clock = clock
        self._emit = emit
        self._services: dict[str, ServiceInfo] = dict(services or {})
        self._deliver = deliver if deliver is not None else apprise_deliver
        self._queue_size = max(1, queue_size)
        self._timeout_s = timeout_s
        self._tracked: dict[str, _Tracked] = {}
        self._closed = False
        self.problems: list[str] = []
        self.dropped = 0
        environ = env if env is not None else os.environ
        if deliver is None:
            _quiet_apprise()
        self._channels: list[_Channel] = []
        for i, cfg in enumerate(channels):
            url = cfg.url or environ.get(cfg.url_env, "")
            name = channel_name(cfg, url)
            if not url:
                self.problems.append(f"notify[{i}] ({name}): environment variable {cfg.url_env} is not set")
            rate, burst = per_minute(cfg.per_minute)
            self._channels.append(_Channel(cfg=cfg, name=name, url=url, secrets=_secrets_of(url) if url else [],
                                           bucket=TokenBucket(rate, burst, clock)))
        for line in self.problems:
            log.warning("%s", line)

    @property
    def channel_names(self) -> list[str]:
        return [c.name for c in self._channels]

    def set_services(self, services: Mapping[str, ServiceInfo]) -> None:
        """New service metadata after a reload."""
        self._services = dict(services)

    # ------------------------------------------------------------------ alerts in

    def on_alert(self, event: AlertEvent, context: AlertContext | None = None) -> None:
        """Feed every AlertEvent (all states: acknowledgement stops escalation). Never waits."""
        ctx = context if context is not None else AlertContext()
        aid = event.alert_id
        tracked = self._tracked.get(aid)
        if event.state == "firing":
            since = ctx.since_wall if ctx.since_wall is not None else event.wall
            silenced = tracked.silenced if tracked is not None else False
            tracked = self._tracked[aid] = _Tracked(event=event, context=ctx, fired_mono=self._clock.monotonic(),
                                                    since_wall=since, silenced=silenced)
            if silenced:
                return
            for ch in self._channels:
                if ch.cfg.escalate_after_minutes == 0 and self._matches(ch.cfg, event):
                    ch.told.add(aid)
                    self._queue(ch, self._message("firing", tracked, event, ctx))
        elif event.state == "resolved":
            for ch in self._channels:
                if aid in ch.told:
                    ch.told.discard(aid)
                    if tracked is not None:
                        self._queue(ch, self._message("resolved", tracked, event, ctx))
            if tracked is not None and tracked.acknowledged:
                del self._tracked[aid]
            elif tracked is not None:
                tracked.event = event  # kept until acknowledged: a re-fire keeps its silence
        elif tracked is not None:
            if event.state == "acknowledged":
                tracked.acknowledged = True
                if tracked.event.state == "resolved":
                    del self._tracked[aid]
            elif event.state == "silenced":
                tracked.silenced = True
            elif event.state == "unsilenced":
                tracked.silenced = False

    def poll(self) -> None:
        """Escalate what is due; call every engine tick or at `next_deadline()`. Never waits."""
        now = self._clock.monotonic()
        for aid, tracked in self._tracked.items():
            if not self._escalatable(tracked):
                continue
            for ch in self._channels:
                delay = ch.cfg.escalate_after_minutes * 60.0
                if delay > 0 and aid not in ch.told and now - tracked.fired_mono >= delay \
                        and self._matches(ch.cfg, tracked.event):
                    ch.told.add(aid)
                    self._queue(ch, self._message("escalated", tracked, tracked.event, tracked.context))

    def next_deadline(self) -> float | None:
        """Earliest monotonic time at which `poll()` would escalate something, or None."""
        times = [t.fired_mono + ch.cfg.escalate_after_minutes * 60.0
                 for aid, t in self._tracked.items() if self._escalatable(t)
                 for ch in self._channels
                 if ch.cfg.escalate_after_minutes > 0 and aid not in ch.told and self._matches(ch.cfg, t.event)]
        return min(times) if times else None

    @staticmethod
    def _escalatable(t: _Tracked) -> bool:
        return (t.event.state == "firing" and t.event.severity == "critical"
                and not t.acknowledged and not t.silenced)

    def _matches(self, cfg: NotifyConfig, event: AlertEvent) -> bool:
        if SEVERITY_RANK.get(event.severity, 0) < SEVERITY_RANK[cfg.min_severity]:
            return False
        if not (cfg.groups or cfg.services or cfg.tags):
            return True
        info = self._services.get(event.service, ServiceInfo())
        group = event.group or info.group
        return (bool(event.service) and event.service in cfg.services) or (bool(group) and group in cfg.groups) \
            or any(t in cfg.tags for t in info.tags)

    # ------------------------------------------------------------------ messages

    def _message(self, trigger: str, tracked: _Tracked, event: AlertEvent, ctx: AlertContext) -> Message:
        info = self._services.get(event.service, ServiceInfo())
        group = event.group or info.group
        device = ctx.device or info.name or event.service or (f"group {group}" if group else "Faultwatch")
        rule = event.rule.replace("_", " ")
        head = {"firing": "FIRING", "resolved": "RESOLVED", "escalated": "ESCALATED"}[trigger]
        title = f"[{event.severity.upper()}] {head}: {device} — {rule}"
        # Firing and resolved are about the event's moment; an escalation is about now.
        now_wall = self._clock.wall() if trigger == "escalated" else event.wall
        lasted = _duration(max(0.0, now_wall - tracked.since_wall))
        lines = [f"Device: {device}" + (f" ({event.service})" if event.service and event.service != device else "")
                 + (f", group {group}" if group else ""),
                 f"Rule: {rule}: {event.message}"]
        if trigger == "resolved":
            lines.append(f"Lasted: {lasted} (since {iso_utc(tracked.since_wall)})")
        elif trigger == "escalated":
            lines.append(f"Unacknowledged for {_duration(self._clock.monotonic() - tracked.fired_mono)}; "
                         f"down for {lasted} (since {iso_utc(tracked.since_wall)})")
        else:
            lines.append(f"Down for: {lasted} (since {iso_utc(tracked.since_wall)})")
        if ctx.affects:
            lines.append(f"Affects: {ctx.affects} device{'s' if ctx.affects != 1 else ''} behind it")
        lines.append(f"Recovery: {ctx.recovery or 'nothing automatic in progress'}")
        lines.append(f"Alert: {event.alert_id} ({event.severity})")
        return Message(trigger=trigger, alert_id=event.alert_id, service=event.service, severity=event.severity,
                       title=title, body="\n".join(lines))

    # ------------------------------------------------------------------ delivery

    def _queue(self, ch: _Channel, message: Message) -> None:
        if self._closed:
            return
        if not ch.url:
            self._event(ch, message, "unavailable", 0, f"{ch.cfg.url_env} is not set")
            return
        if ch.queue.qsize() >= self._queue_size:
            old = ch.queue.get_nowait()
            if old is not None:
                self.dropped += 1
                self._event(ch, old, "dropped", 0, "queue full; newer notices first")
        ch.queue.put_nowait(message)

    def _event(self, ch: _Channel, message: Message, outcome: str, attempt: int, detail: str = "") -> None:
        self._emit(NotifyEvent(service=message.service, mono=self._clock.monotonic(), wall=self._clock.wall(),
                               channel=ch.name, outcome=outcome, attempt=attempt, alert_id=message.alert_id,
                               trigger=message.trigger, detail=ch.scrub(detail)))

    async def run(self) -> None:
        """Deliver queued notices until `close()`; run it as one task on the engine's loop."""
        await asyncio.gather(*(self._worker(ch) for ch in self._channels if ch.url))

    def close(self) -> None:
        """Stop after the deliveries in flight; queued notices are dropped (logged). Idempotent."""
        if self._closed:
            return
        self._closed = True
        for ch in self._channels:
            pending = 0
            while not ch.queue.empty():
                if ch.queue.get_nowait() is not None:
                    pending += 1
            if pending:
                log.info("notify %s: closing, %d queued notices not sent", ch.name, pending)
            ch.queue.put_nowait(None)

    async def _worker(self, ch: _Channel) -> None:
        while True:
            message = await ch.queue.get()
            if message is None or self._closed:
                return
            try:
                await self._send(ch, message)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug around one notice must not end delivery of all later ones
                log.exception("notify %s: unexpected error delivering %s", ch.name, message.alert_id)

    async def _send(self, ch: _Channel, message: Message) -> None:
        wait = ch.bucket.time_until()
        if wait > 0:
            self._event(ch, message, "rate_limited", 0, f"waits {wait:.0f} s for the channel's limit "
                                                        f"({ch.cfg.per_minute:g} a minute)")
        await ch.bucket.acquire()
        attempt = 0
        while True:
            attempt += 1
            try:
                ok, detail = await asyncio.wait_for(self._deliver(ch.url, message), self._timeout_s)
            except asyncio.TimeoutError:
                ok, detail = False, f"no answer within {self._timeout_s:g} s"
            except Exception as exc:  # noqa: BLE001 - any plugin failure is one failed attempt
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            if ok:
                self._event(ch, message, "sent", attempt)
                log.info("notify %s: %s %s sent", ch.name, message.trigger, message.alert_id)
                return
            if attempt > ch.cfg.retries or self._closed:
                self._event(ch, message, "gave_up", attempt, detail)
                log.warning("notify %s: gave up on %s %s after %d attempts (%s)", ch.name, message.trigger,
                            message.alert_id, attempt, ch.scrub(detail))
                return
            delay = backoff_delay("exponential", attempt, RETRY_BASE_S, RETRY_MAX_S)
            self._event(ch, message, "failed", attempt, f"{detail}; retry in {delay:g} s")
            await self._clock.sleep(delay)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s} s" if s else f"{minutes} min"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m} min" if m else f"{hours} h"


__all__ = ["AlertContext", "Deliver", "Message", "Notifier", "ServiceInfo", "apprise_deliver", "channel_name",
           "recovery_words"]
