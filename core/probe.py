"""Probe: one HTTP health check and its verdict.

One shared aiohttp session for every check (connection pool, keep-alive); the seed made a client per
check. aiohttp rather than httpx: measured in bench/throughput.py (docs/benchmarks.md), httpx's
default transport slows down as concurrency grows and even its aiohttp transport reaches about a third
of plain aiohttp. The verdict reads status, time and (a capped amount of) body, and classifies a failure
into a FailureType so recovery can pick a strategy.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from typing import Any, Sequence

import aiohttp
import yarl
from aiohttp.http_exceptions import ContentLengthError

from core.checks.base import CheckResult
from core.events import FailureType, ServiceStatus
from core.logs import CHECK as log


_UNHEALTHY_WORDS = {"down", "fail", "failed", "failing", "error", "unhealthy", "critical"}
_DEGRADED_WORDS = {"degraded", "warn", "warning"}


KEEPALIVE_S = 60.0

# One result value for every check type; the name stays for the HTTP prober's callers.
ProbeResult = CheckResult


def make_session(limit: int = 512, limit_per_host: int = 0) -> aiohttp.ClientSession:
    """The engine's one HTTP client. Pool size from bench/throughput.py (see README)."""
    # keepalive 60 s, not aiohttp's 15 s: at the default 30 s interval (and 20 s on battery) every check
    # otherwise opened a new TCP connection, the largest cost per check (docs/benchmarks.md).
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit_per_host, ttl_dns_cache=300,
                                     enable_cleanup_closed=True, keepalive_timeout=KEEPALIVE_S)
    # No session-wide timeout: each call carries its own, per-service.
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None),
                                 headers={"User-Agent": "faultwatch"}, auto_decompress=True)


class TlsContexts:
    """SSL settings per (verify, CA bundle), built once: creating a context costs milliseconds."""

    def __init__(self) -> None:
        self._cache: dict[tuple[bool, str], ssl.SSLContext | bool] = {}

    def get(self, verify: bool, ca_bundle: str) -> ssl.SSLContext | bool:
        key = (verify, ca_bundle)
        if key not in self._cache:
            if not verify:
                self._cache[key] = False
            elif ca_bundle:
                self._cache[key] = ssl.create_default_context(cafile=ca_bundle)
            else:
                self._cache[key] = True
        return self._cache[key]


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> tuple[bytes, bool]:
    """Read at most `cap` bytes; True in the second place if there was more."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await resp.content.read(min(65536, cap + 1 - size))
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            return b"".join(chunks)[:cap], True


def judge_body(body: bytes, content_type: str) -> tuple[ServiceStatus, str | None, FailureType | None]:
    """A 2xx answer is healthy unless its body says otherwise or is unreadable.

    JSON bodies with a "status" word are believed ("degraded", "down"...); a body that claims JSON but
    does not parse, or is not text at all, is data corruption: the device answers, but with garbage.
    """
    if not body:
        return ServiceStatus.HEALTHY, None, None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return ServiceStatus.UNHEALTHY, "health body is not text", FailureType.DATA_CORRUPTION
    looks_json = "json" in content_type or text.lstrip()[:1] in ("{", "[")
    if not looks_json:
        return ServiceStatus.HEALTHY, None, None
    try:
        doc = json.loads(text)
    except ValueError:
        return ServiceStatus.UNHEALTHY, "health body is not valid JSON", FailureType.DATA_CORRUPTION
    if isinstance(doc, dict):
        word = str(doc.get("status", "")).strip().lower()
        if word in _UNHEALTHY_WORDS:
            return ServiceStatus.UNHEALTHY, f"device reports status '{word}'", FailureType.SERVICE_UNAVAILABLE
        if word in _DEGRADED_WORDS:
            return ServiceStatus.DEGRADED, f"device reports status '{word}'", None
    return ServiceStatus.HEALTHY, None, None


def judge_expectations(body: bytes, ms: float, http_status: int, body_contains: str, json_path: str,
                       json_equals: Any) -> ProbeResult:
    """A check that names what the body must hold: a substring, or a value at a JSON path."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return ProbeResult(ServiceStatus.UNHEALTHY, ms, "health body is not text", http_status,
                           FailureType.DATA_CORRUPTION)
    if body_contains and body_contains not in text:
        return ProbeResult(ServiceStatus.UNHEALTHY, ms, f"body does not contain {body_contains!r}", http_status,
                           FailureType.SERVICE_UNAVAILABLE)
    if not json_path:
        return ProbeResult(ServiceStatus.HEALTHY, ms, None, http_status)
    try:
        node: Any = json.loads(text)
    except ValueError:
        return ProbeResult(ServiceStatus.UNHEALTHY, ms, "health body is not valid JSON", http_status,
                           FailureType.DATA_CORRUPTION)
    for part in json_path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return ProbeResult(ServiceStatus.UNHEALTHY, ms, f"no {json_path!r} in the body", http_status,
                               FailureType.DATA_CORRUPTION)
    value = node if isinstance(node, (int, float, str, bool)) else json.dumps(node)[:200]
    if json_equals is not None and str(value).lower() != str(json_equals).lower():
        return ProbeResult(ServiceStatus.UNHEALTHY, ms, f"{json_path} is {value!r}, expected {json_equals!r}",
                           http_status, FailureType.SERVICE_UNAVAILABLE, value=value)
    return ProbeResult(ServiceStatus.HEALTHY, ms, None, http_status, value=value)


