"""SNMP check (v2c GET of one OID, judged) and the `snmp_set` restart action (a PDU outlet cycle).

Every GET also asks for sysUpTime (1.3.6.1.2.1.1.3.0) in the same packet, so a device that rebooted
by itself since the last check is noticed whatever OID is watched. The community comes from the
environment variable named by `community_env` and never appears in an event, a log line or an error.
One pysnmp engine per check context serves all SNMP checks and sets.

pysnmp (7.x, the maintained one; not pysnmp-lextudio) is imported inside the functions that use it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

from core.checks.base import (CheckContext, CheckResult, CheckType, RestartType, Value, ValueConditions, healthy,
                              unhealthy)
from core.events import FailureType
from core.options import opt

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
_OID_RE = re.compile(r"\.?[0-2](\.\d{1,10}){1,127}\Z")
# sysUpTime is TimeTicks (1/100 s) in 32 bits: it wraps after 497 days. A drop from this close to the
# top is the wrap, not a reboot.
_WRAP_ZONE = 0xFFFFFFFF - 8_640_000  # one day below the top
_ENGINE_KEY = ("snmp", "engine")
_VALUE_TYPES = ("i", "u", "t", "a", "o", "s", "x")


def _oid_problem(oid: str) -> str | None:
    return None if _OID_RE.match(oid) else f"{oid!r} is not a numeric OID (like 1.3.6.1.2.1.1.3.0)"


@dataclass(frozen=True, slots=True)
class SnmpCheck(ValueConditions):
    TYPE: ClassVar[str] = "snmp"
    host: str = opt("", "Address of the SNMP agent.", required=True)
    port: int = opt(161, "UDP port.", min=1, max=65535)
    oid: str = opt(SYS_UPTIME, "Numeric OID to read (default sysUpTime: the agent answers at all).")
    community_env: str = opt("", "Environment variable holding the read community (v2c); empty: \"public\".",
                             secret_env=True)
    version: Literal["2c", "1"] = opt("2c", "SNMP version (community-based).")

    def target(self) -> str:
        return f"snmp {self.host}:{self.port} {self.oid}"

    def problem(self) -> tuple[str, str] | None:
        if not self.host.strip():
            return "host", "must not be empty"
        found = _oid_problem(self.oid)
        return ("oid", found) if found else None


def engine(ctx: CheckContext) -> Any:
    """The context's one SnmpEngine (made on first use; callers release `_ENGINE_KEY`)."""
    def make() -> Any:
        from pysnmp.hlapi.v3arch.asyncio import SnmpEngine
        return SnmpEngine()

    async def close(eng: Any) -> None:
        eng.close_dispatcher()

    return ctx.shared(_ENGINE_KEY, make, close)


def _community(ctx: CheckContext, env_name: str) -> str:
    if not env_name:
        return "public"
    value = ctx.secret(env_name)
    if value is None:
        # Names the variable, never a value.
        raise LookupError(f"environment variable {env_name} (the SNMP community) is not set")
    return value


async def _target(host: str, port: int, timeout_s: float) -> Any:
    from pysnmp.hlapi.v3arch.asyncio import UdpTransportTarget
    # No retry inside a check: pysnmp schedules retries on a coarse timer (measured: a 0.225 s try
    # plus one retry took 1.0-1.2 s), which would overrun the budget; the next check is the retry.
    return await UdpTransportTarget.create((host, port), timeout=max(0.05, 0.85 * timeout_s), retries=0)


def _plain(value: Any) -> Value | None:
    """An SNMP value as a number or text; None for noSuchObject and friends."""
    from pysnmp.proto import rfc1902, rfc1905

    if isinstance(value, (rfc1905.NoSuchObject, rfc1905.NoSuchInstance, rfc1905.EndOfMibView)):
        return None
    if isinstance(value, (rfc1902.Integer32, rfc1902.Integer, rfc1902.Counter32, rfc1902.Counter64,
                          rfc1902.Gauge32, rfc1902.TimeTicks, rfc1902.Unsigned32)):
        return int(value)
    if isinstance(value, rfc1902.OctetString) and not isinstance(value, rfc1902.IpAddress):
        raw = bytes(value)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + raw[:256].hex()
        return text[:1024]
    return str(value.prettyPrint())[:1024]


