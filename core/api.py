"""The engine's HTTP listener: device heartbeats in, Prometheus metrics and JSON state out, commands in.

It is a thin adapter over `EngineControl`: reads go to the thread-safe snapshot methods, commands go to
the same async methods the GUI uses (with origin "api", so the journal tells them apart). Nothing here
decides anything about a service. The wire contract is docs/api.md.

Security model: the listener binds to loopback unless configured otherwise. Reads and heartbeats are
unauthenticated (read-only, or harmless and hot); every mutating /api/ route needs the bearer token.
The token and the Authorization header are never logged.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import math
import re
import ssl
from enum import Enum
from typing import Any, Awaitable, Callable, Iterable, Sequence

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler

from core.logs import API as log
from core import __version__
from core.events import BreakerState, ServiceStatus
from core.api_auth import Gate
from core.api_stream import StreamHub
from core.health import Health
from core.snapshot import CommandResult, EngineControl, EngineStats, ServiceSnapshot

access_log = logging.getLogger("core.api.access")

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
AUTH_ERROR = "missing or wrong bearer token"

# URL verb → EngineControl method name. Hyphens in URLs, underscores in Python.
SERVICE_COMMANDS: dict[str, str] = {
    "force-open": "force_open",
    "force-close": "force_close",
    "reset": "reset",
    "restart": "restart",
    "pause": "pause",
    "resume": "resume",
}
MAINTENANCE_COMMANDS: dict[str, bool] = {"maintenance-on": True, "maintenance-off": False}

_Command = Callable[[Sequence[str], str], Awaitable[CommandResult]]

# How long stop() lets in-flight requests finish; past that they are cancelled. Commands are quick
# (they start work, they don't wait for it), so this only bounds a stuck client.
_SHUTDOWN_TIMEOUT_S = 5.0
# We never read request bodies; a small limit keeps a misbehaving device from making us buffer.
_MAX_BODY = 64 * 1024
_MAX_HORIZON_S = 366 * 86400.0  # GET /api/maintenance looks at most a year ahead
_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1"}
# What a client may name as the origin of its commands (journaled): "gui@laptop-3", "script@ci".
_ORIGIN_RE = re.compile(r"[a-z]{1,16}@[A-Za-z0-9._-]{1,64}\Z")


class ApiServer:
    """The loopback HTTP listener.

    Attributes:
        port: the bound port once started (the requested one before; 0 asks the OS to pick).
        url: base URL a local client can use, e.g. "http://127.0.0.1:8765".
    """

    def __init__(self, control: EngineControl, beat: Callable[[str], bool], token: str,
                 host: str = "127.0.0.1", port: int = 8765,
                 config_path: Callable[[], str | None] | None = None,
                 health: Callable[[], Health] | None = None, *, gate: Gate | None = None,
                 stream: StreamHub | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        if not token:
            # An empty token would make "Authorization: Bearer " a valid credential.
            raise ValueError("the API token must not be empty")
        if not host:
            # asyncio treats "" as "every interface"; that must be asked for explicitly (0.0.0.0).
            raise ValueError("the API host must not be empty (use 0.0.0.0 for every interface)")
        self._control = control
        self._beat = beat
        self._health = health
        self._token = token.encode("utf-8")
        self._host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._config_path = config_path  # given: /api/config/ edits that file (core/config_api.py)
        self._gate = gate
        self._stream = stream
        self._ssl = ssl_context

    @property
    def url(self) -> str:
        host = _WILDCARD_HOSTS.get(self._host, self._host)
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self._ssl is not None else 'http'}://{host}:{self.port}"

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("ApiServer already started")
        middlewares = [_errors] + ([self._gate.middleware()] if self._gate is not None else [])
        app = web.Application(middlewares=middlewares, client_max_size=_MAX_BODY)
        app.router.add_post("/heartbeat/{service_id}", self._heartbeat)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/api/services", self._services)
        app.router.add_get("/api/services/{service_id}", self._service)
        app.router.add_post("/api/services/{service_id}/{verb}", self._service_command)
        app.router.add_get("/api/alerts", self._alerts)
        app.router.add_post("/api/alerts/{alert_id}/acknowledge", self._acknowledge)
        app.router.add_get("/api/maintenance", self._maintenance)
        if self._config_path is not None:
            from core.config_api import ConfigEditApi

            ConfigEditApi(self._control, self._config_path, self._authorized).add_routes(app.router)
            app.router.add_post("/api/reload", self._reload)
        self._add_console_routes(app)
        # aiohttp's default access log goes to "aiohttp.access" at INFO; ours is DEBUG, skips beats,
        # and its format has no headers, so the Authorization header cannot leak through it.
        runner = web.AppRunner(app, access_log_class=_AccessLogger, access_log=access_log,
                               shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self.port, ssl_context=self._ssl)
            await site.start()
            if self._stream is not None:
                self._stream.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        addresses = runner.addresses
        if addresses:
            self.port = int(addresses[0][1])
        log.info("API listening on %s", self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if self._stream is not None and runner is not None:
            await self._stream.stop()
        if runner is not None:
            await runner.cleanup()
            log.info("API stopped")

    # ------------------------------------------------------------ handlers

    async def _heartbeat(self, request: web.Request) -> web.StreamResponse:
        # Hot path (every device, every few seconds): no journal, no log line.
        service_id = request.match_info["service_id"]
        if not self._beat(service_id):
            return _error(404, f"unknown service {service_id!r}")
        return web.Response(status=204)

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        text = render_metrics(self._control.snapshots().values(), self._control.stats())
        return web.Response(body=text.encode("utf-8"), headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        # Unauthenticated on purpose (container HEALTHCHECK, load balancers); it says nothing but
        # fixed words about this process, never about services or paths.
        health = self._health() if self._health is not None else Health(True, (("api", "ok"),))
        body = {"status": "ok" if health.ok else "unhealthy", "checks": dict(health.checks)}
        return _json(200 if health.ok else 503, body, {"Cache-Control": "no-store"})

    async def _services(self, request: web.Request) -> web.StreamResponse:
        return _json(200, [to_jsonable(s) for s in self._control.snapshots().values()])

    async def _service(self, request: web.Request) -> web.StreamResponse:
        service_id = request.match_info["service_id"]
        snapshot = self._control.snapshots().get(service_id)
        if snapshot is None:
            return _error(404, f"unknown service {service_id!r}")
        return _json(200, to_jsonable(snapshot))

    async def _alerts(self, request: web.Request) -> web.StreamResponse:
        return _json(200, [to_jsonable(a) for a in self._control.alerts()])

    async def _maintenance(self, request: web.Request) -> web.StreamResponse:
        from core.maintenance_board import DEFAULT_HORIZON_S, to_wire

        raw = request.query.get("horizon", "")
        try:
            horizon = float(raw) if raw else DEFAULT_HORIZON_S
        except ValueError:
            horizon = -1.0
        if not 0 <= horizon <= _MAX_HORIZON_S:
            return _error(400, f"horizon must be seconds from 0 to {_MAX_HORIZON_S:.0f}, not {raw!r}")
        return _json(200, to_wire(await self._control.scheduled_maintenance(horizon)))

    async def _service_command(self, request: web.Request) -> web.StreamResponse:
        # Authentication before anything else, so an anonymous caller learns nothing (not even
        # which services or verbs exist) from a mutating route.
        if not self._authorized(request):
            return self._refuse(request)
        service_id = request.match_info["service_id"]
        verb = request.match_info["verb"]
        method_name = SERVICE_COMMANDS.get(verb)
        if method_name is None and verb not in MAINTENANCE_COMMANDS:
            return _error(404, f"unknown command {verb!r}")
        if service_id not in self._control.snapshots():
            return _error(404, f"unknown service {service_id!r}")
        if method_name is None:
            on = MAINTENANCE_COMMANDS[verb]

            async def maintenance(ids: Sequence[str], origin: str) -> CommandResult:
                # No end time from the API: the engine's default window applies (never silent forever).
                return await self._control.maintenance(ids, on, origin)
            return await self._run(verb, service_id, maintenance, request)
        command: _Command = getattr(self._control, method_name)
        return await self._run(verb, service_id, command, request)

    async def _acknowledge(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._refuse(request)
        alert_id = request.match_info["alert_id"]
        if not any(a.id == alert_id for a in self._control.alerts()):
            return _error(404, f"unknown alert {alert_id!r}")
        return await self._run("acknowledge", alert_id, self._control.acknowledge, request)

    # ------------------------------------------------------------ attached consoles (issue 11)

    def _add_console_routes(self, app: web.Application) -> None:
        """The stream, history and the commands only a remote console needs (group maintenance,
        silence); the shared routes above serve it too."""
        if self._stream is not None:
            self._stream.add_routes(app)
        app.router.add_post("/api/groups/{group}/{verb}", self._group_command)
        app.router.add_post("/api/alerts/{alert_id}/silence", self._silence)

    async def _group_command(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._refuse(request)
        group, verb = request.match_info["group"], request.match_info["verb"]
        if verb not in MAINTENANCE_COMMANDS:
            return _error(404, f"unknown command {verb!r}")
        if not any(s.group == group for s in self._control.snapshots().values()):
            return _error(404, f"unknown group {group!r}")
        on = MAINTENANCE_COMMANDS[verb]

        async def maintenance(ids: Sequence[str], origin: str) -> CommandResult:
            return await self._control.maintenance(ids, on, origin)
        return await self._run(verb, group, maintenance, request)

    async def _silence(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._refuse(request)
        alert_id = request.match_info["alert_id"]
        try:
            seconds = float(request.query.get("seconds", ""))
        except ValueError:
            return _error(400, "seconds must be a number")
        if not (math.isfinite(seconds) and 0 < seconds <= 7 * 86400):
            return _error(400, "seconds must be between 0 and 604800")
        if not any(a.id == alert_id for a in self._control.alerts()):
            return _error(404, f"unknown alert {alert_id!r}")

        async def silence(ids: Sequence[str], origin: str) -> CommandResult:
            return await self._control.silence(ids, seconds, origin)
        return await self._run("silence", alert_id, silence, request)

    async def _reload(self, request: web.Request) -> web.StreamResponse:
        """Reload the engine's own config file (never a path from the request), for a console on the
        same host that edited it (core/child.py); `edit`/`service` in the query journal a config_edit."""
        if not self._authorized(request):
            return self._refuse(request)
        assert self._config_path is not None
        path = self._config_path()
        if not path:
            return _error(404, "this engine runs no config file")
        edit = request.query.get("edit", "")[:500]
        service = request.query.get("service", "")[:200]
        result = await self._control.reload(path, _origin(request), edit=edit, service=service)
        log.info("API command reload: %s (%s)", "ok" if result.ok else "refused", result.message)
        return _json(200 if result.ok else 409, {"ok": result.ok, "message": result.message})

    async def _run(self, verb: str, target: str, command: _Command,
                   request: web.Request | None = None) -> web.StreamResponse:
        result = await command([target], _origin(request))
        log.info("API command %s %r: %s (%s)", verb, target, "ok" if result.ok else "refused", result.message)
        return _json(200 if result.ok else 409, {"ok": result.ok, "message": result.message})

    # ------------------------------------------------------------ auth

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        # Bytes, because compare_digest refuses non-ASCII str and a header can hold anything;
        # constant-time so the comparison leaks nothing about how much of a guess was right.
        given = credential.strip().encode("utf-8", "surrogateescape")
        return hmac.compare_digest(given, self._token)

    def _refuse(self, request: web.Request) -> web.StreamResponse:
        log.info("API refused %s %s from %s: %s", request.method, request.path, request.remote, AUTH_ERROR)
        return _error(401, AUTH_ERROR, {"WWW-Authenticate": "Bearer"})


def _origin(request: web.Request | None) -> str:
    """The journaled origin: "api", or what the client names itself (gui@host) if well-formed."""
    claimed = request.headers.get("X-Faultwatch-Origin", "") if request is not None else ""
    return claimed if _ORIGIN_RE.match(claimed) else "api"


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error answer is JSON, and no exception text or traceback ever reaches a client."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = "not found" if exc.status == 404 else exc.reason.lower()
        # Keep meaningful headers (Allow on 405) but not the text/plain body's own.
        headers = {k: v for k, v in exc.headers.items()
                   if k.lower() not in ("content-type", "content-length")}
        return _error(exc.status, message, headers)
    except ConnectionResetError:
        # The client went away mid-answer (a console that quit while its stream was being set
        # up, a stopping engine): nobody is left to answer, and it is not the engine's fault.
        # An answer, not a raise: aiohttp logs a raised one as an error; writing this one fails
        # quietly on the closed transport.
        log.debug("API client gone: %s %s", request.method, request.path)
        return web.Response(status=503)
    except Exception:
        # request.path only: the query string and headers may carry credentials.
        log.exception("API handler failed: %s %s", request.method, request.path)
        return _error(500, "internal error")


class _AccessLogger(AbstractAccessLogger):
    """One DEBUG line per request: method, path, status, duration; never headers or query strings."""

    @property
    def enabled(self) -> bool:
        # Asked once per connection by aiohttp; skipping the work entirely when DEBUG is off.
        return self.logger.isEnabledFor(logging.DEBUG)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request.path.startswith("/heartbeat/"):
            return
        self.logger.debug("%s %s -> %d (%.1f ms)", request.method, request.path, response.status,
                          time * 1000.0)


# ---------------------------------------------------------------- JSON

def to_jsonable(value: Any) -> Any:
    """Dataclasses to dicts, enums to their values, tuples to lists, non-finite floats to None.

    Strict JSON has no NaN/Infinity; a client's parser would choke on Python's extensions.
    """
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    text = json.dumps(body, allow_nan=False, separators=(",", ":"))
    return web.Response(status=status, text=text, content_type="application/json", headers=headers)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json(status, {"error": message}, headers)


# ---------------------------------------------------------------- Prometheus

_UP_VALUES: dict[ServiceStatus, int] = {
    ServiceStatus.HEALTHY: 1,
    ServiceStatus.DEGRADED: 1,
    ServiceStatus.UNHEALTHY: 0,
    # -1 rather than NaN or no sample: "up == 0" alerts stay quiet for paused or not-yet-checked
    # services, and "up < 0" still finds them.
    ServiceStatus.UNKNOWN: -1,
}

# Prometheus conventions (checked by `promtool check metrics` in tests/core/test_metrics_lint.py):
# base units (seconds, not ms), `_total` only on counters, HELP and TYPE for every family. The engine
# keeps milliseconds internally; conversion happens only here, at the edge.
_METRICS: tuple[tuple[str, str, str], ...] = (
    ("faultwatch_build_info", "gauge",
     "Always 1; the version label says which Faultwatch this engine runs (for fleets mid-upgrade)."),
    ("faultwatch_up", "gauge",
     "1 if the service's current verdict is healthy or degraded, 0 if unhealthy, "
     "-1 if unknown (not checked yet, or paused)."),
    ("faultwatch_maintenance", "gauge",
     "1 while the service (or its group) is in maintenance, else 0; alerts should skip these."),
    ("faultwatch_latency_p50_seconds", "gauge",
     "Median latency of the service's recent checks, in seconds."),
    ("faultwatch_latency_p95_seconds", "gauge",
     "95th percentile latency of the service's recent checks, in seconds."),
    ("faultwatch_last_latency_seconds", "gauge",
     "Latency of the service's most recent check that got an answer, in seconds."),
    ("faultwatch_breaker_state", "gauge",
     "Circuit breaker state, one-hot: 1 for the current state, 0 for the others."),
    ("faultwatch_restarts_total", "counter",
     "Restart actions run for the service since the engine started."),
    ("faultwatch_checks_total", "counter",
     "Health checks run for the service since the engine started."),
    ("faultwatch_consecutive_failures", "gauge",
     "Failed checks in a row (0 after any healthy or degraded check)."),
    ("faultwatch_services", "gauge",
     "Services this engine watches."),
    ("faultwatch_events_total", "counter",
     "Events the engine published (and journaled) since it started."),
    ("faultwatch_checks_per_second", "gauge",
     "Health checks per second across all services, the engine's own recent average."),
    ("faultwatch_loop_lag_seconds", "gauge",
     "p99 of the engine event loop's recent scheduling lag, in seconds."),
)


def escape_label_value(value: str) -> str:
    """Escape a label value for the text exposition format (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _format_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _sample(name: str, labels: dict[str, str], value: float) -> str:
    inner = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {_format_value(value)}" if inner else f"{name} {_format_value(value)}"


def render_metrics(snapshots: Iterable[ServiceSnapshot], stats: EngineStats) -> str:
    """The Prometheus text exposition (0.0.4) of every service and the engine-wide figures.

    Latency samples are left out while a service has no measurement
    (None), rather than reported as a made-up number.
    """
    services = list(snapshots)
    samples: dict[str, list[str]] = {name: [] for name, _, _ in _METRICS}

    def add(name: str, labels: dict[str, str], value: float) -> None:
        samples[name].append(_sample(name, labels, value))

    add("faultwatch_build_info", {"version": __version__}, 1)
    for s in services:
        sl = {"service": s.id}
        sgl = {"service": s.id, "group": s.group}
        add("faultwatch_up", sgl, _UP_VALUES[s.status])
        add("faultwatch_maintenance", sgl, 1 if s.maintenance else 0)
        for name, ms in (("faultwatch_latency_p50_seconds", s.p50_ms), ("faultwatch_latency_p95_seconds", s.p95_ms),
                         ("faultwatch_last_latency_seconds", s.last_latency_ms)):
            if ms is not None:
                add(name, sgl, ms / 1000.0)
        for state in BreakerState:
            add("faultwatch_breaker_state", {**sl, "state": state.value}, 1 if s.breaker.state == state else 0)
        add("faultwatch_restarts_total", sl, s.restarts_total)
        add("faultwatch_checks_total", sl, s.checks_total)
        add("faultwatch_consecutive_failures", sl, s.consecutive_failures)
    add("faultwatch_services", {}, stats.services)
    add("faultwatch_events_total", {}, stats.events_total)
    add("faultwatch_checks_per_second", {}, float(stats.checks_per_second))
    add("faultwatch_loop_lag_seconds", {}, float(stats.loop_lag_ms) / 1000.0)

    lines: list[str] = []
    for name, kind, help_text in _METRICS:
        lines.append(f"# HELP {name} {_escape_help(help_text)}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(samples[name])
    return "\n".join(lines) + "\n"
