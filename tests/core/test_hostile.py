"""Hostile devices against the real prober: every one gets a verdict, none gets the console.

Each test runs `Prober.check` over one shared `make_session()` session against a device that misbehaves
on real loopback sockets (the simulator, or a small dedicated server), and checks:

* the verdict: UNHEALTHY, with an error a technician can act on and the failure type recovery uses to
  choose a strategy ("right" is stated per test);
* no crash: `check` returns, it never raises;
* bounded memory where a device could make us buffer (peak RSS growth sampled by a thread);
* nothing left behind: no task besides the test's own, and no socket of this process to the device's
  port once the session is closed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import struct
import subprocess
import threading
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import aiohttp
import psutil  # type: ignore[import-untyped]
import pytest
from aiohttp import web

from core.events import FailureType, ServiceStatus
from core.probe import Prober, ProbeResult, make_session
from core.sim.devices import DeviceSpec
from core.sim.server import SimServer

pytestmark = pytest.mark.timeout(60)

CAP = 65536
PROC = psutil.Process()

# Peak RSS growth figures recorded by the tests, printed in the summary (pytest -s, or -rA).
RSS_FIGURES: dict[str, float] = {}


# ---------------------------------------------------------------- helpers

def _client_sockets_to(port: int) -> list[object]:
    return [c for c in PROC.net_connections(kind="tcp") if c.raddr and c.raddr.port == port]


async def _assert_clean(session: aiohttp.ClientSession, port: int) -> None:
    """Close the session; then no socket of ours to `port` and no task but the test's own remain."""
    await session.close()
    # The connector closes its transports on close(); the kernel may need a loop turn or two to
    # release the descriptors. A bounded wait, not a timing rule.
    for _ in range(200):
        if not _client_sockets_to(port):
            break
        await asyncio.sleep(0.01)
    assert _client_sockets_to(port) == [], "client sockets to the device outlived the session"


def _assert_no_tasks_left() -> None:
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert others == [], f"tasks left behind: {others}"


