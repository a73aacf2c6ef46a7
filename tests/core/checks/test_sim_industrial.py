"""The demo rack's industrial devices: state rules on a fake clock, then served on loopback and watched by
the real engine, which power-cycles a broken PLC through the simulated PDU."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from industrial_servers import make_check, run_check, service, wait_until

from core.checks.base import CheckContext
from core.clock import FakeClock
from core.config import parse_config
from core.events import ServiceStatus
from core.sim.industrial import (INDUSTRIAL_STEPS, IndustrialRack, IndustrialScenario, SimPlc, SimSensor,
                                 industrial_devices)


# ================================================================ pure state rules (FakeClock)

def test_a_plc_counts_stops_and_restarts_from_zero_after_a_power_cycle() -> None:
    plc = SimPlc("p", "P", outlet=0, booted=100.0)
    assert plc.counter(101.0) == 10 and plc.counter(102.5) == 25
    plc.set_behaviour("stuck", 103.0)
    assert plc.counter(103.0) == plc.counter(200.0) == 30
    plc.power_cycle(200.0)
    assert plc.behaviour == "healthy" and plc.busy(201.0) and not plc.busy(203.0)
    assert plc.counter(203.0) == 0 and plc.counter(204.0) == 10


def test_a_plc_out_of_range_reads_95_until_power_cycled() -> None:
    plc = SimPlc("p", "P", outlet=0)
    assert 40 <= plc.temperature(5.0) <= 70
    plc.set_behaviour("out_of_range", 5.0)
    assert plc.register("holding", 100, 6.0) == 95
    plc.power_cycle(6.0)
    assert plc.temperature(10.0) != 95
    with pytest.raises(ValueError, match="unknown behaviour 'melting'"):
        plc.set_behaviour("melting", 10.0)


def test_a_sensor_publishes_on_its_interval_and_not_while_silent_or_rebooting() -> None:
    s = SimSensor("s", "S", "t", outlet=2, kind="temperature", interval_s=1.0)
    assert s.due(0.0) is not None and s.due(0.5) is None and s.due(1.0) is not None
    s.set_behaviour("silent", 1.5)
    assert s.due(5.0) is None
    s.power_cycle(5.0)
    assert s.due(6.0) is None and s.due(8.0) is not None


def test_the_pdu_cycles_what_hangs_on_an_outlet() -> None:
    devices = industrial_devices()
    assert devices.power_cycle(1, 10.0) == "mb-press"
    assert devices.device("mb-press").power_cycles == 1
    assert devices.power_cycle(7, 10.0) is None


async def test_the_scenario_breaks_each_kind_on_time() -> None:
    clock = FakeClock()
    rack = IndustrialRack(clock)
    runner = IndustrialScenario(rack, repeat_every=None)
    task = asyncio.create_task(runner.run())
    await clock.advance(31)
    assert rack.devices.device("mb-mixer").behaviour == "out_of_range"
    await clock.advance(40)
    assert rack.devices.device("mb-press").behaviour == "stuck"
    await clock.advance(200)
    await task
    assert runner.applied == len(INDUSTRIAL_STEPS)
    assert all(d.behaviour == "healthy" for d in rack.devices.all())


# ================================================================ served on loopback

@pytest.fixture
async def rack() -> AsyncIterator[IndustrialRack]:
    r = IndustrialRack()
    await r.start()
    yield r
    await r.stop()


async def test_the_served_rack_answers_the_check_types(rack: IndustrialRack, tmp_path: Path) -> None:
    ctx = CheckContext(environ={})
    try:
        text = rack.config_toml()
        config = parse_config(text)
        assert {s.id for s in config.services} >= {"mb-mixer", "mb-press", "pdu-a"}
        results = {}
        for svc in config.services:
            check = make_check(ctx, svc)
            results[svc.id] = await run_check(check, svc)
            if svc.check_type == "mqtt":  # the first look subscribes; the retained value follows
                async def fresh(check: Any = check, svc: Any = svc) -> bool:
                    results[svc.id] = await run_check(check, svc)
                    return results[svc.id].status is ServiceStatus.HEALTHY
                await wait_until(fresh, f"{svc.id} healthy")
        assert results["mb-mixer"].ok and 40 <= results["mb-mixer"].value <= 70  # type: ignore[operator]
        assert results["mb-press"].ok
        assert results["pdu-a"].ok and results["pdu-a"].value == pytest.approx(1.5 * len(rack.devices.all()))
        if rack.mqtt_port:
            assert results["mqtt-line-status"].value == "online"
            assert -30 <= results["mqtt-cold-temp"].value <= -10  # type: ignore[operator]
        else:
            assert "pip install amqtt" in rack.mqtt_note
    finally:
        await ctx.close()


async def test_the_engine_power_cycles_a_broken_plc_through_the_pdu(rack: IndustrialRack, tmp_path: Path) -> None:
    from core.assembly import open_engine

    mixer_service = [block for block in rack.config_toml().split("[[services]]") if '"mb-mixer"' in block][0]
    text = f"""
