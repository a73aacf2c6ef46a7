"""tls checks against asyncio TLS servers on loopback with certificates the tests make:
valid, expiring in 3 days, inside the warning window, expired, self-signed, for another name."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from conftest import free_port

from core.checks.base import CheckContext, CheckResult, execute
from core.checks.tls import CHECK, TlsCheck
from core.events import FailureType, ServiceStatus


async def _run(port: int, ca_file: Path | None, *, verify: bool = True, server_name: str = "",
               host: str = "127.0.0.1", timeout_s: float = 3.0) -> CheckResult:
    service = SimpleNamespace(tls_verify=verify, ca_bundle=str(ca_file) if ca_file else "")
    check = CHECK.make(TlsCheck(host, port, server_name), CheckContext(), service)
    try:
        return await execute(check, "", check_type="tls", timeout_s=timeout_s, slow_ms=2000.0)
    finally:
        await check.close()


def _detail(result: CheckResult) -> dict[str, str]:
    return dict(result.detail)


async def test_valid_certificate_is_healthy_with_days_left(tls_server, certs) -> None:
    port = await tls_server(certs.ok)
    result = await _run(port, certs.ca_file)
    assert result.status is ServiceStatus.HEALTHY and result.check == "tls" and result.error is None
    assert isinstance(result.value, float) and 364 < result.value <= 365
    assert _detail(result)["days left"] == "364"
    assert _detail(result)["verified"] == "yes" and _detail(result)["subject"] == "panel ok"
    assert result.latency_ms > 0


async def test_server_name_is_sent_and_verified(tls_server, certs) -> None:
    port = await tls_server(certs.ok)
    assert (await _run(port, certs.ca_file, server_name="panel.test")).status is ServiceStatus.HEALTHY
    other = await _run(port, certs.ca_file, server_name="other.test")
    assert other.status is ServiceStatus.UNHEALTHY and other.failure_type is FailureType.CONFIGURATION_ERROR
    assert other.error is not None and other.error.startswith("certificate not trusted (Hostname mismatch")
    assert other.error.endswith("expires in 364 days")


async def test_three_days_left_is_critical(tls_server, certs) -> None:
    port = await tls_server(certs.soon)
    result = await _run(port, certs.ca_file)
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == "certificate expires in 3 days"
    assert result.failure_type is FailureType.CONFIGURATION_ERROR
    assert _detail(result)["days left"] == "3" and 3 < float(result.value) < 3.1  # type: ignore[arg-type]


async def test_inside_warning_window_is_degraded(tls_server, certs) -> None:
    port = await tls_server(certs.warn)
    result = await _run(port, certs.ca_file)
    assert result.status is ServiceStatus.DEGRADED and result.ok
    assert result.error == "certificate expires in 14 days" and result.failure_type is None


async def test_expired_certificate_is_unhealthy_and_says_since_when(tls_server, certs) -> None:
    port = await tls_server(certs.expired)
    result = await _run(port, certs.ca_file)
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == "certificate expired 2 days ago"
    assert _detail(result)["days left"] == "expired"
    assert _detail(result)["verified"] == "no: certificate has expired"
    assert float(result.value) < -2  # type: ignore[arg-type]
    # Without verification the dates still decide.
    unverified = await _run(port, None, verify=False)
    assert unverified.status is ServiceStatus.UNHEALTHY and unverified.error == "certificate expired 2 days ago"


async def test_self_signed_certificate_is_not_trusted_but_its_days_are_read(tls_server, certs) -> None:
    port = await tls_server(certs.self_signed)
    result = await _run(port, certs.ca_file)
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == "certificate not trusted (self-signed certificate); expires in 364 days"
    assert 364 < float(result.value) <= 365  # type: ignore[arg-type]
    # A panel known to be self-signed: tls_verify = false checks only the dates.
    relaxed = await _run(port, None, verify=False)
    assert relaxed.status is ServiceStatus.HEALTHY and _detail(relaxed)["verified"] == "not asked"


async def test_unknown_ca_without_the_bundle(tls_server, certs) -> None:
    port = await tls_server(certs.ok)
    result = await _run(port, None)  # the system's CAs do not know the test CA
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == "certificate not trusted (unable to get local issuer certificate); expires in 364 days"


async def test_unreadable_ca_bundle_is_a_configuration_error(tls_server, certs, tmp_path: Path) -> None:
    port = await tls_server(certs.ok)
    result = await _run(port, tmp_path / "missing.pem")
    assert result.status is ServiceStatus.UNHEALTHY and result.failure_type is FailureType.CONFIGURATION_ERROR
    assert result.error == "cannot load CA bundle: No such file or directory"


async def test_plain_tcp_server_is_a_handshake_failure(tcp_server) -> None:
    # The listener closes at once: the handshake ends early, whatever the TLS library calls it.
    port, _ = tcp_server
    result = await _run(port, None)
    assert result.status is ServiceStatus.UNHEALTHY and result.error is not None
    assert result.error in ("connection reset by the device", "connection closed by the device") \
        or result.error.startswith("TLS handshake failed")


async def test_server_that_speaks_http_not_tls() -> None:
    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await _run(port, None)
    finally:
        server.close()
        await server.wait_closed()
    assert result.status is ServiceStatus.UNHEALTHY and result.failure_type is FailureType.CONFIGURATION_ERROR
    assert result.error == "TLS handshake failed: wrong version number"


async def test_closed_port_is_refused() -> None:
    result = await _run(free_port(), None)
    assert result.status is ServiceStatus.UNHEALTHY and result.error == "connection refused"


async def test_silent_server_times_out_and_the_check_hangs_up() -> None:
    hung_up = asyncio.Event()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts, never answers the ClientHello, until the client goes away
        writer.close()
        hung_up.set()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await _run(port, None, timeout_s=0.3)
        # The timed-out check closed its connection: nothing is left half-open on the device.
        await asyncio.wait_for(hung_up.wait(), timeout=5)
    finally:
        server.close()
        await server.wait_closed()
    assert result.status is ServiceStatus.UNHEALTHY and result.error == "timeout after 0.3 s"
    assert result.failure_type is FailureType.NETWORK_PARTITION
