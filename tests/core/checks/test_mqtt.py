"""MQTT checks against a real mosquitto on loopback: freshness, values, hostile payloads, a broker that dies.

Message ages are judged on a FakeClock the test moves (ctx.clock), so "older than max_age_seconds" is
proved without waiting; the messages themselves travel through the real broker.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import select
import socket
import threading
import tracemalloc
from typing import Any, AsyncIterator, Iterator

import pytest
from industrial_servers import Mosquitto, make_check, mosquitto, run_check, service, wait_until  # noqa: F401

from core.checks.base import CheckContext
from core.checks.mqtt import MqttBroker, parse_payload
from core.clock import FakeClock
from core.events import FailureType, ServiceStatus


@pytest.fixture
async def ctx() -> AsyncIterator[CheckContext]:
    context = CheckContext(environ={}, clock=FakeClock())
    yield context
    await context.close()


def clock(ctx: CheckContext) -> FakeClock:
    assert isinstance(ctx.clock, FakeClock)
    return ctx.clock


def mq(broker: Mosquitto, topic: str, extra: str = "") -> str:
    return (f'{{ type = "mqtt", broker = "{broker.url}", topic = "{topic}", max_age_seconds = 30'
            + (f", {extra}" if extra else "") + " }")


def the_broker(ctx: CheckContext) -> MqttBroker:
    (key,) = [k for k in ctx.holds() if k[0] == "mqtt"]
    return ctx._shared[key]  # type: ignore[no-any-return]


async def started(ctx: CheckContext, check: Any, svc: Any) -> MqttBroker:
    """Run the check once (which starts the broker connection) and wait until it is subscribed."""
    await run_check(check, svc)
    broker = the_broker(ctx)
    await wait_until(lambda: broker.connected, "the broker connection")
    return broker


async def publish_and_wait(m: Mosquitto, broker: MqttBroker, topic: str, payload: bytes | str,
                           watched: str | None = None) -> None:
    before = broker.latest(watched or topic)
    await m.publish(topic, payload)
    await wait_until(lambda: broker.latest(watched or topic) is not before, f"a message on {topic}")


async def test_a_fresh_message_with_the_expected_value_is_healthy(mosquitto: Mosquitto, ctx: CheckContext) -> None:
    svc = service(mq(mosquitto, "lab/plc1/status", 'equals = "online"'))
    check = make_check(ctx, svc)
    first = await run_check(check, svc)
    assert first.status is ServiceStatus.UNKNOWN
    assert first.error is not None and first.error.startswith("no message yet on lab/plc1/status")
    broker = await started(ctx, check, svc)
    await publish_and_wait(mosquitto, broker, "lab/plc1/status", "online")
    result = await run_check(check, svc)
    assert result.status is ServiceStatus.HEALTHY, result.error
    assert result.value == "online" and result.check == "mqtt"
    assert dict(result.detail)["broker"] == "connected"
    assert dict(result.detail)["last message"] == "0.0 s ago"
    assert svc.target == f"mqtt {mosquitto.url} lab/plc1/status"


async def test_staleness_is_judged_from_the_last_arrival(mosquitto: Mosquitto, ctx: CheckContext) -> None:
    svc = service(mq(mosquitto, "lab/sensor/t"))
    check = make_check(ctx, svc)
    broker = await started(ctx, check, svc)
    await publish_and_wait(mosquitto, broker, "lab/sensor/t", "21.5")
    clock(ctx).advance_sync(29)
    assert (await run_check(check, svc)).ok
    clock(ctx).advance_sync(2)
    stale = await run_check(check, svc)
    assert stale.status is ServiceStatus.UNHEALTHY
    assert stale.error == "last message on lab/sensor/t 31 s ago, older than max_age_seconds (30)"
    assert stale.value == 21.5  # the last value is still shown
    await publish_and_wait(mosquitto, broker, "lab/sensor/t", "21.7")
    assert (await run_check(check, svc)).ok


async def test_a_topic_that_never_publishes_becomes_unhealthy_after_max_age(
        mosquitto: Mosquitto, ctx: CheckContext) -> None:
    svc = service(mq(mosquitto, "lab/silent"))
    check = make_check(ctx, svc)
    await started(ctx, check, svc)
    clock(ctx).advance_sync(31)
    result = await run_check(check, svc)
    assert result.status is ServiceStatus.UNHEALTHY and result.error == "no message on lab/silent for 31 s"


async def test_value_conditions_and_must_change_are_judged_per_message(mosquitto: Mosquitto, ctx: CheckContext) -> None:
    hot = service(mq(mosquitto, "lab/temp", "max = 80"))
    counter = service(mq(mosquitto, "lab/counter", "must_change = true"))
    c_hot, c_counter = make_check(ctx, hot), make_check(ctx, counter)
    broker = await started(ctx, c_hot, hot)
    await publish_and_wait(mosquitto, broker, "lab/temp", "95")
    assert (await run_check(c_hot, hot)).error == "value 95 above max 80"
    await publish_and_wait(mosquitto, broker, "lab/counter", "41")
    assert (await run_check(c_counter, counter)).ok
    assert (await run_check(c_counter, counter)).ok  # same message checked twice: not "stopped"
    await publish_and_wait(mosquitto, broker, "lab/counter", "41")
    assert (await run_check(c_counter, counter)).error == "value 41 stopped changing"
    await publish_and_wait(mosquitto, broker, "lab/counter", "2")
    rebooted = await run_check(c_counter, counter)
    assert rebooted.ok and rebooted.reboot == "counter went back from 41 to 2"
    assert (await run_check(c_counter, counter)).reboot is None


async def test_binary_and_huge_payloads_are_clear_errors_with_bounded_memory(
        mosquitto: Mosquitto, ctx: CheckContext) -> None:
    svc = service(mq(mosquitto, "lab/blob"))
    check = make_check(ctx, svc)
    broker = await started(ctx, check, svc)
    await publish_and_wait(mosquitto, broker, "lab/blob", b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    binary = await run_check(check, svc)
    assert binary.status is ServiceStatus.UNHEALTHY and binary.failure_type is FailureType.DATA_CORRUPTION
    assert binary.error == "binary payload (11 bytes, not UTF-8 text) on lab/blob"

    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        await publish_and_wait(mosquitto, broker, "lab/blob", b"7" * (10 * 1024 * 1024))
        huge = await run_check(check, svc)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert huge.error == ("payload of 10,485,760 bytes is larger than max_payload_bytes (65,536) on lab/blob")
    sample = broker.latest("lab/blob")
    assert sample is not None and sample.size == 10 * 1024 * 1024 and sample.value is None
    assert kept < 1024 * 1024, f"{kept:,} bytes kept after a 10 MB message"
    await publish_and_wait(mosquitto, broker, "lab/blob", "ok")
    assert (await run_check(check, svc)).ok


async def test_topics_of_one_broker_share_one_connection(mosquitto: Mosquitto, ctx: CheckContext) -> None:
    a = service(mq(mosquitto, "site/a"))
    b = service(mq(mosquitto, "site/+/level", "min = 10"))
    ca, cb = make_check(ctx, a), make_check(ctx, b)
    broker = await started(ctx, ca, a)
    await run_check(cb, b)
    assert len([k for k in ctx.holds() if k[0] == "mqtt"]) == 1 and broker.connects == 1
    await wait_until(lambda: mosquitto_subscribed(broker), "both subscriptions")
    await publish_and_wait(mosquitto, broker, "site/tank2/level", "12", watched="site/+/level")
    result = await run_check(cb, b)
    assert result.ok and result.value == 12 and dict(result.detail)["from topic"] == "site/tank2/level"
    await ca.close()
    assert broker.topics() == ["site/+/level"]
    await cb.close()
    assert [k for k in ctx.holds() if k[0] == "mqtt"] == [] and broker.state == "closed"


def mosquitto_subscribed(broker: MqttBroker) -> bool:
    return broker.connected and not broker._pending  # noqa: SLF001 - the subscribe task finished


async def test_a_broker_killed_mid_run_turns_topics_unknown_then_unhealthy_then_recovers(
        mosquitto: Mosquitto, ctx: CheckContext) -> None:
    svc = service(mq(mosquitto, "lab/plc1/status", 'equals = "online"'))
    check = make_check(ctx, svc)
    broker = await started(ctx, check, svc)
    await publish_and_wait(mosquitto, broker, "lab/plc1/status", "online")
    assert (await run_check(check, svc)).ok

    mosquitto.kill()
    await wait_until(lambda: broker.state.startswith("reconnecting: "), "the broker to notice")
    unknown = await run_check(check, svc)
    assert unknown.status is ServiceStatus.UNKNOWN and unknown.value == "online"
    assert dict(unknown.detail)["broker"].startswith("reconnecting: ")
    assert unknown.error is not None and unknown.error.startswith("broker reconnecting: ")

    # Reconnect attempts wait on the fake clock too: moving it past max_age also retries (and fails).
    await clock(ctx).advance(31)
    gone = await run_check(check, svc)
    assert gone.status is ServiceStatus.UNHEALTHY and gone.failure_type is FailureType.NETWORK_PARTITION
    assert gone.error is not None and gone.error.startswith(
        "last message on lab/plc1/status 31 s ago, older than max_age_seconds (30); broker reconnecting: ")

    mosquitto.start()  # same port
    async def reconnected() -> bool:
        await clock(ctx).advance(5)
        return broker.connected
    await wait_until(reconnected, "the reconnect")
    assert broker.connects == 2
    await publish_and_wait(mosquitto, broker, "lab/plc1/status", "online")
    back = await run_check(check, svc)
    assert back.status is ServiceStatus.HEALTHY and dict(back.detail)["broker"] == "connected"


async def test_a_missing_password_variable_is_a_configuration_error(mosquitto: Mosquitto, ctx: CheckContext) -> None:
    svc = service(mq(mosquitto, "t", 'username = "fw", password_env = "MQTT_PW_NOT_SET"'))
    result = await run_check(make_check(ctx, svc), svc)
    assert result.failure_type is FailureType.CONFIGURATION_ERROR
    assert result.error == "environment variable MQTT_PW_NOT_SET (the broker password) is not set"


def test_payload_parsing() -> None:
    assert parse_payload(b" 21.5\n", 100) == (21.5, None)
    assert parse_payload(b"42", 100) == (42, None)
    assert parse_payload(b"online", 100) == ("online", None)
    assert parse_payload(b"nan", 100) == ("nan", None)
    assert parse_payload(b"", 100) == ("", None)
    assert parse_payload(b"x" * 101, 100) == (None, "payload of 101 bytes is larger than max_payload_bytes (100)")
    assert parse_payload(b"\x00\x01", 100) == (None, "binary payload (2 bytes of control characters)")


async def test_the_first_check_sees_a_retained_message(mosquitto: Mosquitto, ctx: CheckContext) -> None:
    await mosquitto.publish("lab/retained", "online", retain=True)
    svc = service(mq(mosquitto, "lab/retained", 'equals = "online"'))
    result = await run_check(make_check(ctx, svc), svc)
    assert result.status is ServiceStatus.HEALTHY and result.value == "online"



class HoldingRelay:
    """A TCP relay on loopback in front of the real mosquitto that can hold back the broker's SUBACKs.

    The quick-quit race needs a SUBACK to reach the client after the quit began; holding it here and
    letting it go at the chosen moment makes that order certain instead of one start in 25.
    """

    SUBACK = 0x90

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.held = bytearray()
        self._holding = True
        self._lock = threading.Lock()
        self._down: socket.socket | None = None
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            down, _ = self._listener.accept()
        except OSError:
            return
        up = socket.create_connection(("127.0.0.1", self._upstream))
        self._down = down
        self._sockets += [down, up]
        threading.Thread(target=self._pump, args=(down, up, False), daemon=True).start()
        threading.Thread(target=self._pump, args=(up, down, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_broker: bool) -> None:
        try:
            while data := src.recv(65536):
                with self._lock:
                    # The broker answers each request in its own segment on loopback: a chunk starting
                    # with a SUBACK is the answer to a SUBSCRIBE.
                    if from_broker and self._holding and (data[0] & 0xF0 == self.SUBACK or self.held):
                        self.held += data
                        continue
                dst.sendall(data)
        except OSError:
            pass

    def release(self) -> None:
        with self._lock:
            self._holding = False
            if self._down is not None and self.held:
                self._down.sendall(bytes(self.held))
            self.held.clear()

    def close(self) -> None:
        for s in self._sockets:
            s.close()


@pytest.fixture
def relay(mosquitto: Mosquitto) -> Iterator[HoldingRelay]:
    r = HoldingRelay(mosquitto.port)
    yield r
    r.close()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_suback_arriving_while_quitting_logs_no_error(
        relay: HoldingRelay, caplog: pytest.LogCaptureFixture) -> None:
    """A quit right after connecting: the first SUBSCRIBE is answered while the client disconnects.

    aiomqtt forgets a subscribe's message id when the awaiting coroutine is cancelled, and logs a SUBACK
    for a forgotten id as an ERROR with a traceback (which fails the bundle's smoke test)."""
    caplog.set_level(logging.DEBUG)
    broker = MqttBroker(relay.url, "", None, FakeClock())
    broker.watch("lab/quick/a")
    broker.start()
    await wait_until(lambda: bool(relay.held), "mosquitto's SUBACK (held by the relay)")
    client = broker._client  # noqa: SLF001 - the connection being closed
    closing = asyncio.get_running_loop().create_task(broker.close())

    def disconnect_queued() -> bool:
        # paho's queue of packets not yet written: the DISCONNECT is in it, so the quit is under way.
        return any(p["command"] & 0xF0 == 0xE0 for p in client._client._out_packet)  # noqa: SLF001
    await wait_until(disconnect_queued, "the DISCONNECT to be queued", step_s=0)
    sock = client._client.socket()  # noqa: SLF001
    relay.release()
    # Held in select (the loop does not run) until the SUBACK is in the client's socket, so the loop
    # reads it before it writes the DISCONNECT: the order of the quick quit in the bundle.
    readable, _, _ = select.select([sock], [], [], 10.0)
    assert readable, "the released SUBACK did not arrive"
    await closing
    assert broker.state == "closed"
    assert _warnings(caplog) == []
    assert not broker._pending  # noqa: SLF001 - no subscribe task outlives its connection


async def test_a_subscribe_unanswered_at_quit_does_not_outlive_the_connection(
        relay: HoldingRelay, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    broker = MqttBroker(relay.url, "", None, FakeClock())
    broker.start()
    await wait_until(lambda: broker.connected, "the broker connection")
    broker.watch("lab/quick/later")  # subscribed by a task of its own, the connection being up
    await wait_until(lambda: bool(relay.held), "mosquitto's SUBACK (held by the relay)")
    await broker.close()
    assert broker.state == "closed"
    assert not broker._pending  # noqa: SLF001 - the subscribe ended with its connection
    assert _warnings(caplog) == []
