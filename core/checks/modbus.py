"""Modbus/TCP check and the `modbus_write` restart action: one register or bit of a PLC, judged.

A check reads one value (a holding or input register, a coil or a discrete input; 32-bit types span
two registers) from a unit behind `host:port` and judges it with the value conditions. All checks and
writes to one `host:port` share one TCP connection (pymodbus serialises requests on it), opened on
first use and again after it drops. A `must_change` counter that goes backwards is a reboot.

pymodbus is imported inside the functions that talk to a device, so reading a config does not load it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from core.checks.aio import kept_cancel
from core.checks.base import (CheckContext, CheckResult, CheckType, RestartType, Value, ValueConditions, healthy,
                              unhealthy)
from core.events import FailureType
from core.logs import CHECK as log
from core.options import opt

if TYPE_CHECKING:
    from pymodbus.client import AsyncModbusTcpClient


Table = Literal["holding", "input", "coil", "discrete"]

# Modbus exception codes as the specification names them, for one readable line.
EXCEPTIONS = {
    1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "server device failure",
    5: "acknowledge", 6: "server device busy", 8: "memory parity error", 10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
_REGISTERS = {"uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "float32": 2}


@dataclass(frozen=True, slots=True)
class ModbusCheck(ValueConditions):
    TYPE: ClassVar[str] = "modbus"
    host: str = opt("", "Address of the Modbus/TCP device or gateway.", required=True)
    port: int = opt(502, "TCP port.", min=1, max=65535)
    unit: int = opt(1, "Unit (slave) id behind the address; gateways route by it.", min=0, max=255)
    table: Table = opt("holding", "Where the value lives: holding or input registers, coils or discrete inputs.")
    address: int = opt(0, "Register or bit address (0-based, as on the wire).", required=True, min=0, max=65535)
    data_type: Literal["uint16", "int16", "uint32", "int32", "float32"] = opt(
        "uint16", "How registers are read (32-bit types use two registers); ignored for coils and discrete inputs.")
    word_order: Literal["big", "little"] = opt("big", "Which register holds the high word of a 32-bit value.")
    scale: float = opt(1.0, "The register value is multiplied by this (tenths of a degree: 0.1).")

    def target(self) -> str:
        return f"modbus {self.host}:{self.port} unit {self.unit} {self.table} {self.address}"

    def problem(self) -> tuple[str, str] | None:
        if not self.host.strip():
            return "host", "must not be empty"
        if self.table in ("coil", "discrete") and (self.min is not None or self.max is not None):
            return ("min" if self.min is not None else "max"), f"a {self.table} is true or false; use equals"
        if self.address + _count(self) > 65536:
            return "address", f"{self.address} + {_count(self)} registers runs past 65535"
        return None


def _count(s: ModbusCheck) -> int:
    return 1 if s.table in ("coil", "discrete") else _REGISTERS[s.data_type]


class ModbusLink:
    """One TCP connection to a Modbus device or gateway, shared by its checks and writes."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        from pymodbus.client import AsyncModbusTcpClient

        # pymodbus logs each unanswered request as a multi-line ERROR with frame dumps; the check's
        # result already says it in one line, so only the library's critical messages get through.
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        # reconnect_delay=0: no background reconnect loop; the next request connects again, so a dead
        # PLC costs one attempt per check, not a timer of its own.
        self.client: AsyncModbusTcpClient = AsyncModbusTcpClient(
            host, port=port, timeout=timeout_s, retries=0, reconnect_delay=0)
        self.where = f"{host}:{port}"
        self._connecting = asyncio.Lock()

    async def ready(self) -> AsyncModbusTcpClient:
        if not self.client.connected:
            async with self._connecting:
                if not self.client.connected and not await kept_cancel(self.client.connect()):
                    raise ConnectionError(f"cannot connect to {self.where}")
        return self.client

    async def reset(self) -> None:
        self.client.close()

    async def close(self) -> None:
        self.client.close()


