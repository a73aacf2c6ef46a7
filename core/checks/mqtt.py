"""MQTT check: is a topic still being published, and does its last message say the right thing?

Unlike the other types nothing is asked per check: one connection per broker (`MqttBroker`, shared by
every topic watched on it) subscribes to the topics and keeps the last message of each, and a check
reads that cache. Staleness is judged from the last message's arrival: a topic is healthy while its
last message is younger than `max_age_seconds` and satisfies the value conditions.

The broker connection reconnects by itself with exponential backoff and equal jitter. While it is
away, its topics are *unknown* (the result's status is UNKNOWN, the broker state in the detail), and
once their last message is older than `max_age_seconds` they are unhealthy. Payloads are bounded: a
message larger than `max_payload_bytes` is recorded as an error with its size, never kept; a binary
(non-UTF-8) payload is an error, not a value.

aiomqtt (2.x) is imported inside the broker's task, so reading a config does not load it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from dataclasses import dataclass, replace
from typing import Any, ClassVar
from urllib.parse import urlsplit

from core.checks.base import CheckContext, CheckResult, CheckType, Value, ValueConditions, healthy, unhealthy
from core.clock import Clock
from core.events import FailureType, ServiceStatus
from core.logs import CHECK as log
from core.options import opt


# Reconnect waits: 0.5 s, 1, 2, ... capped at 30 s, each drawn from [d/2, d] so brokers that come back
# are not hit by every console at the same instant.
RECONNECT_BASE_S = 0.5
RECONNECT_MAX_S = 30.0
# Bounded inbound queue: a flood is dropped by the client library instead of growing memory.
MAX_QUEUED = 10_000


@dataclass(frozen=True, slots=True)
class MqttCheck(ValueConditions):
    TYPE: ClassVar[str] = "mqtt"
    broker: str = opt("", "Broker URL: mqtt://host:1883 (or mqtts://host:8883 for TLS).", required=True)
    topic: str = opt("", "Topic to watch (`+` and `#` wildcards allowed: the newest matching message "
                         "counts).", required=True)
    max_age_seconds: float = opt(60.0, "The last message must be younger than this.", positive=True)
    username: str = opt("", "User name for the broker (empty: anonymous).")
    password_env: str = opt("", "Environment variable holding the broker password.", secret_env=True)
    max_payload_bytes: int = opt(65536, "Larger messages are an error (recorded by size, never kept).",
                                 min=1, max=16 * 1024 * 1024)

    def target(self) -> str:
        return f"mqtt {self.broker} {self.topic}"

    def problem(self) -> tuple[str, str] | None:
        found = broker_problem(self.broker)
        if found:
            return "broker", found
        found = topic_problem(self.topic)
        return ("topic", found) if found else None


def broker_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"{url!r} is not a valid URL"
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        return f"{url!r} is not mqtt://host[:port] or mqtts://host[:port]"
    if parts.path not in ("", "/") or parts.query or parts.username or parts.password:
        return f"{url!r}: give only scheme, host and port (credentials go in username / password_env)"
    if port == 0:
        return f"{url!r} has an invalid port"
    return None


def topic_problem(topic: str) -> str | None:
    if not topic or len(topic.encode("utf-8")) > 65535 or "\x00" in topic:
        return "must be a non-empty topic without NUL characters"
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return f"{topic!r}: '#' must be a whole last level"
        if "+" in level and level != "+":
            return f"{topic!r}: '+' must be a whole level"
    return None


def _wild(topic: str) -> bool:
    return "+" in topic or "#" in topic


def _matches(filter_: str, topic: str) -> bool:
    f, t = filter_.split("/"), topic.split("/")
    for i, level in enumerate(f):
        if level == "#":
            return not (i == 0 and t[0].startswith("$"))
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
        if level == "+" and i == 0 and t[0].startswith("$"):
            return False
    return len(f) == len(t)


@dataclass(frozen=True, slots=True)
class Sample:
    """The last message seen for a watched topic: when it came and what it said (or why it is unusable)."""

    seq: int
    arrival: float
    topic: str
    size: int
    value: Value | None
    error: str | None


def parse_payload(payload: bytes, max_bytes: int) -> tuple[Value | None, str | None]:
    """(value, error): a number where the text is one, else the text; an error for binary or huge payloads."""
    if len(payload) > max_bytes:
        return None, f"payload of {len(payload):,} bytes is larger than max_payload_bytes ({max_bytes:,})"
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None, f"binary payload ({len(payload):,} bytes, not UTF-8 text)"
    if any(not c.isprintable() for c in text):
        return None, f"binary payload ({len(payload):,} bytes of control characters)"
    try:
        number = float(text)
    except ValueError:
        return text[:1024], None
    if number != number or number in (float("inf"), float("-inf")):
        return text[:1024], None
    return (int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number), None


class MqttBroker:
    """One connection to one broker, shared by the checks of all topics on it.

    Attributes:
        state: "connecting", "connected", or "reconnecting: <error>" (shown in every topic's detail).
        connects: successful connections so far (1 after the first; more after reconnects).
    """

    def __init__(self, url: str, username: str, password: str | None, clock: Clock,
                 max_payload_bytes: int = 65536, rng: random.Random | None = None) -> None:
        parts = urlsplit(url)
        self.url = url
        self._tls = parts.scheme == "mqtts"
        self._host = parts.hostname or ""
        self._port = parts.port or (8883 if self._tls else 1883)
        self._username = username or None
        self._password = password
        self._clock = clock
        self._rng = rng or random.Random()
        self.max_payload_bytes = max_payload_bytes
        self.state = "connecting"
        self.connects = 0
        self._users: dict[str, int] = {}
        self._since: dict[str, float] = {}
        self._latest: dict[str, Sample] = {}
        self._first: dict[str, asyncio.Event] = {}
        self._wild: list[str] = []
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[asyncio.Task[Exception | None], Any] = {}  # subscribe task → its client
        self._seq = 0

    # -------------------------------------------------------------- topics

    def watch(self, topic: str) -> None:
        """Start keeping the last message of `topic` (subscribes now if connected)."""
        self._users[topic] = self._users.get(topic, 0) + 1
        if self._users[topic] > 1:
            return
        self._since[topic] = self._clock.monotonic()
        self._first[topic] = asyncio.Event()
        if _wild(topic):
            self._wild.append(topic)
        if self._client is not None:
            self._spawn_subscribe(self._client, topic)

    def unwatch(self, topic: str) -> None:
        left = self._users.get(topic, 0) - 1
        if left > 0:
            self._users[topic] = left
            return
        self._users.pop(topic, None)
        self._since.pop(topic, None)
        self._latest.pop(topic, None)
        self._first.pop(topic, None)
        if topic in self._wild:
            self._wild.remove(topic)

    def topics(self) -> list[str]:
        return list(self._users)

    def latest(self, topic: str) -> Sample | None:
        return self._latest.get(topic)

    def watching_since(self, topic: str) -> float:
        return self._since.get(topic, self._clock.monotonic())

    def on_message(self, topic: str, payload: bytes) -> None:
        """Record one message (the client task calls this; tests may too)."""
        targets = [topic] if topic in self._users else []
        for filter_ in self._wild:
            if _matches(filter_, topic):
                targets.append(filter_)
        if not targets:
            return
        value, error = parse_payload(payload, self.max_payload_bytes)
        self._seq += 1
        sample = Sample(self._seq, self._clock.monotonic(), topic, len(payload), value, error)
        for t in targets:
            self._latest[t] = sample
            first = self._first.get(t)
            if first is not None and not first.is_set():
                first.set()

    async def first_message(self, topic: str, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) for the first message of a topic just watched: a retained one
        usually arrives right after subscribing, and the first check should see it."""
        event = self._first.get(topic)
        if event is None or event.is_set():
            return
        try:
            async with asyncio.timeout(timeout_s):
                await event.wait()
        except TimeoutError:
            pass

    # -------------------------------------------------------------- connection

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"mqtt:{self._host}:{self._port}")

    async def _run(self) -> None:
        import aiomqtt

        from core.backoff import backoff_delay  # core.backoff imports core.config: not at module level

        attempt = 0
        while True:
            client = aiomqtt.Client(
                self._host, self._port, username=self._username, password=self._password,
                keepalive=15, timeout=5.0, max_queued_incoming_messages=MAX_QUEUED,
                tls_context=ssl.create_default_context() if self._tls else None,
                logger=log.getChild("mqtt"))
            try:
                try:
                    async with client:
                        self._client = client
                        # Subscribes run as tasks of their own, which a quit does not cancel: aiomqtt
                        # forgets a subscribe's message id when its awaiter is cancelled, and logs a
                        # SUBACK that then arrives during the disconnect as an error with a traceback.
                        # Left alone, a SUBACK in flight finds its subscribe; they end with the connection.
                        subscribes = [self._spawn_subscribe(client, topic) for topic in list(self._users)]
                        if subscribes:
                            await asyncio.wait(subscribes)
                            for failed in (t.result() for t in subscribes):
                                if failed is not None:
                                    raise failed
                        attempt = 0
                        self.connects += 1
                        self.state = "connected"
                        log.info("mqtt %s: connected, %d topics", self._where, len(self._users))
                        async for message in client.messages:
                            self._take(message)
                            # The loop variable would keep the last message (up to the broker's limit,
                            # megabytes) alive until the next one arrives.
                            del message
                finally:
                    # Disconnected (or never connected): no answer can come to a subscribe still waiting.
                    self._client = None
                    self._end_subscribes(client)
                raise aiomqtt.MqttError("connection closed")
            except asyncio.CancelledError:
                _abandon(client)
                raise
            except Exception as exc:  # noqa: BLE001 - a broker that goes away is a state, not a crash
                attempt += 1
                self.state = f"reconnecting: {_reason(exc)}"
                delay = backoff_delay("exponential", attempt, RECONNECT_BASE_S, RECONNECT_MAX_S, "equal", self._rng)
                log.info("mqtt %s: %s; next attempt in %.1f s", self._where, self.state, delay)
                await self._clock.sleep(delay)

    def _take(self, message: Any) -> None:
        payload = message.payload
        if not isinstance(payload, (bytes, bytearray)):
            payload = str(payload).encode() if payload is not None else b""
        self.on_message(message.topic.value, bytes(payload))

    def _spawn_subscribe(self, client: Any, topic: str) -> asyncio.Task[Exception | None]:
        """Subscribe in a task of its own (see `_run`); the task returns the failure, if any."""
        async def subscribe() -> Exception | None:
            try:
                await client.subscribe(topic, qos=0)
            except Exception as exc:  # noqa: BLE001 - the reconnect loop subscribes everything again
                log.debug("mqtt %s: subscribe %s failed", self._where, topic, exc_info=True)
                return exc
            return None

        task = asyncio.get_running_loop().create_task(subscribe(), name=f"mqtt:{self._where}:subscribe")
        self._pending[task] = client  # a reference until it is done, or the loop may drop it
        task.add_done_callback(lambda t: self._pending.pop(t, None))
        return task

    def _end_subscribes(self, client: Any) -> None:
        for task, of in list(self._pending.items()):
            if of is client:
                task.cancel()
                self._pending.pop(task, None)

    @property
    def _where(self) -> str:
        return f"{self._host}:{self._port}"

    async def close(self) -> None:
        if self._task is not None:
            # A graceful disconnect waits for the broker's answer; a broker that no longer answers
            # gets a second cancel, which ends the wait.
            for _ in range(2):
                self._task.cancel()
                done, _ = await asyncio.wait({self._task}, timeout=2.0)
                if done:
                    break
            self._task = None
        self._client = None
        self.state = "closed"


