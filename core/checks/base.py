"""Checks: one shape for every way of asking a device whether it is well.

The shape follows Prometheus' blackbox_exporter: every check type is one module under `core/checks/`
that declares its settings once (a frozen dataclass of `opt()` fields, validated by the config loader)
and a factory that makes a `Check` for one service. The engine, breaker, recovery and GUI never branch
on the type: they see a `CheckResult` (verdict, latency, value, error, failure type).

What is the same for every type lives here, so it is done once:
- `execute()` applies the service's timeout, measures latency, maps an escaped exception to a verdict
  and turns a slow success into "degraded";
- `ValueRule` judges a value read from a device (`min`, `max`, `equals`, `must_change`) and notices a
  counter that went backwards (the device rebooted);
- `CheckContext` holds what checks share: the engine's HTTP session, TLS contexts and one connection per
  broker or device (`shared()`), closed with the engine.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, ClassVar, Protocol, TypeVar

from core.events import FailureType, ServiceStatus
from core.options import opt
from core.logs import CHECK as log


Value = float | str | bool


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        latency_ms: time from the first byte sent to the answer (also for failures).
        failure_type: why it failed, for recovery's choice of strategy; None when it did not fail.
        check: the check type that produced it ("http", "tcp", ...).
        value: what the check read (a register, an OID, a message, days left), when it reads one.
        detail: extra facts for the detail panel, as (label, text) pairs ("days left", "12").
        reboot: set when the device restarted by itself since the last check (uptime or counter went
            backwards): the reason, for a `reboot` event.
    """

    status: ServiceStatus
    latency_ms: float
    error: str | None = None
    http_status: int | None = None
    failure_type: FailureType | None = None
    check: str = "http"
    value: Value | None = None
    detail: tuple[tuple[str, str], ...] = ()
    reboot: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (ServiceStatus.HEALTHY, ServiceStatus.DEGRADED)


def healthy(latency_ms: float, check: str, value: Value | None = None,
            detail: tuple[tuple[str, str], ...] = ()) -> CheckResult:
    return CheckResult(ServiceStatus.HEALTHY, latency_ms, check=check, value=value, detail=detail)


def unhealthy(latency_ms: float, check: str, error: str,
              failure_type: FailureType = FailureType.SERVICE_UNAVAILABLE, value: Value | None = None,
              detail: tuple[tuple[str, str], ...] = ()) -> CheckResult:
    return CheckResult(ServiceStatus.UNHEALTHY, latency_ms, error, failure_type=failure_type, check=check,
                       value=value, detail=detail)


class Check(Protocol):
    """One service's check. Made by its type's factory; lives as long as the service's settings."""

    async def run(self, endpoint: str) -> CheckResult:
        """Ask the device once. `endpoint` is the service's active http endpoint (http checks only).

        Raises nothing but CancelledError in the normal case; `execute()` turns anything else into a
        verdict through `describe_error`.
        """
        ...

    def describe_error(self, exc: BaseException) -> tuple[str, FailureType]:
        """The protocol library's exception as one line and a failure type."""
        ...

    async def close(self) -> None:
        """Release what this check alone holds (shared connections are the context's)."""
        ...


S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class CheckType:
    """A check type: its name (the `type` key), its declared settings and its factory.

    The factory gets the type's settings, the shared context and the whole service config (http
    checks need its endpoint settings; others may name the service in a log line).
    """

    name: str
    settings: type
    make: Callable[[Any, "CheckContext", Any], Check]
    doc: str


@dataclass(frozen=True, slots=True)
class RestartType:
    """A restart action a protocol module offers (`restart = { snmp_set = {...} }`)."""

    name: str
    settings: type
    run: Callable[[Any, "CheckContext", float], Awaitable[tuple[bool, str]]]
    describe: Callable[[Any], str]
    doc: str


class CheckContext:
    """What checks share, owned by the engine: HTTP session, TLS contexts, shared connections.

    Attributes:
        session: the engine's one aiohttp session (typed loosely so this module stays import-light).
        environ: where `*_env` secrets are read from (os.environ in production).
    """

    def __init__(self, session: Any = None, environ: dict[str, str] | None = None) -> None:
        import os

        self.session = session
        self.environ: dict[str, str] = environ if environ is not None else dict(os.environ)
        self._shared: dict[tuple[str, ...], Any] = {}
        self._closers: dict[tuple[str, ...], Callable[[Any], Awaitable[None]]] = {}
        self._users: dict[tuple[str, ...], int] = {}

    def shared(self, key: tuple[str, ...], factory: Callable[[], S],
               close: Callable[[S], Awaitable[None]]) -> S:
        """One connection per key (a broker, a PLC), made on first use and counted per user."""
        if key not in self._shared:
            self._shared[key] = factory()
            self._closers[key] = close
            self._users[key] = 0
        self._users[key] += 1
        return self._shared[key]  # type: ignore[no-any-return]

    async def release(self, key: tuple[str, ...]) -> None:
        """A user of a shared connection went away; the last one closes it."""
        if key not in self._users:
            return
        self._users[key] -= 1
        if self._users[key] <= 0:
            obj = self._shared.pop(key)
            closer = self._closers.pop(key)
            del self._users[key]
            try:
                await closer(obj)
            except Exception:  # noqa: BLE001 - closing a dead connection must not stop a reload
                log.debug("closing shared connection %s failed", key, exc_info=True)

    def secret(self, env_name: str) -> str | None:
        """A secret named by a `*_env` key; the value never appears in an event or a log."""
        return self.environ.get(env_name) if env_name else None

    async def close(self) -> None:
        for key in list(self._shared):
            self._users[key] = 1
            await self.release(key)

    def holds(self) -> list[tuple[str, ...]]:
        return list(self._shared)