class RssSampler:
    """Samples this process's RSS from a thread (it keeps sampling while the event loop is busy)."""

    def __init__(self, every_s: float = 0.002) -> None:
        self._every = every_s
        self._stop = threading.Event()
        self.baseline = PROC.memory_info().rss
        self.peak = self.baseline
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, PROC.memory_info().rss)
            self._stop.wait(self._every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, PROC.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 1e6


async def _check(prober: Prober, url: str, *, timeout_s: float = 3.0, **kw: object) -> ProbeResult:
    return await prober.check(url, timeout_s=timeout_s, slow_ms=kw.pop("slow_ms", 2000.0),  # type: ignore[arg-type]
                              max_body_bytes=kw.pop("max_body_bytes", CAP), **kw)  # type: ignore[arg-type]


@pytest.fixture
async def sim() -> AsyncIterator[Callable[..., Awaitable[SimServer]]]:
    servers: list[SimServer] = []

    async def start(*specs: DeviceSpec) -> SimServer:
        server = SimServer(list(specs))
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


async def _sim_verdict(sim: Callable[..., Awaitable[SimServer]], behaviour: str, params: dict[str, float] | None = None,
                       *, timeout_s: float = 3.0, checks: int = 1) -> list[ProbeResult]:
    server = await sim(DeviceSpec("dev", behaviour, params or {}))
    session = make_session()
    prober = Prober(session)
    url = server.base_url("dev") + "/health"
    results = list(await asyncio.gather(*(_check(prober, url, timeout_s=timeout_s) for _ in range(checks))))
    await _assert_clean(session, server.port)
    await server.stop()
    _assert_no_tasks_left()
    return results


# ---------------------------------------------------------------- simulator behaviours

async def test_healthy_device_is_healthy_and_leaves_nothing(sim: Callable[..., Awaitable[SimServer]]) -> None:
    # The control: the same harness with a well-behaved device says HEALTHY.
    [result] = await _sim_verdict(sim, "healthy")
    assert result.status is ServiceStatus.HEALTHY and result.ok
    assert result.http_status == 200 and result.error is None and result.failure_type is None


async def test_garbage_body_is_data_corruption(sim: Callable[..., Awaitable[SimServer]]) -> None:
    # Right: the device answers 200, but with bytes that are not text -> UNHEALTHY, DATA_CORRUPTION
    # (restart is the strategy for a device that talks nonsense), never HEALTHY because of the 200.
    [result] = await _sim_verdict(sim, "garbage")
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.failure_type is FailureType.DATA_CORRUPTION
    assert result.http_status == 200
    assert result.error == "health body is not text"


async def test_50_mb_body_is_cut_off_with_bounded_memory(sim: Callable[..., Awaitable[SimServer]]) -> None:
    # Right: at most max_body_bytes are read, the connection is dropped (not drained), and the verdict
    # is UNHEALTHY / DATA_CORRUPTION "health body larger than ..." with HTTP 200 recorded.
    server = await sim(DeviceSpec("dev", "huge", {"size_bytes": 50_000_000}))
    session = make_session()
    prober = Prober(session)
    url = server.base_url("dev") + "/health"
    await _check(prober, server.base_url("dev").replace("/dev/dev", "/dev/nope") + "/health")  # warm the pool
    with RssSampler() as rss:
        results = await asyncio.gather(*(_check(prober, url, timeout_s=10.0) for _ in range(8)))
    RSS_FIGURES["50 MB body x 8 concurrent"] = rss.growth_mb
    print(f"\npeak RSS growth, 8 concurrent checks of a 50 MB body: {rss.growth_mb:.1f} MB")
    for result in results:
        assert result.status is ServiceStatus.UNHEALTHY
        assert result.failure_type is FailureType.DATA_CORRUPTION
        assert result.http_status == 200
        assert result.error == f"health body larger than {CAP} bytes"
    # 8 × 50 MB would be 400 MB if anything buffered the body; 8 × 64 KB is what we allow.
    assert rss.growth_mb < 30, f"peak RSS grew {rss.growth_mb:.1f} MB"
    # The device did not get to send its 50 MB: the connection was dropped early.
    assert server.device("dev").requests == 8
    await _assert_clean(session, server.port)
    await server.stop()
    _assert_no_tasks_left()


async def test_slowloris_is_a_timeout_not_a_wait_forever(sim: Callable[..., Awaitable[SimServer]]) -> None:
    # One byte every 0.2 s forever: each read succeeds, so only a total deadline stops it. Right:
    # UNHEALTHY, "timeout after 1 s", NETWORK_PARTITION (as for any device that does not answer in time).
    with RssSampler() as rss:
        [result] = await _sim_verdict(sim, "slowloris", {"interval_s": 0.2}, timeout_s=1.0)
    RSS_FIGURES["slowloris"] = rss.growth_mb
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == "timeout after 1 s"
    assert result.failure_type is FailureType.NETWORK_PARTITION
    assert rss.growth_mb < 30


async def test_connection_reset_before_response(sim: Callable[..., Awaitable[SimServer]]) -> None:
    # The device's TCP stack drops the request (RST, no status line). Right: UNHEALTHY,
    # SERVICE_UNAVAILABLE ("server disconnected") or NETWORK_PARTITION (a connection error): the host
    # is there but the service is not; either lets failover/restart act. Never HEALTHY, never a crash.
    [result] = await _sim_verdict(sim, "reset")
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.http_status is None
    assert result.failure_type in (FailureType.SERVICE_UNAVAILABLE, FailureType.NETWORK_PARTITION)
    assert result.error and ("disconnected" in result.error or "connection" in result.error)


@pytest.mark.parametrize(("behaviour", "status"), [("error500", 500), ("down", 503)])
async def test_5xx_storm(sim: Callable[..., Awaitable[SimServer]], behaviour: str, status: int) -> None:
    # 100 checks at once against a device answering 500/503. Right: every one UNHEALTHY "HTTP n",
    # SERVICE_UNAVAILABLE, with the status recorded; the pool is reused and released.
    with RssSampler() as rss:
        results = await _sim_verdict(sim, behaviour, checks=100)
    RSS_FIGURES[f"{status} storm x100"] = rss.growth_mb
    assert {(r.status, r.error, r.http_status, r.failure_type) for r in results} == {
        (ServiceStatus.UNHEALTHY, f"HTTP {status}", status, FailureType.SERVICE_UNAVAILABLE)}
    assert rss.growth_mb < 30


async def test_redirect_loop_is_a_configuration_error(sim: Callable[..., Awaitable[SimServer]]) -> None:
    # 302 to itself forever. Right: followed at most 3 times, then UNHEALTHY "too many redirects",
    # CONFIGURATION_ERROR (the health URL is wrong; restarting the device would not help).
    server = await sim(DeviceSpec("dev", "redirect_loop"))
    session = make_session()
    result = await _check(Prober(session), server.base_url("dev") + "/health")
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == "too many redirects"
    assert result.failure_type is FailureType.CONFIGURATION_ERROR
    assert 2 <= server.device("dev").requests <= 5, "redirects must be bounded"
    await _assert_clean(session, server.port)
    await server.stop()
    _assert_no_tasks_left()


async def test_hanging_device_times_out(sim: Callable[..., Awaitable[SimServer]]) -> None:
    # Accepts, reads the request, never answers. Right: UNHEALTHY "timeout after 0.5 s", NETWORK_PARTITION.
    [result] = await _sim_verdict(sim, "hanging", timeout_s=0.5)
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == "timeout after 0.5 s"
    assert result.failure_type is FailureType.NETWORK_PARTITION
    assert result.http_status is None


# ---------------------------------------------------------------- dedicated servers

async def _raw_server(handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
                      ) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _close_raw(server: asyncio.Server, writers: list[asyncio.StreamWriter]) -> None:
    for w in writers:
        w.transport.abort()
    server.close()
    await server.wait_closed()


async def test_accepts_and_never_answers() -> None:
    # A bare TCP listener that accepts and never sends a byte (not even reading the request).
    # Right: UNHEALTHY "timeout after 0.5 s", NETWORK_PARTITION; our socket goes with the session.
    writers: list[asyncio.StreamWriter] = []
    never = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await never.wait()

    server, port = await _raw_server(handle)
    session = make_session()
    result = await _check(Prober(session), f"http://127.0.0.1:{port}/health", timeout_s=0.5)
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == "timeout after 0.5 s"
    assert result.failure_type is FailureType.NETWORK_PARTITION
    await _assert_clean(session, port)
    never.set()
    await _close_raw(server, writers)
    await asyncio.sleep(0)
    _assert_no_tasks_left()


async def test_connection_reset_mid_body() -> None:
    # Status line and 22 of 1,000 announced bytes, then RST. Right: UNHEALTHY, no verdict from the
    # partial body, "response cut short", NETWORK_PARTITION: the same class as a reset before the
    # status line (a dying connection is a transport failure, not a device talking garbage, so
    # failover applies).
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                     b'{"status":"ok","pad":"')
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server, port = await _raw_server(handle)
    session = make_session()
    result = await _check(Prober(session), f"http://127.0.0.1:{port}/health")
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.failure_type is FailureType.NETWORK_PARTITION
    assert result.error and result.error.startswith("response cut short: ") and "22 of 1000" in result.error
    await _assert_clean(session, port)
    await _close_raw(server, writers)
    _assert_no_tasks_left()