[fault_detection]
check_interval_seconds = 0.2
timeout_seconds = 1.0
max_failures = 2
[circuit_breaker]
failure_threshold = 2
success_threshold = 1
timeout_seconds = 0.5
[recovery]
restart_base_delay_seconds = 0.1
restart_max_delay_seconds = 0.5
verify_checks = 1
[api]
enabled = false
[[services]]
{mixer_service}
"""
    engine = open_engine(parse_config(text), state_dir=str(tmp_path))
    await engine.start()
    try:
        mixer = rack.devices.device("mb-mixer")
        await wait_until(lambda: engine.snapshots()["mb-mixer"].status is ServiceStatus.HEALTHY, "a healthy mixer")
        rack.set_behaviour("mb-mixer", "out_of_range")
        await wait_until(lambda: mixer.power_cycles == 1, "the PDU outlet power-cycle")
        assert rack.pdu_writes == 1
        await wait_until(lambda: engine.snapshots()["mb-mixer"].status is ServiceStatus.HEALTHY,
                         "the mixer healthy again after its reboot")
    finally:
        await engine.stop()


def test_subscribers_that_leave_at_once_leave_no_task_error_behind() -> None:
    """A console that quits right after subscribing to the demo's broker: the retained message sent on
    the subscription meets a closed connection (uvloop refuses the write, as in the bundle's engine).
    That is the subscriber gone, not an asyncio ERROR ("Task exception was never retrieved")."""
    pytest.importorskip("amqtt")
    uvloop = pytest.importorskip("uvloop")
    import gc
    import struct

    def packet(kind: int, body: bytes) -> bytes:
        return bytes([kind, len(body)]) + body

    connect = packet(0x10, b"\x00\x04MQTT\x04\x02\x00\x3c" + b"\x00\x00")  # MQTT 3.1.1, clean, no client id
    disconnect = b"\xe0\x00"

    async def scenario() -> list[str]:
        problems: list[str] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: problems.append(ctx["message"]))
        rack = IndustrialRack()
        await rack.start()
        try:
            assert rack.mqtt_port, rack.mqtt_note
            topic = rack.devices.sensors[0].topic.encode()
            await wait_until(lambda: rack._broker._retained_messages, "a retained sensor message")  # noqa: SLF001
            subscribe = packet(0x82, struct.pack("!HH", 1, len(topic)) + topic + b"\x00")
            for _ in range(20):
                reader, writer = await asyncio.open_connection("127.0.0.1", rack.mqtt_port)
                writer.write(connect)
                await reader.readexactly(4)  # CONNACK
                writer.write(subscribe + disconnect)  # subscribe and leave in one segment
                writer.close()
                await writer.wait_closed()
                await asyncio.sleep(0.02)  # the broker's turn to answer the one that left
                gc.collect()  # an unretrieved task exception is reported when the task is collected
        finally:
            await rack.stop()
        gc.collect()
        return problems

    assert uvloop.run(scenario()) == []
