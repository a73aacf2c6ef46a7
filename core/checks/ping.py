"""Ping check: one ICMP echo request, the round trip as latency (switches, PDUs, anything with an IP).

The packets are icmplib's (a maintained library; no hand-made ICMP). Two socket kinds exist on Linux:
an unprivileged ICMP datagram socket, allowed when the process's group is inside
`net.ipv4.ping_group_range`, and a raw socket, which needs root or CAP_NET_RAW. The datagram socket is
tried first: the kernel matches replies to it, so each check opens its own. A raw socket sees every
ICMP packet the host receives, so one per check would copy each reply to every ping in flight (and a
rack with dead devices keeps many in flight, each waiting out its timeout); raw pings therefore share
one socket per address family (`RawIcmpChannel`, one per engine through the check context) that reads
each packet once and hands it to the check waiting for its sequence number. Where neither kind opens,
the check fails with the reason and `faultwatch --check-config` says so beforehand (`preflight()`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from core.checks.base import CheckContext, CheckResult, CheckType, healthy
from core.checks.tcp import describe_os_error, host_problem
from core.events import FailureType
from core.options import opt

# icmplib's own receive timeout (datagram path) is a backstop a little past the service's timeout:
# execute() normally cancels first and words the error the same way for every type. icmplib waits
# with asyncio.wait_for, which on Python 3.11 can swallow a cancellation; execute() re-raises it.
_BACKSTOP_S = 1.0
# ICMP types that are our own echo requests coming back on loopback (v4, v6), never an answer.
_ECHO_REQUESTS = (8, 128)


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


# Every reply of every ping in flight queues on the one shared socket (on loopback our own requests
# too): the default 208 KiB held 128 packets, so 300 pings at once lost replies. 4 MiB holds thousands.
_RECEIVE_BUFFER = 4 << 20
_SO_RCVBUFFORCE = 33  # Linux: may exceed net.core.rmem_max, with CAP_NET_ADMIN (root has it)


def _grow_receive_buffer(sock: socket.socket) -> None:
    for option in (getattr(socket, "SO_RCVBUFFORCE", _SO_RCVBUFFORCE), socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, _RECEIVE_BUFFER)
            return
        except OSError:  # not permitted, or not Linux: the next option, or the default size
            continue


class RawIcmpChannel:
    """One raw ICMP socket of one address family, shared by the ping checks of one engine.

    Each echo request gets the channel's id and a sequence number of its own; the socket is read once
    per packet (on the loop's reader callback) and the reply, or the ICMP error quoting the request,
    resolves the future of the check waiting for that sequence number.
    """

    def __init__(self, sock: Any) -> None:
        from icmplib.utils import unique_identifier

        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._id = int(unique_identifier())
        self._seq = 0
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        sock.blocking = False
        _grow_receive_buffer(sock.sock)
        self._fd = int(sock.sock.fileno())
        self._loop.add_reader(self._fd, self._on_readable)

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    async def echo(self, address: str) -> Any:
        """Send one echo request and wait (until cancelled) for its reply; the reply is icmplib's."""
        from icmplib import ICMPRequest

        seq = self._next_sequence()
        request = ICMPRequest(destination=address, id=self._id, sequence=seq)
        waiter: asyncio.Future[Any] = self._loop.create_future()
        self._waiting[seq] = waiter
        try:
            self._sock.send(request)  # a local refusal (no route, firewall) raises here, for this check
            return await waiter
        finally:
            del self._waiting[seq]

    def _next_sequence(self) -> int:
        for _ in range(0x10000):
            self._seq = (self._seq + 1) & 0xFFFF
            if self._seq not in self._waiting:
                return self._seq
        raise RuntimeError("65,536 pings in flight on one ICMP socket")  # pragma: no cover

    def _on_readable(self) -> None:
        sock = self._sock.sock
        for _ in range(256):  # bounded per wake-up: a flood of ICMP cannot hold the loop
            try:
                packet, source = sock.recvfrom(1024)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # nothing a check is waiting for; the next wake-up tries again
                return
            # icmplib's parser (pinned < 4): reads id and sequence from a reply, or from the request an
            # ICMP error quotes.
            reply = self._sock._parse_reply(packet=packet, source=source[0], current_time=time.time())
            if reply is None or reply.id != self._id or reply.type in _ECHO_REQUESTS:
                continue
            waiter = self._waiting.get(reply.sequence)
            if waiter is not None and not waiter.done():
                waiter.set_result(reply)

    async def close(self) -> None:
        self._loop.remove_reader(self._fd)
        for waiter in self._waiting.values():
            waiter.cancel()
        self._sock.close()


class _Ping:
    def __init__(self, settings: PingCheck, ctx: CheckContext, timeout_s: float) -> None:
        self._s = settings
        self._ctx = ctx
        self._receive_s = timeout_s + _BACKSTOP_S
        self._raw: bool | None = None  # which socket kind this process gets, learnt on first use
        self._channels: dict[bool, RawIcmpChannel] = {}

    def _channel(self, v6: bool) -> RawIcmpChannel:
        if v6 not in self._channels:
            key = ("icmp-raw", "6" if v6 else "4")

            def make() -> RawIcmpChannel:
                from icmplib import ICMPv4Socket, ICMPv6Socket

                return RawIcmpChannel((ICMPv6Socket if v6 else ICMPv4Socket)(privileged=True))

            self._channels[v6] = self._ctx.shared(key, make, RawIcmpChannel.close)
        return self._channels[v6]

    async def run(self, endpoint: str) -> CheckResult:
        from icmplib import async_resolve, is_hostname

        address = self._s.host
        if is_hostname(address):
            address = (await async_resolve(address))[0]
        v6 = _ipv6(address)
        if self._raw is None:
            sock, self._raw = open_icmp_socket(v6)
            sock.close()
        # perf_counter, not icmplib's own stamps: those are wall-clock time and jump with NTP.
        start = time.perf_counter()
        if self._raw:
            reply = await self._channel(v6).echo(address)
        else:
            reply = await self._own_socket_echo(address, v6)
        ms = (time.perf_counter() - start) * 1000.0
        reply.raise_for_status()
        return healthy(ms, "ping")

    async def _own_socket_echo(self, address: str, v6: bool) -> Any:
        """A datagram ICMP socket for this one echo: the kernel delivers only its own reply to it."""
        from icmplib import AsyncSocket, ICMPRequest
        from icmplib.utils import unique_identifier

        sock, _raw = open_icmp_socket(v6)
        with AsyncSocket(sock) as asock:
            request = ICMPRequest(destination=address, id=unique_identifier(), sequence=0)
            asock.send(request)
            return await asock.receive(request, self._receive_s)

    def describe_error(self, exc: BaseException) -> tuple[str, FailureType]:
        return describe_icmp_error(exc)

    async def close(self) -> None:
        for v6 in list(self._channels):
            del self._channels[v6]
            await self._ctx.release(("icmp-raw", "6" if v6 else "4"))


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
    return _Ping(settings, ctx, float(getattr(fd, "timeout_seconds", 5.0)))


CHECK = CheckType("ping", PingCheck, _make, "One ICMP echo request to host (latency: the round trip). Needs an "
                                            "unprivileged ICMP socket (net.ipv4.ping_group_range) or root / "
                                            "CAP_NET_RAW; `--check-config` says which is missing.")