def link(ctx: CheckContext, host: str, port: int, timeout_s: float) -> tuple[tuple[str, ...], ModbusLink]:
    key = ("modbus", host, str(port))
    return key, ctx.shared(key, lambda: ModbusLink(host, port, timeout_s), ModbusLink.close)


def exception_text(code: int) -> str:
    return f"Modbus exception {code} ({EXCEPTIONS.get(code, 'unknown code')})"


def describe(exc: BaseException, where: str) -> tuple[str, FailureType]:
    """pymodbus' exceptions, one line each, mapped onto failure types in one place."""
    from pymodbus.exceptions import ConnectionException, ModbusIOException

    if isinstance(exc, ConnectionError | ConnectionException | OSError):
        return f"cannot connect to {where}", FailureType.NETWORK_PARTITION
    if isinstance(exc, ModbusIOException):
        # No answer to a request over a live connection: usually a unit id nobody answers to.
        return f"no answer from {where} (wrong unit id, or the device is busy)", FailureType.NETWORK_PARTITION
    return f"{type(exc).__name__}: {exc}"[:300], FailureType.SERVICE_UNAVAILABLE


class _Modbus:
    def __init__(self, s: ModbusCheck, ctx: CheckContext, timeout_s: float) -> None:
        self._s = s
        self._ctx = ctx
        self._key, self._link = link(ctx, s.host, s.port, timeout_s)
        self._rule = s.rule()
        self._where = f"unit {s.unit} at {s.host}:{s.port}"
        bounds = "..".join("" if b is None else f"{b:g}" for b in (s.min, s.max)) if (
            s.min is not None or s.max is not None) else ""
        typed = f" ({s.data_type})" if s.table in ("holding", "input") and s.data_type != "uint16" else ""
        self._static = (("register", f"{s.table} {s.address}{typed}"),
                        ("unit", str(s.unit))) + ((("bounds", bounds),) if bounds else ())

    async def run(self, endpoint: str) -> CheckResult:
        from pymodbus.exceptions import ModbusIOException

        s = self._s
        start = time.perf_counter()
        client = await self._link.ready()
        try:
            if s.table == "holding":
                reply = await kept_cancel(client.read_holding_registers(s.address, count=_count(s), device_id=s.unit))
            elif s.table == "input":
                reply = await kept_cancel(client.read_input_registers(s.address, count=_count(s), device_id=s.unit))
            elif s.table == "coil":
                reply = await kept_cancel(client.read_coils(s.address, count=1, device_id=s.unit))
            else:
                reply = await kept_cancel(client.read_discrete_inputs(s.address, count=1, device_id=s.unit))
        except ModbusIOException:
            # The library waited its timeout for this request and got nothing: a device powered off
            # mid-connection leaves it half-open and every request would wait for nothing. Drop it,
            # so the next check connects afresh (and says "cannot connect"). Not on our own timeout
            # or a cancel: with a shared connection those hit requests queued behind a slow one.
            await self._link.reset()
            raise
        latency = (time.perf_counter() - start) * 1000.0
        if reply.isError():
            code = int(getattr(reply, "exception_code", 0))
            return unhealthy(latency, "modbus", f"{exception_text(code)} reading {s.table} {s.address} from "
                             f"{self._where}", detail=self._static)
        value = self._decode(client, reply)
        error, reboot = self._rule.judge(value)
        detail = (("value", _show(value)), *self._static)
        if error is not None:
            result = unhealthy(latency, "modbus", error, FailureType.DATA_CORRUPTION, value, detail)
        else:
            result = healthy(latency, "modbus", value, detail)
        if reboot is not None:
            result = replace(result, reboot=reboot)
        return result

    def _decode(self, client: Any, reply: Any) -> Value:
        s = self._s
        if s.table in ("coil", "discrete"):
            return bool(reply.bits[0])
        registers = list(reply.registers)
        if s.data_type == "uint16":
            raw: float = registers[0]
        elif s.data_type == "int16":
            raw = registers[0] - 65536 if registers[0] >= 32768 else registers[0]
        else:
            kind = {"uint32": client.DATATYPE.UINT32, "int32": client.DATATYPE.INT32,
                    "float32": client.DATATYPE.FLOAT32}[s.data_type]
            raw = client.convert_from_registers(registers, kind, word_order=s.word_order)
        value = raw * s.scale if s.scale != 1.0 else raw
        return float(value) if isinstance(value, float) and not float(value).is_integer() else int(value)

    def describe_error(self, exc: BaseException) -> tuple[str, FailureType]:
        return describe(exc, f"{self._s.host}:{self._s.port}")

    async def close(self) -> None:
        await self._ctx.release(self._key)