class _Snmp:
    def __init__(self, s: SnmpCheck, ctx: CheckContext, timeout_s: float) -> None:
        self._s = s
        self._ctx = ctx
        self._engine = engine(ctx)
        self._timeout = timeout_s
        self._target: Any = None
        self._rule = s.rule()
        self._uptime: int | None = None
        self._where = f"{s.host}:{s.port}"

    async def run(self, endpoint: str) -> CheckResult:
        from pysnmp.hlapi.v3arch.asyncio import CommunityData, ContextData, ObjectIdentity, ObjectType, get_cmd

        s = self._s
        community = _community(self._ctx, s.community_env)
        if self._target is None:
            self._target = await _target(s.host, s.port, self._timeout)
        oids = [s.oid] if s.oid.lstrip(".") == SYS_UPTIME else [s.oid, SYS_UPTIME]
        start = time.perf_counter()
        indication, status, index, binds = await get_cmd(
            self._engine, CommunityData(community, mpModel=1 if s.version == "2c" else 0), self._target,
            ContextData(), *(ObjectType(ObjectIdentity(o)) for o in oids), lookupMib=False)
        latency = (time.perf_counter() - start) * 1000.0
        if indication:
            return unhealthy(latency, "snmp", f"no answer from {self._where} within {0.85 * self._timeout:.2g} s "
                             "(agent down, or the community is wrong)", FailureType.NETWORK_PARTITION)
        if status:
            return unhealthy(latency, "snmp", f"SNMP error {status.prettyPrint()} for {s.oid} from {self._where}")
        values = {str(name): val for name, val in binds}
        value = _plain(values.get(s.oid.lstrip("."), binds[0][1] if binds else None))
        reboot = self._note_uptime(_plain(values.get(SYS_UPTIME)))
        if value is None:
            return replace(unhealthy(latency, "snmp", f"no such object {s.oid} at {self._where}",
                                     FailureType.CONFIGURATION_ERROR), reboot=reboot)
        error, counter_reboot = self._rule.judge(value)
        detail: tuple[tuple[str, str], ...] = (("OID", s.oid), ("value", str(value)))
        if self._uptime is not None:
            detail += (("uptime", _uptime_text(self._uptime)),)
        if error is not None:
            result = unhealthy(latency, "snmp", error, FailureType.DATA_CORRUPTION, value, detail)
        else:
            result = healthy(latency, "snmp", value, detail)
        return replace(result, reboot=reboot or counter_reboot)

    def _note_uptime(self, ticks: Value | None) -> str | None:
        if not isinstance(ticks, int) or isinstance(ticks, bool):
            return None
        prev, self._uptime = self._uptime, ticks
        if prev is not None and ticks < prev and prev < _WRAP_ZONE:
            return f"sysUpTime went back from {_uptime_text(prev)} to {_uptime_text(ticks)}"
        return None

    def describe_error(self, exc: BaseException) -> tuple[str, FailureType]:
        if isinstance(exc, LookupError):
            return str(exc), FailureType.CONFIGURATION_ERROR
        if isinstance(exc, OSError):
            return f"cannot reach {self._where}: {exc.strerror or exc}", FailureType.NETWORK_PARTITION
        # pysnmp's messages never contain the community (it is not part of any exception text).
        return f"{type(exc).__name__}: {exc}"[:300], FailureType.SERVICE_UNAVAILABLE

    async def close(self) -> None:
        await self._ctx.release(_ENGINE_KEY)


def _uptime_text(ticks: int) -> str:
    seconds = ticks // 100
    days, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    return (f"{days} d " if days else "") + f"{h:02d}:{m:02d}:{sec:02d}"



def _make(settings: SnmpCheck, ctx: CheckContext, service: Any) -> _Snmp:
    fd = getattr(service, "fault_detection", None)
    # A little under the service's timeout, so "no answer from ..." arrives before execute()'s timeout.
    return _Snmp(settings, ctx, max(0.1, 0.9 * float(getattr(fd, "timeout_seconds", 5.0))))


# ---------------------------------------------------------------- restart action

