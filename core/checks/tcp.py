"""TCP check: can a connection to host:port be opened (a camera's RTSP port, a PLC's socket)?

The latency is the connect time; the connection is closed at once, nothing is sent. A refused
connection means the device is there but the service is not (service_unavailable); an unreachable
network or a connect that never completes means the path is broken (network_partition).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from core.checks.base import CheckContext, CheckResult, CheckType, healthy
from core.events import FailureType
from core.options import opt

# Errors about this machine, not the device: restarting the device would not help (and must not be
# tried for every device at once when Faultwatch itself runs out of file descriptors, or when a local
# firewall rule refuses to let the packet out: EPERM / EACCES).
_LOCAL = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.EPERM, errno.EACCES}


@dataclass(frozen=True, slots=True)
class TcpCheck:
    TYPE: ClassVar[str] = "tcp"
    host: str = opt("", "Host name or address to connect to.", required=True)
    port: int = opt(0, "TCP port.", min=1, max=65535, required=True)

    def target(self) -> str:
        return f"tcp {_hostport(self.host, self.port)}"

    def problem(self) -> tuple[str, str] | None:
        return host_problem(self.host)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def host_problem(host: str, key: str = "host") -> tuple[str, str] | None:
    """A host key the config loader should refuse: (key, why) or None. Shared by the network types."""
    if not host.strip():
        return key, "must not be empty"
    if any(c.isspace() or not c.isprintable() for c in host) or len(host) > 253:
        return key, f"{host[:60]!r} is not a host name or address"
    return None


def describe_os_error(exc: BaseException, what: str = "connect") -> tuple[str, FailureType] | None:
    """A socket-level failure as one line and a failure type (shared by tcp and tls)."""
    if isinstance(exc, socket.gaierror):
        return f"name does not resolve: {exc.strerror or exc}", FailureType.CONFIGURATION_ERROR
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused", FailureType.SERVICE_UNAVAILABLE
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError)):
        return "connection reset by the device", FailureType.SERVICE_UNAVAILABLE
    if isinstance(exc, asyncio.IncompleteReadError):
        return "connection closed by the device", FailureType.SERVICE_UNAVAILABLE
    if isinstance(exc, OSError):
        text = (exc.strerror or str(exc) or type(exc).__name__).lower()
        if exc.errno in _LOCAL:
            return f"cannot {what}: {text} (on this machine)", FailureType.CONFIGURATION_ERROR
        # Unreachable network or host, host down, a connect that timed out in the kernel: the path.
        return f"cannot {what}: {text}", FailureType.NETWORK_PARTITION
    return None


class _Tcp:
    def __init__(self, settings: TcpCheck) -> None:
        self._s = settings

    async def run(self, endpoint: str) -> CheckResult:
        start = time.perf_counter()
        _reader, writer = await asyncio.open_connection(self._s.host, self._s.port)
        ms = (time.perf_counter() - start) * 1000.0
        writer.transport.abort()  # no FIN handshake to wait for: the device learns nothing from it
        return healthy(ms, "tcp")

    def describe_error(self, exc: BaseException) -> tuple[str, FailureType]:
        known = describe_os_error(exc)
        return known if known is not None else (f"{type(exc).__name__}: {exc}", FailureType.SERVICE_UNAVAILABLE)

    async def close(self) -> None:
        return None


def _make(settings: TcpCheck, ctx: CheckContext, service: Any) -> _Tcp:
    return _Tcp(settings)


CHECK = CheckType("tcp", TcpCheck, _make, "A TCP connection to host:port opens (latency: connect time); "
                                          "nothing is sent.")