def classify_http(status: int) -> FailureType:
    if status in (429, 507, 509):
        return FailureType.RESOURCE_EXHAUSTION
    if status in (401, 403, 404, 405, 421):
        return FailureType.CONFIGURATION_ERROR
    return FailureType.SERVICE_UNAVAILABLE


def _describe_exception(exc: BaseException) -> tuple[str, FailureType]:
    if isinstance(exc, aiohttp.TooManyRedirects):
        return "too many redirects", FailureType.CONFIGURATION_ERROR
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate rejected: {exc.certificate_error}", FailureType.CONFIGURATION_ERROR
    if isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)):
        return f"TLS error: {exc}", FailureType.CONFIGURATION_ERROR
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"name does not resolve: {exc.host}", FailureType.CONFIGURATION_ERROR
    if isinstance(exc, aiohttp.ClientConnectorError):
        errno = getattr(exc.os_error, "errno", None)
        if errno == 111:  # ECONNREFUSED: host up, nothing listening
            return "connection refused", FailureType.SERVICE_UNAVAILABLE
        return f"cannot connect: {exc.os_error}", FailureType.NETWORK_PARTITION
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected", FailureType.SERVICE_UNAVAILABLE
    if isinstance(exc, aiohttp.ClientPayloadError) and isinstance(exc.__cause__, ContentLengthError):
        # Fewer bytes than Content-Length announced: the connection died mid-response (a reset, a
        # crash), a transport failure like a reset before the status line, not a corrupt answer.
        return f"response cut short: {exc.__cause__.message}", FailureType.NETWORK_PARTITION
    if isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ClientResponseError)):
        return f"bad response: {exc}", FailureType.DATA_CORRUPTION
    if isinstance(exc, aiohttp.ClientOSError):
        return f"connection error: {exc.strerror or exc}", FailureType.NETWORK_PARTITION
    if isinstance(exc, aiohttp.InvalidURL):
        return f"invalid URL: {exc}", FailureType.CONFIGURATION_ERROR
    return f"{type(exc).__name__}: {exc}", FailureType.SERVICE_UNAVAILABLE