@pytest.fixture
async def web_device() -> AsyncIterator[Callable[[web.Application], Awaitable[int]]]:
    runners: list[web.AppRunner] = []

    async def start(app: web.Application, ssl_context: ssl.SSLContext | None = None) -> int:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        runners.append(runner)
        return int(runner.addresses[0][1])

    yield start  # type: ignore[misc]
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize(("content_type", "body", "status", "ftype", "error"), [
    # Claims JSON, sends an HTML error page: DATA_CORRUPTION.
    ("application/json", b"<html><body>Gateway error</body></html>", ServiceStatus.UNHEALTHY,
     FailureType.DATA_CORRUPTION, "health body is not valid JSON"),
    # An image where a health document should be: not text at all.
    ("image/png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", ServiceStatus.UNHEALTHY,
     FailureType.DATA_CORRUPTION, "health body is not text"),
    # Mislabelled as HTML, but the body is a JSON document saying "down": the body is believed.
    ("text/html", b'{"status": "down"}', ServiceStatus.UNHEALTHY, FailureType.SERVICE_UNAVAILABLE,
     "device reports status 'down'"),
    # Plain text "OK" (many devices do this): healthy; a content type alone is not a fault.
    ("text/plain", b"OK", ServiceStatus.HEALTHY, None, None),
])
async def test_wrong_content_type(web_device: Callable[..., Awaitable[int]], content_type: str, body: bytes,
                                  status: ServiceStatus, ftype: FailureType | None, error: str | None) -> None:
    async def health(request: web.Request) -> web.Response:
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/health", health)
    port = await web_device(app)
    session = make_session()
    result = await _check(Prober(session), f"http://127.0.0.1:{port}/health")
    assert (result.status, result.failure_type, result.error) == (status, ftype, error)
    await _assert_clean(session, port)


async def test_name_that_does_not_resolve() -> None:
    # RFC 2606 reserves .invalid: it never resolves. Right: UNHEALTHY "name does not resolve: <host>",
    # CONFIGURATION_ERROR (a typo in the config; restarting anything will not help).
    session = make_session()
    result = await _check(Prober(session), "http://faultwatch-hostile-test.invalid/health", timeout_s=10.0)
    await session.close()
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == "name does not resolve: faultwatch-hostile-test.invalid"
    assert result.failure_type is FailureType.CONFIGURATION_ERROR
    _assert_no_tasks_left()