def _abandon(client: Any) -> None:
    """Clean up after aiomqtt (2.x) when cancelled while connecting.

    Cancelled mid-connect it leaves its `_connected` future cancelled, which its disconnect callback
    later reads and raises on ("Exception in callback" on stderr), and the socket open. The future is
    reset the way aiomqtt itself resets it after a failed connect, and the socket closed.
    """
    connected = getattr(client, "_connected", None)
    if isinstance(connected, asyncio.Future) and connected.cancelled():
        client._connected = asyncio.get_running_loop().create_future()
        try:
            client._client._sock_close()
        except Exception:  # noqa: BLE001 - best effort on a connection being abandoned
            log.debug("mqtt: closing an abandoned socket failed", exc_info=True)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return text.replace("\n", " ")[:200]


def broker(ctx: CheckContext, s: MqttCheck, password: str | None) -> tuple[tuple[str, ...], MqttBroker]:
    key = ("mqtt", s.broker.rstrip("/"), s.username)
    clock = ctx.clock
    made = ctx.shared(key, lambda: MqttBroker(s.broker, s.username, password, clock, s.max_payload_bytes),
                      MqttBroker.close)
    # Topics of one broker may ask for different caps; the broker keeps the largest.
    made.max_payload_bytes = max(made.max_payload_bytes, s.max_payload_bytes)
    return key, made


