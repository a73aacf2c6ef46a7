"""The demo rack's industrial devices: Modbus PLCs, MQTT sensors and a PDU, all served in process.

- Two PLCs, each a pymodbus server on its own loopback port: a mixer whose temperature register
  (holding 100, °C) must stay in 0..80, and a press whose cycle counter (input 7) must keep moving.
- Two MQTT sensors publishing to an in-process broker (amqtt): a cold-room temperature every second
  and a line status ("online"). Without amqtt installed the rack runs without them and says so.
- A PDU: a Modbus server whose coils are outlets. Writing `true` to outlet N power-cycles the device
  plugged into it (the `modbus_write` restart action of the devices above): the device is busy for a
  few seconds, then comes back healthy with its counters from zero, which Faultwatch sees as a reboot.

`IndustrialScenario` breaks them on a loop (a register out of range, a counter that stops, a sensor
that goes silent); Faultwatch notices and power-cycles them through the PDU. Device state is plain
Python read on each request, so the rules are tested with a fake clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from core.clock import Clock, SystemClock
from core.logs import SIM as log


PLC_BEHAVIOURS = ("healthy", "out_of_range", "stuck", "busy")
SENSOR_BEHAVIOURS = ("healthy", "silent")
TEMPERATURE_REGISTER = 100
COUNTER_REGISTER = 7
LOAD_REGISTER = 0  # the PDU's load in 0.1 A
_BUSY = 6  # Modbus exception "server device busy": what a rebooting PLC answers


@dataclass
class SimPlc:
    """A PLC's registers, computed from its behaviour and the time since it (re)booted.

    Attributes:
        booted: monotonic time of the last (re)boot; the cycle counter counts 10 per second from it.
        busy_until: while now < busy_until the PLC answers "server device busy" (it is rebooting).
    """

    id: str
    name: str
    outlet: int
    group: str = "line-1"
    behaviour: str = "healthy"
    booted: float = 0.0
    busy_until: float = 0.0
    reboot_s: float = 3.0
    stuck_at: int = 0
    power_cycles: int = 0
    port: int = 0

    def set_behaviour(self, name: str, now: float) -> None:
        if name not in PLC_BEHAVIOURS:
            raise ValueError(f"{self.id}: unknown behaviour {name!r} (expected one of {' | '.join(PLC_BEHAVIOURS)})")
        if name == "stuck":
            self.stuck_at = self.counter(now)
        self.behaviour = name

    def power_cycle(self, now: float) -> None:
        self.power_cycles += 1
        self.behaviour = "healthy"
        self.booted = now + self.reboot_s
        self.busy_until = now + self.reboot_s

    def busy(self, now: float) -> bool:
        return self.behaviour == "busy" or now < self.busy_until

    def temperature(self, now: float) -> int:
        if self.behaviour == "out_of_range":
            return 95
        return int(round(55 + 8 * math.sin((now - self.booted) / 20.0)))

    def counter(self, now: float) -> int:
        if self.behaviour == "stuck":
            return self.stuck_at
        return int(max(0.0, now - self.booted) * 10) & 0xFFFF

    def register(self, table: str, address: int, now: float) -> int:
        if table == "holding" and address == TEMPERATURE_REGISTER:
            return self.temperature(now)
        if table == "input" and address == COUNTER_REGISTER:
            return self.counter(now)
        return 0


@dataclass
class SimSensor:
    """An MQTT sensor: publishes `value(now)` to its topic every `interval_s` unless silent or rebooting."""

    id: str
    name: str
    topic: str
    outlet: int
    kind: str  # "temperature" or "status"
    group: str = "cold-store"
    interval_s: float = 1.0
    behaviour: str = "healthy"
    booted: float = 0.0
    reboot_s: float = 3.0
    power_cycles: int = 0
    next_at: float = 0.0

    def set_behaviour(self, name: str, now: float) -> None:
        if name not in SENSOR_BEHAVIOURS:
            raise ValueError(f"{self.id}: unknown behaviour {name!r} (expected one of {' | '.join(SENSOR_BEHAVIOURS)})")
        self.behaviour = name

    def power_cycle(self, now: float) -> None:
        self.power_cycles += 1
        self.behaviour = "healthy"
        self.booted = now + self.reboot_s
        self.next_at = self.booted

    def due(self, now: float) -> str | None:
        """The payload to publish now, if one is due."""
        if self.behaviour == "silent" or now < self.booted or now < self.next_at:
            return None
        self.next_at = now + self.interval_s
        if self.kind == "status":
            return "online"
        return f"{-18.0 + 1.5 * math.sin(now / 15.0):.1f}"


@dataclass
class IndustrialDevices:
    """The devices and the PDU outlets they hang on (state only; `IndustrialRack` serves them)."""

    plcs: list[SimPlc] = field(default_factory=list)
    sensors: list[SimSensor] = field(default_factory=list)

    def all(self) -> list[SimPlc | SimSensor]:
        return [*self.plcs, *self.sensors]

    def device(self, device_id: str) -> SimPlc | SimSensor:
        for d in self.all():
            if d.id == device_id:
                return d
        raise KeyError(device_id)

    def power_cycle(self, outlet: int, now: float) -> str | None:
        for d in self.all():
            if d.outlet == outlet:
                d.power_cycle(now)
                return d.id
        return None


def industrial_devices(now: float = 0.0) -> IndustrialDevices:
    return IndustrialDevices(
        plcs=[SimPlc("mb-mixer", "Mixer PLC (Modbus)", outlet=0, booted=now),
              SimPlc("mb-press", "Press PLC (Modbus)", outlet=1, booted=now)],
        sensors=[SimSensor("mqtt-cold-temp", "Cold room temperature (MQTT)", "plant/cold-store/room1/temp",
                           outlet=2, kind="temperature", booted=now),
                 SimSensor("mqtt-line-status", "Line 1 status (MQTT)", "plant/line-1/status", outlet=3,
                           kind="status", group="line-1", interval_s=2.0, booted=now)])


class IndustrialRack:
    """Serves `IndustrialDevices` on loopback: a Modbus server per PLC, a PDU, an MQTT broker.

    Attributes:
        pdu_port: the PDU's Modbus port (outlet N is coil N).
        mqtt_port: the in-process broker's port, or 0 when it could not run (see `mqtt_note`).
        mqtt_note: why there are no MQTT sensors, in one line ("" when there are).
    """

    def __init__(self, clock: Clock | None = None, host: str = "127.0.0.1") -> None:
        self.clock = clock or SystemClock()
        self.host = host
        self.devices = industrial_devices(self.clock.monotonic())
        self.pdu_port = 0
        self.mqtt_port = 0
        self.mqtt_note = ""
        self.pdu_writes = 0
        self._servers: list[Any] = []
        self._broker: Any = None
        self._publisher: asyncio.Task[None] | None = None

    # -------------------------------------------------------------- serving

    async def start(self) -> None:
        # pymodbus' servers log each start and each refused request; the demo's log is about devices.
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        for plc in self.devices.plcs:
            plc.port = await self._serve_modbus(self._plc_action(plc))
        self.pdu_port = await self._serve_modbus(self._pdu_action)
        await self._start_mqtt()
        log.info("industrial rack: %d PLCs, PDU on %d, MQTT %s", len(self.devices.plcs), self.pdu_port,
                 f"broker on {self.mqtt_port}" if self.mqtt_port else f"off ({self.mqtt_note})")

    async def _serve_modbus(self, action: Any) -> int:
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        device = SimDevice(1, simdata=(
            [SimData(0, count=16, values=False, datatype=DataType.BITS)],
            [SimData(0, count=16, values=False, datatype=DataType.BITS)],
            [SimData(0, count=256, values=0, datatype=DataType.REGISTERS)],
            [SimData(0, count=256, values=0, datatype=DataType.REGISTERS)]), action=action)
        server = ModbusTcpServer([device], address=(self.host, 0))
        await server.serve_forever(background=True)
        self._servers.append(server)
        # Port 0: the listener (an asyncio.Server) knows which port the OS chose.
        listener: Any = server.transport
        return int(listener.sockets[0].getsockname()[1])

    def _plc_action(self, plc: SimPlc) -> Any:
        async def action(fc: int, start: int, address: int, count: int, registers: list[int],
                         values: list[Any] | None) -> Any:
            from pymodbus.constants import ExcCodes

            now = self.clock.monotonic()
            if plc.busy(now):
                return ExcCodes(_BUSY)
            if values is None and fc in (3, 4):
                table = "holding" if fc == 3 else "input"
                for i in range(count):
                    registers[address - start + i] = plc.register(table, address + i, now)
            return None
        return action

    def load_deciamps(self, now: float) -> int:
        """The PDU's load (holding register 0, 0.1 A): 1.5 A per device that is up."""
        up = sum(1 for d in self.devices.all() if now >= d.booted)
        return 15 * up

    async def _pdu_action(self, fc: int, start: int, address: int, count: int, registers: list[int],
                          values: list[Any] | None) -> Any:
        if values is None and fc == 3:
            for i in range(count):
                registers[address - start + i] = self.load_deciamps(self.clock.monotonic()) if (
                    address + i == LOAD_REGISTER) else 0
        # A write of `true` to outlet (coil) N power-cycles what is plugged into it.
        if values is not None and fc in (5, 15):
            self.pdu_writes += 1
            now = self.clock.monotonic()
            for i, v in enumerate(values):
                if v:
                    cycled = self.devices.power_cycle(address + i, now)
                    log.info("sim PDU: outlet %d power-cycled (%s)", address + i, cycled or "nothing plugged in")
        return None

    async def _start_mqtt(self) -> None:
        if not self.devices.sensors:
            return
        try:
            from amqtt.broker import Broker
        except ImportError:
            self.mqtt_note = "the MQTT sensors need an MQTT broker: pip install amqtt (an in-process broker)"
            log.warning("demo rack: %s", self.mqtt_note)
            self.devices.sensors = []
            return
        import socket

        # amqtt binds what it is given and does not report a port-0 choice: pick a free port first.
        with socket.socket() as s:
            s.bind((self.host, 0))
            port = int(s.getsockname()[1])
        config = {"listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{port}"}},
                  "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}}
        # amqtt logs every connection at INFO; the demo's log is about the devices.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._broker = _demo_broker(Broker)(config)
        await self._broker.start()
        self.mqtt_port = port
        self._publisher = asyncio.get_running_loop().create_task(self._publish_loop(), name="sim:mqtt-sensors")

    async def _publish_loop(self) -> None:
        # Through the broker's own API: no client connection of the demo's to manage.
        while True:
            now = self.clock.monotonic()
            for sensor in self.devices.sensors:
                payload = sensor.due(now)
                if payload is not None:
                    try:
                        data = payload.encode()
                        await self._broker.retain_message(None, sensor.topic, data, 0)
                        await self._broker.internal_message_broadcast(sensor.topic, data, 0)
                    except Exception:  # noqa: BLE001 - a demo sensor must not end the demo
                        log.debug("sim MQTT: publish failed", exc_info=True)
            await self.clock.sleep(0.2)

    async def stop(self) -> None:
        if self._publisher is not None:
            self._publisher.cancel()
            await asyncio.gather(self._publisher, return_exceptions=True)
            self._publisher = None
        for server in self._servers:
            await server.shutdown()
        self._servers.clear()
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None

    # -------------------------------------------------------------- scenario and config

    def set_behaviour(self, device_id: str, name: str) -> None:
        self.devices.device(device_id).set_behaviour(name, self.clock.monotonic())
        log.info("sim industrial: %s -> %s", device_id, name)

    def config_toml(self) -> str:
        """[[services]] tables for these devices (append to a demo config)."""
        h = _s(self.host)
        lines: list[str] = []

        def restart(outlet: int) -> str:
            return (f"restart = {{ modbus_write = {{ host = {h}, port = {self.pdu_port}, unit = 1, "
                    f'table = "coil", address = {outlet}, value = true }} }}')

        mixer, press = self.devices.plcs
        lines += ["[[services]]", f"id = {_s(mixer.id)}", f"name = {_s(mixer.name)}", f"group = {_s(mixer.group)}",
                  f"check = {{ type = \"modbus\", host = {h}, port = {mixer.port}, unit = 1, table = \"holding\", "
                  f"address = {TEMPERATURE_REGISTER}, min = 0, max = 80 }}", restart(mixer.outlet), ""]
        lines += ["[[services]]", f"id = {_s(press.id)}", f"name = {_s(press.name)}", f"group = {_s(press.group)}",
                  f"check = {{ type = \"modbus\", host = {h}, port = {press.port}, unit = 1, table = \"input\", "
                  f"address = {COUNTER_REGISTER}, must_change = true }}", restart(press.outlet), ""]
        lines += ["[[services]]", 'id = "pdu-a"', 'name = "PDU rack A (Modbus)"', 'group = "edge"',
                  f"check = {{ type = \"modbus\", host = {h}, port = {self.pdu_port}, unit = 1, table = \"holding\", "
                  f"address = {LOAD_REGISTER}, scale = 0.1, min = 0, max = 16 }}", ""]
        for sensor in self.devices.sensors:
            condition = 'equals = "online"' if sensor.kind == "status" else "min = -30, max = -10"
            lines += ["[[services]]", f"id = {_s(sensor.id)}", f"name = {_s(sensor.name)}",
                      f"group = {_s(sensor.group)}",
                      f"check = {{ type = \"mqtt\", broker = {_s(f'mqtt://{self.host}:{self.mqtt_port}')}, "
                      f"topic = {_s(sensor.topic)}, max_age_seconds = {4 * sensor.interval_s!r}, {condition} }}",
                      restart(sensor.outlet), ""]
        return "\n".join(lines)