@pytest.fixture(scope="module")
def wrong_name_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl CLI is not installed (the stdlib cannot make certificates)")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    proc = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=wrong-name.example.invalid",
         "-addext", "subjectAltName=DNS:wrong-name.example.invalid"],
        capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {proc.stderr.strip()[:200]}")
    return cert, key


@pytest.mark.parametrize("trust", ["ca_bundle", "system"])
async def test_tls_certificate_for_another_name(web_device: Callable[..., Awaitable[int]],
                                                wrong_name_cert: tuple[Path, Path], trust: str) -> None:
    # An HTTPS device on 127.0.0.1 whose certificate names another host. Right: UNHEALTHY,
    # "TLS certificate rejected: ...", CONFIGURATION_ERROR, whether the cert is trusted through
    # ca_bundle (then the name is what fails) or not at all (system store). tls_verify=false is the
    # operator's explicit way out, and then the same device is healthy.
    cert, key = wrong_name_cert
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/health", health)
    port = await web_device(app, ctx)
    session = make_session()
    prober = Prober(session)
    url = f"https://127.0.0.1:{port}/health"
    ca = str(cert) if trust == "ca_bundle" else ""
    result = await _check(prober, url, tls_verify=True, ca_bundle=ca)
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.failure_type is FailureType.CONFIGURATION_ERROR
    assert result.error and result.error.startswith(("TLS certificate rejected", "TLS error"))
    if trust == "ca_bundle":
        assert "127.0.0.1" in result.error or "mismatch" in result.error.lower(), result.error
    unverified = await _check(prober, url, tls_verify=False)
    assert unverified.status is ServiceStatus.HEALTHY
    await _assert_clean(session, port)


async def test_unreadable_ca_bundle_is_a_verdict(tmp_path: Path) -> None:
    session = make_session()
    result = await _check(Prober(session), "https://127.0.0.1:9/health", ca_bundle=str(tmp_path / "missing.pem"))
    await session.close()
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.failure_type is FailureType.CONFIGURATION_ERROR
    assert result.error and result.error.startswith("cannot load CA bundle")


async def test_connection_refused(tmp_path: Path) -> None:
    # Nothing listening: right is UNHEALTHY "connection refused", SERVICE_UNAVAILABLE.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    session = make_session()
    result = await _check(Prober(session), f"http://127.0.0.1:{port}/health")
    await _assert_clean(session, port)
    assert (result.status, result.error, result.failure_type) == (
        ServiceStatus.UNHEALTHY, "connection refused", FailureType.SERVICE_UNAVAILABLE)


async def test_one_session_survives_every_hostile_device(sim: Callable[..., Awaitable[SimServer]]) -> None:
    # The engine has one session for everything: after a round of every hostile behaviour (some of
    # which end in dropped or cancelled connections), the same session still checks a healthy device.
    behaviours = [("garbage", {}), ("huge", {"size_bytes": 5_000_000}), ("slowloris", {"interval_s": 0.1}),
                  ("reset", {}), ("error500", {}), ("down", {}), ("redirect_loop", {}), ("hanging", {}),
                  ("flaky", {"p": 0.5, "seed": 3})]
    server = await sim(DeviceSpec("ok"), *(DeviceSpec(f"d-{b}", b, p) for b, p in behaviours))
    session = make_session()
    prober = Prober(session)
    with RssSampler() as rss:
        for _ in range(3):
            results = await asyncio.gather(*(
                _check(prober, server.base_url(f"d-{b}") + "/health", timeout_s=0.6) for b, _ in behaviours))
            assert all(r.status is ServiceStatus.UNHEALTHY for r, (b, _) in zip(results, behaviours) if b != "flaky")
            healthy = await _check(prober, server.base_url("ok") + "/health")
            assert healthy.status is ServiceStatus.HEALTHY
    RSS_FIGURES["every hostile device x3"] = rss.growth_mb
    assert rss.growth_mb < 30
    await _assert_clean(session, server.port)
    await server.stop()
    _assert_no_tasks_left()


def test_zz_report_rss_figures() -> None:
    """Not an assertion: prints the figures the tests above recorded (pytest -s -k report)."""
    for name, mb in RSS_FIGURES.items():
        print(f"peak RSS growth {name}: {mb:.1f} MB")
    if os.environ.get("FAULTWATCH_REQUIRE_RSS_FIGURES"):
        assert RSS_FIGURES
