"""Real servers on loopback for the industrial check tests: a Modbus PLC (pymodbus, in process), an
OPC UA server (asyncua, in process), snmpd and mosquitto (Debian packages, as processes).

Every server binds 127.0.0.1 on a free port and is stopped by its fixture. A missing binary skips the
test with the reason (CI installs mosquitto, snmpd and snmp).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_until(predicate: Any, what: str, timeout_s: float = 20.0, step_s: float = 0.05) -> None:
    """Wait for observed progress (never a guessed sleep); fail with `what` if it does not come."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(step_s)


# ---------------------------------------------------------------- Modbus (pymodbus server, in process)

class Plc:
    """A Modbus/TCP server with unit 1: values set from the test, exceptions on demand.

    Attributes:
        holding / inputs / coils / discrete: address → value, served on read; writes land here too.
        fail: address → Modbus exception code returned for reads of that register (any table).
        writes: (function code, address, values) of every write request.
    """

    def __init__(self, unit: int = 1) -> None:
        self.unit = unit
        self.port = 0
        self.holding: dict[int, int] = {}
        self.inputs: dict[int, int] = {}
        self.coils: dict[int, bool] = {}
        self.discrete: dict[int, bool] = {}
        self.fail: dict[int, int] = {}
        self.writes: list[tuple[int, int, list[Any]]] = []
        self.reads = 0
        self._server: Any = None

    async def _action(self, fc: int, start: int, address: int, count: int, registers: list[int],
                      values: list[Any] | None) -> Any:
        from pymodbus.constants import ExcCodes
        from pymodbus.simulator.simutils import SimUtils

        if address in self.fail:
            return ExcCodes(self.fail[address])
        if values is not None:
            self.writes.append((fc, address, list(values)))
            if fc in (5, 15):
                for i, v in enumerate(values):
                    self.coils[address + i] = bool(v)
            else:
                for i, v in enumerate(values):
                    self.holding[address + i] = int(v)
            return None
        self.reads += 1
        if fc in (3, 4):
            table = self.holding if fc == 3 else self.inputs
            for i in range(count):
                registers[address - start + i] = table.get(address + i, 0) & 0xFFFF
        elif fc in (1, 2):
            table_b = self.coils if fc == 1 else self.discrete
            first = address // 16
            regs = (address % 16 + count + 15) // 16
            bits = SimUtils.registersToBits(registers[first - start:first - start + regs])
            for i in range(count):
                bits[address % 16 + i] = table_b.get(address + i, False)
            registers[first - start:first - start + regs] = SimUtils.bitsToRegisters(bits)
        return None

    async def start(self, port: int | None = None, silent_for_other_units: bool = False) -> None:
        """`silent_for_other_units`: like a gateway whose target does not answer, unit 7 never answers
        (pymodbus' server otherwise answers exception 4 for a unit it does not have)."""
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        self.port = port or free_port()
        device = SimDevice(self.unit, simdata=(
            [SimData(0, count=64, values=False, datatype=DataType.BITS)],
            [SimData(0, count=64, values=False, datatype=DataType.BITS)],
            [SimData(0, count=2000, values=0, datatype=DataType.REGISTERS)],
            [SimData(0, count=2000, values=0, datatype=DataType.REGISTERS)]), action=self._action)
        devices = [device]
        if silent_for_other_units:
            async def never(*_: Any) -> Any:
                await asyncio.sleep(3600)

            devices.append(SimDevice(7, simdata=[SimData(0, count=16, values=0, datatype=DataType.REGISTERS)],
                                     action=never))
        self._server = ModbusTcpServer(devices, address=("127.0.0.1", self.port))
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None


@pytest.fixture
async def plc() -> AsyncIterator[Plc]:
    server = Plc()
    await server.start()
    yield server
    await server.stop()


# ---------------------------------------------------------------- OPC UA (asyncua server, in process)