def _s(text: str) -> str:
    return json.dumps(text)


# ---------------------------------------------------------------- scenario

@dataclass(frozen=True, slots=True)
class IndustrialStep:
    at: float
    device: str
    behaviour: str


# Offsets fall between the HTTP demo's steps (resources/scenarios/demo.toml), so the timeline tells one
# story at a time. Each fault is repaired by Faultwatch power-cycling the device through the PDU.
INDUSTRIAL_STEPS = (
    IndustrialStep(30, "mb-mixer", "out_of_range"),     # a register out of range
    IndustrialStep(65, "mb-press", "stuck"),            # a counter that stops
    IndustrialStep(115, "mqtt-cold-temp", "silent"),    # a sensor that goes silent
    # Whatever is still broken (auto-restart off) is repaired before the loop starts again.
    IndustrialStep(175, "mb-mixer", "healthy"),
    IndustrialStep(175, "mb-press", "healthy"),
    IndustrialStep(175, "mqtt-cold-temp", "healthy"),
)
REPEAT_EVERY_S = 180.0


class IndustrialScenario:
    """Plays INDUSTRIAL_STEPS on the rack's clock, every REPEAT_EVERY_S seconds."""

    def __init__(self, rack: IndustrialRack, steps: tuple[IndustrialStep, ...] = INDUSTRIAL_STEPS,
                 repeat_every: float | None = REPEAT_EVERY_S) -> None:
        known = {d.id for d in rack.devices.all()}
        self._steps = sorted((s for s in steps if s.device in known), key=lambda s: s.at)
        self._rack = rack
        self._repeat = repeat_every
        self.applied = 0

    async def run(self) -> None:
        clock = self._rack.clock
        start = clock.monotonic()
        cycle = 0
        while True:
            base = start + cycle * (self._repeat or 0.0)
            for step in self._steps:
                wait = base + step.at - clock.monotonic()
                if wait > 0:
                    await clock.sleep(wait)
                self._rack.set_behaviour(step.device, step.behaviour)
                self.applied += 1
            if not self._repeat:
                return
            cycle += 1
            wait = start + cycle * self._repeat - clock.monotonic()
            if wait > 0:
                await clock.sleep(wait)


def _demo_broker(broker_class: Any) -> Any:
    """amqtt's Broker, with the retained messages sent to a new subscription awaited to their outcome.

    amqtt (0.12) sends them in tasks it waits for without collecting their outcome. One that fails
    because the subscriber has already left (a console that quits right after subscribing: uvloop
    refuses a write on a closed transport) ends as "Task exception was never retrieved", which asyncio
    logs as an ERROR with a traceback. The same messages go out here; such a failure is the subscriber
    gone, which a broker takes in its stride."""

    class DemoBroker(broker_class):  # type: ignore[misc]
        async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int],
                                                              session: Any) -> None:
            topic_filter, qos = subscription
            handler = self._get_handler(session)
            if handler is None:
                return
            sends = [asyncio.ensure_future(handler.mqtt_publish(r.topic, r.data, min(qos, r.qos or qos), retain=True))
                     for topic, r in list(self._retained_messages.items()) if self._matches(topic, topic_filter)]
            for outcome in await asyncio.gather(*sends, return_exceptions=True):
                if isinstance(outcome, Exception):
                    log.debug("sim MQTT: a retained message did not reach %s: %s", session.client_id, outcome)

    return DemoBroker