@dataclass(frozen=True, slots=True)
class SnmpSet:
    host: str = opt("", "Address of the SNMP agent (a PDU, a managed switch).", required=True)
    port: int = opt(161, "UDP port.", min=1, max=65535)
    oid: str = opt("", "Numeric OID to set (a PDU outlet's control object).", required=True)
    type: Literal["i", "u", "t", "a", "o", "s", "x"] = opt(
        "i", "Value type as net-snmp's snmpset spells it: i integer, u unsigned, t timeticks, a IP address, "
             "o OID, s string, x hex string.")
    value: int | str = opt(0, "The value to set (an outlet's \"reboot\" command, often 3).", required=True)
    community_env: str = opt("", "Environment variable holding the write community.", required=True,
                             secret_env=True)

    def problem(self) -> tuple[str, str] | None:
        if not self.host.strip():
            return "host", "must not be empty"
        found = _oid_problem(self.oid)
        if found:
            return "oid", found
        if not self.community_env:
            return "community_env", "must name an environment variable"
        numeric = self.type in ("i", "u", "t")
        if numeric and not isinstance(self.value, int):
            return "value", f"type {self.type!r} takes an integer, got {self.value!r}"
        if not numeric and not isinstance(self.value, str):
            return "value", f"type {self.type!r} takes a string, got {self.value!r}"
        if self.type == "o" and isinstance(self.value, str) and _oid_problem(self.value):
            return "value", f"{self.value!r} is not a numeric OID"
        if self.type == "x" and isinstance(self.value, str) and not re.fullmatch(
                r"([0-9A-Fa-f]{2})*", self.value.replace(" ", "").replace(":", "")):
            return "value", f"{self.value!r} is not hex bytes"
        return None


def _typed(s: SnmpSet) -> Any:
    from pysnmp.proto import rfc1902

    v = s.value
    if s.type == "i":
        return rfc1902.Integer32(int(v))
    if s.type == "u":
        return rfc1902.Gauge32(int(v))
    if s.type == "t":
        return rfc1902.TimeTicks(int(v))
    if s.type == "a":
        return rfc1902.IpAddress(str(v))
    if s.type == "o":
        return rfc1902.ObjectName(str(v).lstrip("."))
    if s.type == "x":
        return rfc1902.OctetString(hexValue=str(v).replace(" ", "").replace(":", ""))
    return rfc1902.OctetString(str(v))


async def _set(s: SnmpSet, ctx: CheckContext, timeout_s: float) -> tuple[bool, str]:
    from pysnmp.hlapi.v3arch.asyncio import CommunityData, ContextData, ObjectIdentity, ObjectType, set_cmd

    eng = engine(ctx)
    try:
        try:
            community = _community(ctx, s.community_env)
            value = _typed(s)
        except (LookupError, ValueError) as exc:
            return False, str(exc)[:300]
        # Less of the budget than a check's: an action often starts the context's engine, which
        # costs a tenth of a second or more before the first packet.
        target = await _target(s.host, s.port, max(0.1, 0.6 * timeout_s))
        indication, status, _, _ = await set_cmd(eng, CommunityData(community, mpModel=1), target, ContextData(),
                                                 ObjectType(ObjectIdentity(s.oid.lstrip(".")), value),
                                                 lookupMib=False)
        if indication:
            return False, (f"no answer from {s.host}:{s.port} (agent down, or the write community is wrong)")
        if status:
            return False, f"SNMP error {status.prettyPrint()} setting {s.oid} on {s.host}:{s.port}"
        return True, f"set {s.oid} = {s.value} ({s.type}) on {s.host}:{s.port}"
    except OSError as exc:
        return False, f"cannot reach {s.host}:{s.port}: {exc.strerror or exc}"
    finally:
        await ctx.release(_ENGINE_KEY)


def _describe_set(s: SnmpSet) -> str:
    return f"snmp_set {s.oid} = {s.value} ({s.type}) on {s.host}:{s.port}"


CHECK = CheckType("snmp", SnmpCheck, _make,
                  "Reads one OID over SNMP v2c and judges its value; sysUpTime going backwards is a reboot.")
RESTART = RestartType("snmp_set", SnmpSet, _set, _describe_set,
                      "Sets one OID over SNMP v2c: a PDU outlet's power-cycle command, a switch port reset.")