class OpcServer:
    """An asyncua server with one variable (`temperature`), restartable on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"opc.tcp://127.0.0.1:{self.port}/fw/"
        self.server: Any = None
        self.temperature: Any = None
        self.node_id = ""

    async def start(self) -> None:
        from asyncua import Server

        self.server = Server()
        await self.server.init()
        self.server.set_endpoint(self.url)
        idx = await self.server.register_namespace("urn:faultwatch:test")
        line = await self.server.nodes.objects.add_object(idx, "Line1")
        self.temperature = await line.add_variable(idx, "Temperature", 21.5)
        self.node_id = self.temperature.nodeid.to_string()
        await self.server.start()

    async def set(self, value: Any) -> None:
        await self.temperature.write_value(value)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None


@pytest.fixture
async def opc() -> AsyncIterator[OpcServer]:
    server = OpcServer()
    await server.start()
    yield server
    await server.stop()


# ---------------------------------------------------------------- snmpd (Debian package)

WRITABLE_OID = "1.3.6.1.4.1.8072.9999.1.0"  # an `override -rw` integer: the "PDU outlet" of the tests


class Snmpd:
    """snmpd on 127.0.0.1:<free UDP port> with a read and a write community (random, per test)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port(socket.SOCK_DGRAM)
        self.read_community = "ro-" + secrets.token_hex(6)
        self.write_community = "rw-" + secrets.token_hex(6)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = self.tmp / "snmpd.conf"
        conf.write_text(f"rocommunity {self.read_community} 127.0.0.1\n"
                        f"rwcommunity {self.write_community} 127.0.0.1\n"
                        f"override -rw .{WRITABLE_OID} integer 1\n", encoding="utf-8")
        (self.tmp / "persist").mkdir(exist_ok=True)
        (self.tmp / "mibs").mkdir(exist_ok=True)
        # No MIB files (the agent needs none to serve numeric OIDs; loading Debian's partial set only
        # prints pages of warnings) and persistent state in the test's own directory.
        env = dict(os.environ, MIBS="", MIBDIRS=str(self.tmp / "mibs"), SNMP_PERSISTENT_DIR=str(self.tmp / "persist"))
        self.proc = subprocess.Popen(
            [snmpd_binary(), "-f", "-Lf", str(self.tmp / "snmpd.log"), "-C", "-c", str(conf),
             "-p", str(self.tmp / "snmpd.pid"), f"udp:127.0.0.1:{self.port}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 15
        env = dict(os.environ, MIBS="", MIBDIRS=str(self.tmp / "mibs"))
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                log = (self.tmp / "snmpd.log").read_text(errors="replace")[-500:]
                raise RuntimeError(f"snmpd exited {self.proc.returncode}: {log}")
            if shutil.which("snmpget"):
                out = subprocess.run(["snmpget", "-v2c", "-c", self.read_community, "-t", "0.3", "-r", "0",
                                      f"127.0.0.1:{self.port}", "1.3.6.1.2.1.1.3.0"], env=env,
                                     capture_output=True, text=True)
                if out.returncode == 0:
                    return
            else:  # no client tools: the UDP port being bound is the best sign we have
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    try:
                        s.bind(("127.0.0.1", self.port))
                    except OSError:
                        return
            time.sleep(0.1)
        raise RuntimeError("snmpd did not answer within 15 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def snmpd_binary() -> str:
    found = shutil.which("snmpd") or ("/usr/sbin/snmpd" if os.path.exists("/usr/sbin/snmpd") else None)
    if not found:
        pytest.skip("snmpd not installed (Debian package snmpd)")
    return found


@pytest.fixture
def snmpd(tmp_path: Path) -> Iterator[Snmpd]:
    snmpd_binary()
    agent = Snmpd(tmp_path)
    agent.start()
    yield agent
    agent.stop()


# ---------------------------------------------------------------- mosquitto (Debian package)

class Mosquitto:
    """mosquitto on 127.0.0.1:<free port>, anonymous; can be killed and started again on the same port."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = self.tmp / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        f"log_dest file {self.tmp / 'mosquitto.log'}\n", encoding="utf-8")
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen within 15 s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    async def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        import aiomqtt

        async with aiomqtt.Client("127.0.0.1", self.port) as client:
            await client.publish(topic, payload, qos=1, retain=retain)


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if not found:
        pytest.skip("mosquitto not installed (Debian package mosquitto)")
    return found


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    mosquitto_binary()
    broker = Mosquitto(tmp_path)
    broker.start()
    yield broker
    broker.kill()


# ---------------------------------------------------------------- checks made the way the engine makes them

def service(check_toml: str, timeout_s: float = 1.0, restart_toml: str = "") -> Any:
    """One service parsed from TOML (so every test also goes through the config loader)."""
    from core.config import parse_config

    text = (f"[fault_detection]\ntimeout_seconds = {timeout_s}\n[[services]]\nid = \"dev\"\n"
            f"check = {check_toml}\n" + (f"restart = {restart_toml}\n" if restart_toml else ""))
    return parse_config(text).services[0]


def make_check(ctx: Any, svc: Any) -> Any:
    from core.checks.registry import check_types

    return check_types()[svc.check_type].make(svc.check, ctx, svc)


async def run_check(check: Any, svc: Any) -> Any:
    from core.checks.base import execute

    fd = svc.fault_detection
    return await execute(check, "", check_type=svc.check_type, timeout_s=fd.timeout_seconds,
                         slow_ms=fd.slow_response_threshold_ms)
