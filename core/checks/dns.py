"""DNS check: one query to a named server, the answers compared with what is expected.

dnspython's asyncio query API sends exactly one question to exactly the server configured (UDP, TCP
when the answer is truncated) and hands back the response code. The stub resolver
(dns.asyncresolver) is not used: it retries other servers and folds SERVFAIL and REFUSED into one
"no nameservers" error, where a health check wants one query and the server's own answer.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from core.checks.base import CheckContext, CheckResult, CheckType, healthy, unhealthy
from core.checks.tcp import describe_os_error, host_problem
from core.events import FailureType
from core.options import opt

Record = Literal["A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT", "CAA"]
_NAMES = {"CNAME", "NS", "PTR"}  # records whose text is a domain name: compared without the final dot


@dataclass(frozen=True, slots=True)
class DnsCheck:
    TYPE: ClassVar[str] = "dns"
    server: str = opt("", "Address (or name) of the DNS server to ask.", required=True)
    name: str = opt("", "The name to look up.", required=True)
    record: Record = opt("A", "Record type asked for.")
    expect: tuple[str, ...] = opt((), "Each of these must be among the answers (empty: any answer will do).",
                                  factory=tuple)
    port: int = opt(53, "Port of the DNS server.", min=1, max=65535)

    def target(self) -> str:
        where = self.server if self.port == 53 else f"{self.server}:{self.port}"
        return f"dns {self.name} {self.record} @{where}"

    def problem(self) -> tuple[str, str] | None:
        return host_problem(self.server, "server") or host_problem(self.name, "name")


class DnsAnswerError(Exception):
    """The server answered with an error code (NXDOMAIN, SERVFAIL, REFUSED...)."""

    def __init__(self, message: str, failure_type: FailureType) -> None:
        super().__init__(message)
        self.failure_type = failure_type


def _normal(record: str, text: str) -> str:
    if record in _NAMES:
        return text.rstrip(".").lower()
    if record == "TXT" and text.startswith('"') and text.endswith('"'):
        return text[1:-1]
    return text


class _Dns:
    def __init__(self, settings: DnsCheck) -> None:
        self._s = settings
        self._expect = tuple(_normal(settings.record, e) for e in settings.expect)
        self._address: str | None = None

    async def _server_address(self) -> str:
        if self._address is None:
            try:
                ipaddress.ip_address(self._s.server)
                self._address = self._s.server
            except ValueError:
                import asyncio
                infos = await asyncio.get_running_loop().getaddrinfo(self._s.server, self._s.port,
                                                                     type=socket.SOCK_DGRAM)
                self._address = str(infos[0][4][0])
        return self._address

    async def run(self, endpoint: str) -> CheckResult:
        import dns.asyncquery
        import dns.message
        import dns.rcode
        import dns.rdatatype

        s = self._s
        where = await self._server_address()
        query = dns.message.make_query(s.name, s.record)
        start = time.perf_counter()
        response, _tcp = await dns.asyncquery.udp_with_fallback(query, where, port=s.port)
        ms = (time.perf_counter() - start) * 1000.0
        rcode = response.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            raise DnsAnswerError(f"{s.name} does not exist (NXDOMAIN)", FailureType.CONFIGURATION_ERROR)
        if rcode == dns.rcode.SERVFAIL:
            raise DnsAnswerError(f"server failed to answer for {s.name} (SERVFAIL)", FailureType.SERVICE_UNAVAILABLE)
        if rcode == dns.rcode.REFUSED:
            raise DnsAnswerError(f"server refused the query for {s.name} (REFUSED)", FailureType.CONFIGURATION_ERROR)
        if rcode != dns.rcode.NOERROR:
            raise DnsAnswerError(f"server answered {dns.rcode.to_text(rcode)} for {s.name}",
                                 FailureType.SERVICE_UNAVAILABLE)
        wanted = dns.rdatatype.from_text(s.record)
        answers = sorted({_normal(s.record, rd.to_text())
                          for rrset in response.answer if rrset.rdtype == wanted for rd in rrset})
        value = ", ".join(answers)
        detail = (("answers", value or "none"),)
        if not answers:
            return unhealthy(ms, "dns", f"no {s.record} record for {s.name}", FailureType.CONFIGURATION_ERROR,
                             detail=detail)
        missing = [e for e in self._expect if e not in answers]
        if missing:
            return unhealthy(ms, "dns", f"{s.name} {s.record} is {_short(value)}, expected {', '.join(missing)}",
                             FailureType.DATA_CORRUPTION, value=value, detail=detail)
        return healthy(ms, "dns", value=value, detail=detail)

    def describe_error(self, exc: BaseException) -> tuple[str, FailureType]:
        return describe_dns_error(exc)

    async def close(self) -> None:
        return None


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def describe_dns_error(exc: BaseException) -> tuple[str, FailureType]:
    """dnspython's exceptions (and the answer codes above) as one line and a failure type."""
    import dns.exception
    import dns.message
    import dns.name
    import dns.query

    if isinstance(exc, DnsAnswerError):
        return str(exc), exc.failure_type
    if isinstance(exc, dns.exception.Timeout):
        return "no answer from the DNS server", FailureType.NETWORK_PARTITION
    if isinstance(exc, ConnectionRefusedError):
        return "DNS server port closed (connection refused)", FailureType.SERVICE_UNAVAILABLE
    if isinstance(exc, (dns.query.BadResponse, dns.query.UnexpectedSource, dns.message.Truncated,
                        dns.exception.FormError)):
        return f"malformed DNS answer: {exc}", FailureType.DATA_CORRUPTION
    if isinstance(exc, (dns.name.LabelTooLong, dns.name.NameTooLong, dns.name.EmptyLabel)):
        return f"invalid name: {exc}", FailureType.CONFIGURATION_ERROR
    known = describe_os_error(exc, "ask the DNS server")
    if known is not None:
        return known
    if isinstance(exc, dns.exception.DNSException):
        return f"DNS error: {exc}", FailureType.SERVICE_UNAVAILABLE
    return f"{type(exc).__name__}: {exc}", FailureType.SERVICE_UNAVAILABLE


def _make(settings: DnsCheck, ctx: CheckContext, service: Any) -> _Dns:
    return _Dns(settings)


CHECK = CheckType("dns", DnsCheck, _make, "One DNS query to server (UDP, TCP if truncated); NXDOMAIN, SERVFAIL and "
                                          "REFUSED are failures, and the answers must include `expect`. Value: the "
                                          "answers, joined.")