async def execute(check: Check, endpoint: str, *, check_type: str, timeout_s: float,
                  slow_ms: float) -> CheckResult:
    """Run one check the same way for every type: timeout, latency, exceptions, slow → degraded."""
    # perf_counter, not the engine clock: latency is a measurement of real I/O, not a timing rule.
    start = time.perf_counter()
    task = asyncio.current_task()
    cancelling = task.cancelling() if task is not None else 0
    try:
        async with asyncio.timeout(timeout_s):
            try:
                result = await check.run(endpoint)
            finally:
                if task is not None and task.cancelling() > cancelling:
                    # The library swallowed our cancellation (asyncio.wait_for on Python 3.11 does when
                    # the awaited thing finishes at that moment) and returned or failed otherwise: honour
                    # it, or a stopping engine waits for this monitor forever.
                    raise asyncio.CancelledError
    except TimeoutError:
        return unhealthy((time.perf_counter() - start) * 1000.0, check_type, f"timeout after {timeout_s:g} s",
                         FailureType.NETWORK_PARTITION)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of a device is a verdict, never a crash
        message, ftype = check.describe_error(exc)
        return unhealthy((time.perf_counter() - start) * 1000.0, check_type, message, ftype)
    if result.status is ServiceStatus.HEALTHY and result.latency_ms > slow_ms:
        return CheckResult(ServiceStatus.DEGRADED, result.latency_ms,
                           f"slow: {result.latency_ms:.0f} ms > {slow_ms:g} ms", result.http_status, None,
                           result.check, result.value, result.detail, result.reboot)
    return result


# ---------------------------------------------------------------- values read from devices

@dataclass(slots=True)
class ValueRule:
    """Judges values read from a device: bounds, an expected value, a counter that must move.

    Attributes:
        previous: the last value seen (must_change and reboot detection compare against it).
    """

    min: float | None = None
    max: float | None = None
    equals: Value | None = None
    must_change: bool = False
    previous: Value | None = field(default=None)
    _seen: bool = field(default=False)

    ANY: ClassVar[str] = "any"

    def judge(self, value: Value) -> tuple[str | None, str | None]:
        """(error, reboot): error is None when the value is acceptable; reboot when a counter went back."""
        prev, seen = self.previous, self._seen
        self.previous, self._seen = value, True
        reboot = None
        number = _as_number(value)
        prev_number = _as_number(prev) if seen and prev is not None else None
        if self.must_change and number is not None and prev_number is not None and number < prev_number:
            reboot = f"counter went back from {_show(prev)} to {_show(value)}"
        if self.equals is not None and not _equal(value, self.equals):
            return f"value {_show(value)} is not {_show(self.equals)}", reboot
        if self.min is not None or self.max is not None:
            if number is None:
                return f"value {_show(value)} is not a number", reboot
            if self.min is not None and number < self.min:
                return f"value {_show(value)} below min {_show(self.min)}", reboot
            if self.max is not None and number > self.max:
                return f"value {_show(value)} above max {_show(self.max)}", reboot
        if self.must_change and seen and prev == value:
            return f"value {_show(value)} stopped changing", reboot
        return None, reboot


def _as_number(value: Value | None) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        return None


def _equal(value: Value, expected: Value) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return str(value).lower() == str(expected).lower()
    a, b = _as_number(value), _as_number(expected)
    if a is not None and b is not None:
        return a == b
    return str(value) == str(expected)


def _show(value: Value | None) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True, slots=True)
class ValueConditions:
    """The value conditions every value-reading check type offers (declared once, here)."""

    min: float | None = opt(None, "The value must be at least this (out of range → unhealthy).")
    max: float | None = opt(None, "The value must be at most this.")
    equals: Value | None = opt(None, "The value must equal this (number, string or boolean).")
    must_change: bool = opt(False, "The value must change between checks (a counter or heartbeat "
                                   "register that stops is a fault; one that goes back is a reboot).")

    def rule(self) -> ValueRule:
        return ValueRule(self.min, self.max, self.equals, self.must_change)
