"""OPC UA check: one node's value read from a server, judged; a server restart is a reboot.

One client session per server URL is shared by all nodes watched on it. Each check reads its node and
the server's StartTime (i=2257) in one request, so a server that restarted by itself since the last
check is noticed. A dropped session is opened again by the next check.

asyncua is imported inside the functions that talk to a server.
"""

from __future__ import annotations

import asyncio
import enum
import re
import time
from dataclasses import dataclass, replace
from typing import Any, ClassVar
from urllib.parse import urlsplit

from core.checks.aio import kept_cancel
from core.checks.base import CheckContext, CheckResult, CheckType, Value, ValueConditions, healthy, unhealthy
from core.events import FailureType
from core.options import opt

START_TIME = "i=2257"  # Server.ServerStatus.StartTime
_NODE_RE = re.compile(r"(ns=\d{1,5};)?(i=\d{1,10}|s=.{1,4096}|g=[0-9A-Fa-f-]{36}|b=[A-Za-z0-9+/=]{1,4096})\Z",
                      re.DOTALL)


@dataclass(frozen=True, slots=True)
class OpcuaCheck(ValueConditions):
    TYPE: ClassVar[str] = "opcua"
    url: str = opt("", "Server endpoint: opc.tcp://host:4840[/path].", required=True)
    node: str = opt("i=2259", "Node id to read (default i=2259, the server's state: 0 is running).")

    def target(self) -> str:
        return f"opcua {self.url} {self.node}"

    def problem(self) -> tuple[str, str] | None:
        try:
            parts = urlsplit(self.url)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            return "url", f"{self.url!r} is not a valid URL"
        if parts.scheme != "opc.tcp" or not parts.hostname:
            return "url", f"{self.url!r} is not opc.tcp://host[:port][/path]"
        if not _NODE_RE.match(self.node):
            return "node", f"{self.node!r} is not a node id (like i=2259 or ns=2;s=Line1.Temperature)"
        return None


class OpcuaLink:
    """One client session to one server, shared by the checks of all its nodes."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self._timeout = timeout_s
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def ready(self) -> Any:
        async with self._lock:
            if self._client is None:
                from asyncua import Client

                client = Client(self.url, timeout=self._timeout)
                try:
                    await kept_cancel(client.connect())
                except BaseException:
                    await _quietly(client.disconnect())
                    raise
                self._client = client
            return self._client

    async def broken(self) -> None:
        """The session failed a request: drop it so the next check connects again."""
        client, self._client = self._client, None
        if client is not None:
            await _quietly(client.disconnect())

    async def close(self) -> None:
        await self.broken()


async def _quietly(coro: Any) -> None:
    try:
        async with asyncio.timeout(2.0):
            await coro
    except Exception:  # noqa: BLE001 - closing what is already broken
        pass


def plain(value: Any) -> Value:
    """An OPC UA value as a number, boolean or text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, enum.IntEnum):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    text = getattr(value, "Text", None)  # LocalizedText
    return str(text if text is not None else value)[:1024]


class _Opcua:
    def __init__(self, s: OpcuaCheck, ctx: CheckContext, timeout_s: float) -> None:
        self._s = s
        self._ctx = ctx
        self._key = ("opcua", s.url)
        self._link: OpcuaLink = ctx.shared(self._key, lambda: OpcuaLink(s.url, timeout_s), OpcuaLink.close)
        self._rule = s.rule()
        self._started: str | None = None

    async def run(self, endpoint: str) -> CheckResult:
        from asyncua import ua

        s = self._s
        start = time.perf_counter()
        client = await self._link.ready()
        try:
            nodes = [client.get_node(s.node), client.get_node(START_TIME)]
            results = await kept_cancel(client.read_attributes(nodes, attr=ua.AttributeIds.Value))
        except (asyncio.CancelledError, TimeoutError):
            await self._link.broken()
            raise
        except (ConnectionError, OSError, ua.UaError):
            await self._link.broken()
            raise
        latency = (time.perf_counter() - start) * 1000.0
        reboot = self._note_start(results[1])
        status = results[0].StatusCode
        detail: tuple[tuple[str, str], ...] = (("node", s.node),)
        if not status.is_good():
            result = unhealthy(latency, "opcua", f"OPC UA {status.name} reading {s.node} from {s.url}",
                               FailureType.CONFIGURATION_ERROR if "NodeId" in status.name
                               else FailureType.SERVICE_UNAVAILABLE, detail=detail)
            return replace(result, reboot=reboot)
        value = plain(results[0].Value.Value if results[0].Value is not None else None)
        error, counter_reboot = self._rule.judge(value)
        detail = (("value", str(value)[:80]),) + detail
        if self._started:
            detail += (("server started", self._started),)
        if error is not None:
            result = unhealthy(latency, "opcua", error, FailureType.DATA_CORRUPTION, value, detail)
        else:
            result = healthy(latency, "opcua", value, detail)
        return replace(result, reboot=reboot or counter_reboot)

    def _note_start(self, data: Any) -> str | None:
        if not data.StatusCode.is_good() or data.Value is None or data.Value.Value is None:
            return None
        started = str(data.Value.Value)[:40]
        prev, self._started = self._started, started
        if prev is not None and started != prev:
            return f"server start time changed from {prev} to {started}"
        return None

    def describe_error(self, exc: BaseException) -> tuple[str, FailureType]:
        from asyncua import ua

        where = urlsplit(self._s.url).netloc
        if isinstance(exc, (ConnectionError, OSError)):
            return f"cannot connect to {where}: {getattr(exc, 'strerror', None) or exc}"[:300], \
                FailureType.NETWORK_PARTITION
        if isinstance(exc, ua.UaStatusCodeError):
            return f"OPC UA {type(exc).__name__} from {where}", FailureType.SERVICE_UNAVAILABLE
        return f"{type(exc).__name__}: {exc}"[:300], FailureType.SERVICE_UNAVAILABLE

    async def close(self) -> None:
        await self._ctx.release(self._key)



def _make(settings: OpcuaCheck, ctx: CheckContext, service: Any) -> _Opcua:
    fd = getattr(service, "fault_detection", None)
    return _Opcua(settings, ctx, max(0.1, 0.9 * float(getattr(fd, "timeout_seconds", 5.0))))


CHECK = CheckType("opcua", OpcuaCheck, _make,
                  "Reads one node's value from an OPC UA server (one session per URL) and judges it; a changed "
                  "server start time is a reboot.")
