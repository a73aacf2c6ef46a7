"""Ping check: one ICMP echo request, the round trip as latency (switches, PDUs, anything with an IP).

The packets are icmplib's (a maintained library; no hand-made ICMP). Two socket kinds exist on Linux:
an unprivileged ICMP datagram socket, allowed when the process's group is inside
`net.ipv4.ping_group_range`, and a raw socket, which needs root or CAP_NET_RAW. The datagram socket is
tried first (the kernel matches replies to it, so concurrent pings do not see each other's traffic),
the raw one second. Where neither opens, the check fails with the reason and `faultwatch
--check-config` says so beforehand through `preflight()`.
"""

from __future__ import annotations

import ipaddress
import os
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from core.checks.base import CheckContext, CheckResult, CheckType, healthy
from core.checks.tcp import describe_os_error, host_problem
from core.events import FailureType
from core.options import opt

# icmplib's own receive timeout is a backstop a little past the service's timeout (execute() normally
# cancels first and words the error the same way for every type). It matters because icmplib waits
# with asyncio.wait_for, which on Python 3.11 can swallow a cancellation that arrives together with a
# packet (raw sockets see every ICMP packet, so at fleet scale that happens) and then keeps waiting for
# its reply; execute() re-raises the swallowed cancellation once this returns.
_BACKSTOP_S = 1.0


@dataclass(frozen=True, slots=True)
class PingCheck:
    TYPE: ClassVar[str] = "ping"
    host: str = opt("", "Host name or address to send an ICMP echo request to.", required=True)

    def target(self) -> str:
        return f"ping {self.host}"

    def problem(self) -> tuple[str, str] | None:
        return host_problem(self.host)


class NoIcmpSocket(Exception):
    """Neither kind of ICMP socket can be opened by this process."""


def _ipv6(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).version == 6
    except ValueError:
        return False


def open_icmp_socket(v6: bool = False) -> tuple[Any, bool]:
    """An icmplib socket and whether it is the raw (privileged) kind; NoIcmpSocket with the reason."""
    from icmplib import ICMPv4Socket, ICMPv6Socket, SocketPermissionError

    kind = ICMPv6Socket if v6 else ICMPv4Socket
    try:
        return kind(privileged=False), False
    except SocketPermissionError:
        pass
    try:
        return kind(privileged=True), True
    except SocketPermissionError:
        raise NoIcmpSocket(_why_no_socket()) from None


def _why_no_socket() -> str:
    uid, gid = os.geteuid(), os.getegid()
    try:
        with open("/proc/sys/net/ipv4/ping_group_range", encoding="ascii") as f:
            low, high = f.read().split()
        allowed = f"net.ipv4.ping_group_range is '{low} {high}'"
    except (OSError, ValueError):
        allowed = "net.ipv4.ping_group_range is not readable"
    return (f"ping checks cannot open an ICMP socket (uid {uid}, gid {gid}; {allowed}): run as root, give "
            f"the Python binary CAP_NET_RAW, or allow the group with sysctl net.ipv4.ping_group_range=\"{gid} {gid}\"")


def preflight(settings: PingCheck) -> str | None:
    """For `faultwatch --check-config`: why ping checks cannot run here (None when they can)."""
    try:
        sock, _raw = open_icmp_socket(_ipv6(settings.host))
    except NoIcmpSocket as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - any other socket failure is reported, not raised
        return f"ping checks cannot open an ICMP socket: {exc}"
    sock.close()
    return None


class _Ping:
    def __init__(self, settings: PingCheck, timeout_s: float) -> None:
        self._s = settings
        self._receive_s = timeout_s + _BACKSTOP_S

    async def run(self, endpoint: str) -> CheckResult:
        from icmplib import AsyncSocket, ICMPRequest, async_resolve, is_hostname
        from icmplib.utils import unique_identifier

        address = self._s.host
        if is_hostname(address):
            address = (await async_resolve(address))[0]
        sock, _raw = open_icmp_socket(_ipv6(address))
        with AsyncSocket(sock) as asock:
            request = ICMPRequest(destination=address, id=unique_identifier(), sequence=0)
            # perf_counter, not icmplib's own stamps: those are wall-clock time and jump with NTP.
            start = time.perf_counter()
            asock.send(request)
            reply = await asock.receive(request, self._receive_s)
            ms = (time.perf_counter() - start) * 1000.0
            reply.raise_for_status()
        return healthy(ms, "ping")

    def describe_error(self, exc: BaseException) -> tuple[str, FailureType]:
        return describe_icmp_error(exc)

    async def close(self) -> None:
        return None


def describe_icmp_error(exc: BaseException) -> tuple[str, FailureType]:
    """icmplib's exceptions as one line and a failure type."""
    import icmplib

    if isinstance(exc, NoIcmpSocket):
        return str(exc), FailureType.CONFIGURATION_ERROR
    if isinstance(exc, icmplib.NameLookupError):
        return str(exc).replace("The name", "name"), FailureType.CONFIGURATION_ERROR
    if isinstance(exc, icmplib.DestinationUnreachable):
        return f"{str(exc).lower()} (ICMP)", FailureType.NETWORK_PARTITION
    if isinstance(exc, icmplib.TimeExceeded):
        return f"{str(exc).lower()} (ICMP; a routing loop?)", FailureType.NETWORK_PARTITION
    if isinstance(exc, icmplib.TimeoutExceeded):
        return "no echo reply", FailureType.NETWORK_PARTITION
    if isinstance(exc, icmplib.SocketPermissionError):
        return _why_no_socket(), FailureType.CONFIGURATION_ERROR
    if isinstance(exc, icmplib.ICMPSocketError):
        # icmplib re-raises an OSError as its own error inside the except block: the OSError is the context.
        cause = exc.__cause__ or exc.__context__
        known = describe_os_error(cause, "ping") if isinstance(cause, OSError) else None
        if known is not None:
            return known
        text = str(exc)
        text = text.split("] ", 1)[1] if text.startswith("[Errno") and "] " in text else text
        return f"cannot ping: {text.lower()}", FailureType.NETWORK_PARTITION
    known = describe_os_error(exc, "ping")
    if known is not None:
        return known
    return f"{type(exc).__name__}: {exc}", FailureType.SERVICE_UNAVAILABLE


def _make(settings: PingCheck, ctx: CheckContext, service: Any) -> _Ping:
    fd = getattr(service, "fault_detection", None)
    return _Ping(settings, float(getattr(fd, "timeout_seconds", 5.0)))


CHECK = CheckType("ping", PingCheck, _make, "One ICMP echo request to host (latency: the round trip). Needs an "
                                            "unprivileged ICMP socket (net.ipv4.ping_group_range) or root / "
                                            "CAP_NET_RAW; `--check-config` says which is missing.")
