"""TLS check: a handshake with host:port and the days its certificate has left (web panels, brokers).

The certificate is read even when it cannot be verified: a self-signed or expired certificate must
give a clear state, not just "handshake failed". So the handshake is made as the service's TLS
settings ask (`tls_verify`, `ca_bundle`); when verification fails, a second handshake without
verification fetches the certificate, and the result reports both the verification failure and the
days left. Latency is the handshake time (TCP connect included).

Verdict: expired or fewer than `critical_days` left → unhealthy; fewer than `warn_days` → degraded
with "certificate expires in N days"; a certificate that does not verify → unhealthy.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from core.checks.base import CheckContext, CheckResult, CheckType
from core.checks.tcp import describe_os_error, host_problem
from core.events import FailureType, ServiceStatus
from core.options import opt


@dataclass(frozen=True, slots=True)
class TlsCheck:
    TYPE: ClassVar[str] = "tls"
    host: str = opt("", "Host name or address to connect to.", required=True)
    port: int = opt(443, "TCP port of the TLS service.", min=1, max=65535)
    server_name: str = opt("", "Name sent as SNI and verified against the certificate (default: host). "
                               "Verification follows the service's tls_verify and ca_bundle keys.")
    warn_days: float = opt(21.0, "Fewer days than this left on the certificate → degraded.", min=0)
    critical_days: float = opt(7.0, "Fewer days than this left (or expired) → unhealthy.", min=0)

    def target(self) -> str:
        where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        return f"tls {where}"

    def problem(self) -> tuple[str, str] | None:
        """A rule between keys, for the config loader: (key, what is wrong) or None."""
        found = host_problem(self.host)
        if found is not None:
            return found
        if self.server_name and host_problem(self.server_name, "server_name"):
            return host_problem(self.server_name, "server_name")
        if self.critical_days > self.warn_days:
            return "critical_days", (f"{self.critical_days:g} is greater than warn_days ({self.warn_days:g})")
        return None


@dataclass(frozen=True, slots=True)
class CertFacts:
    """What the check learnt about the peer certificate."""

    not_after: dt.datetime
    subject: str
    issuer: str


def cert_facts(der: bytes) -> CertFacts:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)

    def cn(name: x509.Name) -> str:
        attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs[0].value) if attrs else name.rfc4514_string()

    return CertFacts(cert.not_valid_after_utc, cn(cert.subject), cn(cert.issuer))


def _days_text(days: float) -> str:
    n = int(days)
    return f"{n} day" if n == 1 else f"{n} days"


class _Tls:
    def __init__(self, settings: TlsCheck, verify: bool, ca_bundle: str,
                 now: Callable[[], dt.datetime] | None = None) -> None:
        self._s = settings
        self._verify = verify
        self._ca_bundle = ca_bundle
        # Days left are a fact about the calendar, so wall time; injectable for tests.
        self._now = now or (lambda: dt.datetime.now(dt.timezone.utc))
        self._verifying: ssl.SSLContext | None = None
        self._plain: ssl.SSLContext | None = None

    def _contexts(self) -> tuple[ssl.SSLContext | None, ssl.SSLContext]:
        if self._plain is None:
            plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            plain.check_hostname = False
            plain.verify_mode = ssl.CERT_NONE
            if self._verify:
                # Raises (OSError, SSLError) for an unreadable bundle: a configuration error, per check.
                self._verifying = ssl.create_default_context(cafile=self._ca_bundle or None)
            self._plain = plain
        return self._verifying, self._plain

    async def _handshake(self, ctx: ssl.SSLContext) -> bytes:
        s = self._s
        _reader, writer = await asyncio.open_connection(s.host, s.port, ssl=ctx,
                                                        server_hostname=s.server_name or s.host)
        try:
            sslobj = writer.get_extra_info("ssl_object")
            der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
        finally:
            writer.transport.abort()  # no close_notify exchange to wait for
        if not der:
            raise ssl.SSLError("the server sent no certificate")
        return bytes(der)

    async def run(self, endpoint: str) -> CheckResult:
        s = self._s
        verifying, plain = self._contexts()
        not_trusted: str | None = None
        start = time.perf_counter()
        if verifying is not None:
            try:
                der = await self._handshake(verifying)
            except ssl.SSLCertVerificationError as exc:
                not_trusted = str(exc.verify_message or exc.reason or exc)
                start = time.perf_counter()
                der = await self._handshake(plain)
        else:
            der = await self._handshake(plain)
        ms = (time.perf_counter() - start) * 1000.0
        facts = cert_facts(der)
        days = (facts.not_after - self._now()).total_seconds() / 86400.0
        value = round(days, 2)
        detail = (("days left", str(int(days)) if days >= 0 else "expired"),
                  ("expires", facts.not_after.strftime("%Y-%m-%d %H:%M UTC")),
                  ("subject", facts.subject), ("issuer", facts.issuer),
                  ("verified", "no: " + not_trusted if not_trusted else ("yes" if self._verify else "not asked")))
        status, error = ServiceStatus.HEALTHY, None
        if days < 0:
            status, error = ServiceStatus.UNHEALTHY, f"certificate expired {_days_text(-days)} ago"
        elif not_trusted:
            status = ServiceStatus.UNHEALTHY
            error = f"certificate not trusted ({not_trusted}); expires in {_days_text(days)}"
        elif days < s.critical_days:
            status, error = ServiceStatus.UNHEALTHY, f"certificate expires in {_days_text(days)}"
        elif days < s.warn_days:
            status, error = ServiceStatus.DEGRADED, f"certificate expires in {_days_text(days)}"
        ftype = FailureType.CONFIGURATION_ERROR if status is ServiceStatus.UNHEALTHY else None
        return CheckResult(status, ms, error, failure_type=ftype, check="tls", value=value, detail=detail)

    def describe_error(self, exc: BaseException) -> tuple[str, FailureType]:
        return describe_tls_error(exc)

    async def close(self) -> None:
        return None


def describe_tls_error(exc: BaseException) -> tuple[str, FailureType]:
    """ssl's and cryptography's exceptions as one line and a failure type."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {exc.verify_message or exc}", FailureType.CONFIGURATION_ERROR
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or exc.strerror or str(exc)
        return f"TLS handshake failed: {str(reason).lower().replace('_', ' ')}", FailureType.CONFIGURATION_ERROR
    if isinstance(exc, FileNotFoundError) or (isinstance(exc, OSError) and exc.filename):
        return f"cannot load CA bundle: {exc.strerror or exc}", FailureType.CONFIGURATION_ERROR
    known = describe_os_error(exc)
    if known is not None:
        return known
    if isinstance(exc, ValueError):  # cryptography could not parse what the server sent
        return f"unreadable certificate: {exc}", FailureType.DATA_CORRUPTION
    return f"{type(exc).__name__}: {exc}", FailureType.SERVICE_UNAVAILABLE


def _make(settings: TlsCheck, ctx: CheckContext, service: Any) -> _Tls:
    return _Tls(settings, bool(getattr(service, "tls_verify", True)), str(getattr(service, "ca_bundle", "")))


CHECK = CheckType("tls", TlsCheck, _make, "A TLS handshake with host:port; value: days left on the certificate "
                                          "(read even when it does not verify). Verification uses the service's "
                                          "tls_verify and ca_bundle keys.")