class _Mqtt:
    def __init__(self, s: MqttCheck, ctx: CheckContext, first_wait_s: float) -> None:
        self._s = s
        self._first_wait = first_wait_s
        self._checked = False
        self._ctx = ctx
        self._password = ctx.secret(s.password_env) if s.password_env else None
        self._key, self._broker = broker(ctx, s, self._password)
        self._broker.watch(s.topic)
        self._clock: Clock = ctx.clock
        self._rule = s.rule()
        self._judged: tuple[int, str | None, str | None] = (0, None, None)  # seq, error, reboot

    async def run(self, endpoint: str) -> CheckResult:
        s, b = self._s, self._broker
        if s.password_env and self._password is None:
            return unhealthy(0.0, "mqtt", f"environment variable {s.password_env} (the broker password) is not set",
                             FailureType.CONFIGURATION_ERROR)
        b.start()
        if not self._checked:
            self._checked = True
            await b.first_message(s.topic, self._first_wait)
        # What a check costs here is reading the cache; the broker's latency is not this check's.
        start = time.perf_counter()
        now = self._clock.monotonic()
        sample = b.latest(s.topic)
        detail: tuple[tuple[str, str], ...] = (("broker", b.state), ("topic", s.topic))
        broker_note = "" if b.connected else f"; broker {b.state}"
        if sample is None:
            waited = now - b.watching_since(s.topic)
            latency = (time.perf_counter() - start) * 1000.0
            if waited < s.max_age_seconds:
                return CheckResult(ServiceStatus.UNKNOWN, latency, f"no message yet on {s.topic} "
                                   f"(waiting up to {s.max_age_seconds:g} s){broker_note}", check="mqtt",
                                   detail=detail)
            return unhealthy(latency, "mqtt", f"no message on {s.topic} for {waited:.0f} s{broker_note}",
                             _failure(b), detail=detail)
        age = now - sample.arrival
        detail += (("last message", f"{age:.1f} s ago"),) + ((("from topic", sample.topic),)
                                                           if sample.topic != s.topic else ())
        latency = (time.perf_counter() - start) * 1000.0
        if age > s.max_age_seconds:
            return unhealthy(latency, "mqtt", f"last message on {s.topic} {age:.0f} s ago, older than "
                             f"max_age_seconds ({s.max_age_seconds:g}){broker_note}", _failure(b),
                             sample.value, detail)
        if sample.error is not None:
            return unhealthy(latency, "mqtt", f"{sample.error} on {sample.topic}", FailureType.DATA_CORRUPTION,
                             None, detail)
        assert sample.value is not None
        # Judged once per message, not per check: a heartbeat published every 10 s and checked every
        # second has not "stopped changing" between two of its messages.
        if self._judged[0] != sample.seq:
            error, reboot = self._rule.judge(sample.value)
            self._judged = (sample.seq, error, reboot)
            fresh_reboot = reboot
        else:
            _, error, _ = self._judged
            fresh_reboot = None
        detail = (("value", str(sample.value)[:80]),) + detail
        if not b.connected:
            return CheckResult(ServiceStatus.UNKNOWN, latency, f"broker {b.state}; last message {age:.0f} s ago",
                               check="mqtt", value=sample.value, detail=detail, reboot=fresh_reboot)
        if error is not None:
            result = unhealthy(latency, "mqtt", error, FailureType.DATA_CORRUPTION, sample.value, detail)
        else:
            result = healthy(latency, "mqtt", sample.value, detail)
        return replace(result, reboot=fresh_reboot) if fresh_reboot is not None else result

    def describe_error(self, exc: BaseException) -> tuple[str, FailureType]:
        return f"{type(exc).__name__}: {exc}"[:300], FailureType.SERVICE_UNAVAILABLE

    async def close(self) -> None:
        self._broker.unwatch(self._s.topic)
        await self._ctx.release(self._key)


def _failure(b: MqttBroker) -> FailureType:
    return FailureType.SERVICE_UNAVAILABLE if b.connected else FailureType.NETWORK_PARTITION


def _make(settings: MqttCheck, ctx: CheckContext, service: Any) -> _Mqtt:
    fd = getattr(service, "fault_detection", None)
    # Half the check's timeout for a retained message after subscribing (first check only).
    return _Mqtt(settings, ctx, 0.5 * float(getattr(fd, "timeout_seconds", 5.0)))


CHECK = CheckType("mqtt", MqttCheck, _make,
                  "Watches one topic on a broker (one shared connection per broker): healthy while its last "
                  "message is younger than max_age_seconds and satisfies the value conditions.")