class Prober:
    """Runs health checks over the engine's shared session."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._tls = TlsContexts()
        self._urls: dict[str, yarl.URL | str] = {}

    def _url(self, url: str) -> yarl.URL | str:
        """The URL parsed once, not on every check (aiohttp parses a str per request)."""
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= 16:  # a prober serves one service: its endpoints, a few backups
                self._urls.clear()
            try:
                parsed = yarl.URL(url)
            except (ValueError, TypeError):
                parsed = url  # aiohttp raises its InvalidURL for it, which becomes the verdict
            self._urls[url] = parsed
        return parsed

    async def check(self, url: str, *, timeout_s: float | None, slow_ms: float, max_body_bytes: int,
                    tls_verify: bool = True, ca_bundle: str = "", method: str = "GET",
                    expect_status: Sequence[int] = (), body_contains: str = "", json_path: str = "",
                    json_equals: Any = None) -> ProbeResult:
        """One check. `timeout_s` None: the caller bounds it (core.checks.base.execute does, once for
        every check type; a second timer here cost a timer and a task lookup per check)."""
        # perf_counter, not the engine clock: latency is a measurement of real I/O, not a timing rule.
        start = time.perf_counter()
        try:
            ssl_arg = self._tls.get(tls_verify, ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            return ProbeResult(ServiceStatus.UNHEALTHY, 0.0, f"cannot load CA bundle: {exc}",
                               failure_type=FailureType.CONFIGURATION_ERROR)
        request = self._request(url, start, ssl_arg, slow_ms=slow_ms, max_body_bytes=max_body_bytes,
                                method=method, expect_status=expect_status, body_contains=body_contains,
                                json_path=json_path, json_equals=json_equals)
        try:
            if timeout_s is None:
                return await request
            async with asyncio.timeout(timeout_s):
                return await request
        except TimeoutError:
            return ProbeResult(ServiceStatus.UNHEALTHY, (time.perf_counter() - start) * 1000.0,
                               f"timeout after {timeout_s:g} s", failure_type=FailureType.NETWORK_PARTITION)

    async def _request(self, url: str, start: float, ssl_arg: ssl.SSLContext | bool, *, slow_ms: float,
                       max_body_bytes: int, method: str, expect_status: Sequence[int], body_contains: str,
                       json_path: str, json_equals: Any) -> ProbeResult:
        try:
            async with self._session.request(method, self._url(url), ssl=ssl_arg, allow_redirects=True,
                                             max_redirects=3) as resp:
                body, truncated = await _read_capped(resp, max_body_bytes)
                if truncated:
                    # Drop the connection rather than drain a device that streams forever.
                    resp.close()
                ms = (time.perf_counter() - start) * 1000.0
                expected = resp.status in expect_status if expect_status else 200 <= resp.status < 300
                if not expected:
                    return ProbeResult(ServiceStatus.UNHEALTHY, ms, f"HTTP {resp.status}", resp.status,
                                       classify_http(resp.status))
                if truncated:
                    return ProbeResult(ServiceStatus.UNHEALTHY, ms,
                                       f"health body larger than {max_body_bytes} bytes", resp.status,
                                       FailureType.DATA_CORRUPTION)
                if body_contains or json_path:
                    return judge_expectations(body, ms, resp.status, body_contains, json_path, json_equals)
                status, error, ftype = judge_body(body, resp.headers.get("Content-Type", "").lower())
                if status is ServiceStatus.HEALTHY and ms > slow_ms:
                    status, error = ServiceStatus.DEGRADED, f"slow: {ms:.0f} ms > {slow_ms:g} ms"
                return ProbeResult(status, ms, error, resp.status, ftype)
        except (TimeoutError, asyncio.CancelledError):
            raise  # the caller's timeout (or a stop), not the device's answer
        except Exception as exc:  # noqa: BLE001 - any failure of a device is a verdict, never a crash
            message, ftype = _describe_exception(exc)
            return ProbeResult(ServiceStatus.UNHEALTHY, (time.perf_counter() - start) * 1000.0, message,
                               failure_type=ftype)