def _show(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)



def _make(settings: ModbusCheck, ctx: CheckContext, service: Any) -> _Modbus:
    return _Modbus(settings, ctx, _request_timeout(service))


def _request_timeout(service: Any) -> float:
    # A little under the service's timeout, so the library's own "no answer" (which names the unit)
    # arrives before execute()'s generic timeout.
    fd = getattr(service, "fault_detection", None)
    return max(0.1, 0.9 * float(getattr(fd, "timeout_seconds", 5.0)))


# ---------------------------------------------------------------- restart action

@dataclass(frozen=True, slots=True)
class ModbusWrite:
    host: str = opt("", "Address of the Modbus/TCP device (a PDU, a relay, the PLC itself).", required=True)
    port: int = opt(502, "TCP port.", min=1, max=65535)
    unit: int = opt(1, "Unit (slave) id.", min=0, max=255)
    table: Literal["coil", "holding"] = opt("coil", "Write a coil (true/false) or a holding register (0-65535).")
    address: int = opt(0, "Coil or register address (0-based).", required=True, min=0, max=65535)
    value: bool | int = opt(True, "What to write: true/false for a coil, an integer for a register.",
                            required=True)

    def problem(self) -> tuple[str, str] | None:
        if not self.host.strip():
            return "host", "must not be empty"
        if self.table == "coil" and not isinstance(self.value, bool) and self.value not in (0, 1):
            return "value", f"a coil takes true or false, got {self.value}"
        if self.table == "holding" and (isinstance(self.value, bool) or not 0 <= self.value <= 65535):
            return "value", f"a holding register takes an integer 0..65535, got {self.value}"
        return None


async def _write(s: ModbusWrite, ctx: CheckContext, timeout_s: float) -> tuple[bool, str]:
    key, shared = link(ctx, s.host, s.port, max(0.1, 0.9 * timeout_s))
    try:
        client = await shared.ready()
        if s.table == "coil":
            reply = await kept_cancel(client.write_coil(s.address, bool(s.value), device_id=s.unit))
        else:
            reply = await kept_cancel(client.write_register(s.address, int(s.value), device_id=s.unit))
        if reply.isError():
            return False, f"{exception_text(int(getattr(reply, 'exception_code', 0)))} writing {_what(s)}"
        return True, f"wrote {_what(s)}"
    except (asyncio.CancelledError, TimeoutError):
        raise
    except Exception as exc:  # noqa: BLE001 - a failed write is a result
        return False, describe(exc, f"{s.host}:{s.port}")[0]
    finally:
        await ctx.release(key)


def _what(s: ModbusWrite) -> str:
    shown = ("true" if s.value else "false") if s.table == "coil" else str(int(s.value))
    return f"{s.table} {s.address} = {shown} on unit {s.unit} at {s.host}:{s.port}"


def _describe_write(s: ModbusWrite) -> str:
    return f"modbus_write {_what(s)}"


CHECK = CheckType("modbus", ModbusCheck, _make,
                  "Reads one register, coil or discrete input over Modbus/TCP and judges its value; one "
                  "connection per host:port is shared by all its checks.")
RESTART = RestartType("modbus_write", ModbusWrite, _write, _describe_write,
                      "Writes a coil or holding register (a relay, a PDU outlet, a PLC's restart bit).")
