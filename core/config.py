"""Configuration: every setting declared once, as frozen dataclasses with defaults and docs.

The TOML file keeps the seed design's sections and keys ([fault_detection], [circuit_breaker],
[recovery]) with their meanings and defaults, and extends them. `load_config()` turns a file into a
`Config` or raises `ConfigError` with one line naming the file, the key path and what was expected.
`docs/config.md` is generated from these declarations (`render_docs()`), and a test keeps it in sync.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

import tomllib


from core.checks.http import HttpCheck
from core.checks.registry import check_types, restart_types
from core.dependencies import DependencyError, DependencyGraph
from core.options import opt  # re-exported: settings classes declare keys with it
from core.schedule import MaintenanceWindowConfig, ScheduleError, plan

__all__ = ["opt", "ConfigError", "Config", "ServiceConfig", "load_config", "parse_config"]


class ConfigError(ValueError):
    """A config problem, as one line: `file: key.path: what is wrong`."""


# ---------------------------------------------------------------- seed sections (extended)

@dataclass(frozen=True, slots=True)
class FaultDetectionConfig:
    check_interval_seconds: float = opt(30.0, "Time between two health checks of one service.", positive=True)
    timeout_seconds: float = opt(5.0, "A check that takes longer than this fails.", positive=True)
    slow_response_threshold_ms: float = opt(
        1000.0, "A successful check slower than this marks the service degraded.", positive=True)
    max_failures: int = opt(3, "Consecutive failed checks before the service counts as failed.", min=1)
    max_body_bytes: int = opt(65536, "At most this many bytes of a health response are read.", min=1)
    jitter_fraction: float = opt(
        0.1, "Each check is delayed by up to this fraction of the interval, so checks spread out.",
        min=0, max=1)


@dataclass(frozen=True, slots=True)
class CircuitBreakerConfig:
    failure_threshold: int = opt(5, "Consecutive failures (while closed) that open the breaker.", min=1)
    success_threshold: int = opt(3, "Successes in half-open that close it again.", min=1)
    timeout_seconds: float = opt(60.0, "Time open before a trial (half-open) is allowed.", positive=True)
    half_open_max_calls: int = opt(1, "Trial calls admitted at once while half-open.", min=1)
    window: Literal["consecutive", "count", "time"] = opt(
        "consecutive",
        "How failures are counted while closed: 'consecutive' (the seed's rule), or a sliding "
        "window of the last N calls ('count') or of the last N seconds ('time').")
    window_size: int = opt(20, "Calls (count window) or seconds (time window) in the sliding window.", min=1)
    minimum_calls: int = opt(10, "Calls in the window before its rates are judged.", min=1)
    failure_rate_threshold: float = opt(50.0, "Failure rate (%) in the window that opens the breaker.",
                                        min=0, max=100)
    slow_call_rate_threshold: float = opt(100.0, "Slow-call rate (%) in the window that opens the breaker.",
                                          min=0, max=100)
    slow_call_duration_ms: float = opt(1000.0, "A call slower than this counts as slow in the window.",
                                       positive=True)


@dataclass(frozen=True, slots=True)
class RecoveryConfig:
    max_restart_attempts: int = opt(3, "Restarts tried for one failure before giving up.", min=0)
    restart_backoff_strategy: Literal["fixed", "linear", "exponential"] = opt(
        "exponential", "Delay growth between restart attempts.")
    restart_base_delay_seconds: float = opt(1.0, "Delay before the first attempt (and the step).", min=0)
    restart_max_delay_seconds: float = opt(60.0, "Cap on the delay between attempts.", min=0)
    restart_jitter: Literal["none", "full", "equal"] = opt(
        "none", "Randomise delays: 'full' (0..d) or 'equal' (d/2..d), to avoid synchronised restarts.")
    reset_after_stable_seconds: float = opt(
        600.0, "After this long healthy, the attempt count and backoff start again from the first.", min=0)
    restart_timeout_seconds: float = opt(10.0, "A restart action that takes longer fails.", positive=True)
    verify_checks: int = opt(2, "Healthy checks after a restart that make it a success.", min=1)
    verify_timeout_seconds: float = opt(
        120.0, "A restart not verified healthy within this time counts as failed.", positive=True)
    auto_restart: bool = opt(True, "Restart failed services automatically (if they have a restart action).")
    storm_max_restarts: int = opt(5, "More restarts than this per service within storm_period_seconds "
                                     "stops automatic restarts until an operator resets it.", min=1)
    storm_period_seconds: float = opt(600.0, "Period of the restart-storm guard.", positive=True)
    group_storm_max_restarts: int = opt(20, "The same guard for all services of one group.", min=1)
    failover: bool = opt(True, "Switch to the first healthy backup endpoint when the primary fails.")
    failback_after_checks: int = opt(3, "Healthy checks of the primary before switching back to it.", min=1)


# ---------------------------------------------------------------- Faultwatch extensions

@dataclass(frozen=True, slots=True)
class HeartbeatConfig:
    missed_intervals: int = opt(3, "Intervals without a beat before the heartbeat counts as missed.", min=1)


@dataclass(frozen=True, slots=True)
class AnomalyConfig:
    enabled: bool = opt(True, "Look for anomalous response times.")
    ewma_alpha: float = opt(0.1, "Weight of the newest sample in the EWMA mean and variance.", positive=True, max=1)
    z_threshold: float = opt(4.0, "EWMA z-score above which a sample is anomalous.", positive=True)
    mad_window: int = opt(60, "Samples in the rolling median/MAD window.", min=5)
    mad_threshold: float = opt(6.0, "Robust (median/MAD) score above which a sample is anomalous.", positive=True)
    warmup_samples: int = opt(8, "Samples seen before any sample can be judged.", min=1)
    k: int = opt(3, "Anomalous samples among the last n that raise an anomaly event.", min=1)
    n: int = opt(5, "Size of the k-of-n window.", min=1)
    min_latency_ms: float = opt(5.0, "Samples faster than this are never anomalous (noise floor).", min=0)


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    checks_per_second: float = opt(5000.0, "Outgoing health checks per second, all services together.",
                                   positive=True)
    checks_burst: int = opt(500, "Checks allowed at once above the rate.", min=1)
    restarts_per_service_per_minute: float = opt(6.0, "Restart actions per minute for one service.", positive=True)
    restarts_per_group_per_minute: float = opt(30.0, "Restart actions per minute for one group.", positive=True)


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    unhealthy_for_seconds: float = opt(30.0, "A service unhealthy this long raises an alert.", min=0)
    anomaly: bool = opt(True, "Anomaly events raise (warning) alerts.")
    group_share: float = opt(0.5, "Share of a group failing within group_window_seconds that raises one "
                                  "group alert instead of per-device alerts.", positive=True, max=1)
    group_window_seconds: float = opt(30.0, "Window for the group rule.", positive=True)
    group_min_services: int = opt(3, "Groups smaller than this never get a group alert.", min=2)
    webhook_url: str = opt("", "POST alerts as JSON here (empty: no webhook).")
    webhook_token_env: str = opt("", "Environment variable holding a bearer token for the webhook.")
    webhook_retries: int = opt(3, "Retries of a failed webhook POST (with exponential backoff).", min=0)
    sound: bool = opt(False, "The GUI plays a sound for new critical alerts.")
    maintenance_default_hours: float = opt(
        8.0, "Maintenance switched on without an end time ends after this long: nothing is silent forever.",
        positive=True)


@dataclass(frozen=True, slots=True)
class JournalConfig:
    path: str = opt("", "SQLite journal file (empty: faultwatch.db in the platform's state directory).")
    raw_retention_hours: float = opt(6.0, "Raw latency samples kept this long (longer ranges are drawn from rollups).", positive=True)
    rollup_retention_days: float = opt(30.0, "Per-minute latency rollups kept this long.", positive=True)
    event_retention_days: float = opt(90.0, "Events kept this long.", positive=True)


@dataclass(frozen=True, slots=True)
class ApiConfig:
    enabled: bool = opt(True, "Serve heartbeats, /metrics and the control API.")
    listen: str = opt("127.0.0.1:8765", "host:port of the listener; loopback unless you mean otherwise.")
    token_env: str = opt("FAULTWATCH_TOKEN", "Environment variable holding the API bearer token; if unset, "
                                             "a token is generated in a 0600 file in the state directory.")


# ---------------------------------------------------------------- services

@dataclass(frozen=True, slots=True)
class HttpRestart:
    url: str
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class CommandRestart:
    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProtocolRestart:
    """A restart action offered by a check module (`snmp_set`, `modbus_write`): its key and settings."""

    kind: str
    settings: Any


RestartAction = HttpRestart | CommandRestart | ProtocolRestart


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """One monitored service or device; the three seed sections are its effective settings."""

    id: str
    name: str
    endpoint: str = ""
    health_path: str = "/health"
    group: str = "default"
    tags: tuple[str, ...] = ()
    backup_endpoints: tuple[str, ...] = ()
    restart: RestartAction | None = None
    heartbeat_interval_seconds: float | None = None
    tls_verify: bool = True
    ca_bundle: str = ""
    fault_detection: FaultDetectionConfig = field(default_factory=FaultDetectionConfig)
    circuit_breaker: CircuitBreakerConfig = field(default_factory=CircuitBreakerConfig)
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)
    check: Any = field(default_factory=HttpCheck)  # the settings of one of core/checks' types
    depends_on: tuple[str, ...] = ()

    @property
    def endpoints(self) -> tuple[str, ...]:
        return (self.endpoint, *self.backup_endpoints)

    @property
    def check_type(self) -> str:
        return str(self.check.TYPE)

    @property
    def target(self) -> str:
        """What is checked, in a few words: the URL for http, `host:port` and the like for the rest."""
        if isinstance(self.check, HttpCheck):
            return self.endpoint
        return str(self.check.target())


SERVICE_KEYS: dict[str, str] = {
    "id": "Unique slug: letters, digits, '-', '_' and '.' (required).",
    "name": "Display name (default: the id).",
    "endpoint": "Base http(s) URL of the service (required for http checks).",
    "check": "How the device is checked: an inline table with `type` and that type's keys (see below); "
             "without it, an http check of endpoint + health_path.",
    "health_path": "Path of the health check, appended to the endpoint (default /health).",
    "group": "Rack or site the service belongs to (default 'default').",
    "tags": "List of free-form strings.",
    "depends_on": "Ids of services this one sits behind (a switch, a gateway): while one of them is down, "
                  "this one is shown as blocked, its alerts fold into the parent's and its restarts are held.",
    "backup_endpoints": "http(s) URLs to fail over to, in order of preference.",
    "restart": "Restart action: { http = { method = \"POST\", url = \"...\" } }, { command = [\"argv\", ...] }, "
               "or a protocol action (snmp_set, modbus_write; see below).",
    "heartbeat_interval_seconds": "The device pushes POST /heartbeat/{id} this often; missed beats are a fault.",
    "tls_verify": "Verify TLS certificates (default true).",
    "ca_bundle": "Path of a CA bundle for this service's TLS.",
    "fault_detection": "Per-service override of [fault_detection] keys.",
    "circuit_breaker": "Per-service override of [circuit_breaker] keys.",
    "recovery": "Per-service override of [recovery] keys.",
}


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """One `[[notify]]` channel: where alerts go (an apprise URL) and which alerts."""

    name: str = opt("", "Channel name in events and logs (default: the URL's scheme and host, never its secrets).")
    url: str = opt("", "Apprise URL (mailto://, json://, ntfy://, tgram://, ...); prefer url_env for secrets.")
    url_env: str = opt("", "Environment variable holding the apprise URL.", secret_env=True)
    min_severity: Literal["info", "warning", "critical"] = opt("warning", "Least severe alert sent.")
    groups: tuple[str, ...] = opt((), "Only alerts of these groups (any filter matching is enough).")
    services: tuple[str, ...] = opt((), "Only alerts of these services.")
    tags: tuple[str, ...] = opt((), "Only alerts of services with one of these tags.")
    escalate_after_minutes: float = opt(
        0.0, "0: notified at once. More: an escalation channel, told only of critical alerts still "
             "unacknowledged this long after they fired.", min=0)
    retries: int = opt(3, "Retries of a failed delivery (exponential backoff from 2 s).", min=0)
    per_minute: float = opt(20.0, "Deliveries per minute at most (a flood waits its turn).", positive=True)


@dataclass(frozen=True, slots=True)
class Config:
    fault_detection: FaultDetectionConfig = field(default_factory=FaultDetectionConfig)
    circuit_breaker: CircuitBreakerConfig = field(default_factory=CircuitBreakerConfig)
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)
    heartbeat: HeartbeatConfig = field(default_factory=HeartbeatConfig)
    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    services: tuple[ServiceConfig, ...] = ()
    notify: tuple[NotifyConfig, ...] = ()
    maintenance: tuple[MaintenanceWindowConfig, ...] = ()
    source: str = ""  # the file it came from, for messages

    def service(self, service_id: str) -> ServiceConfig | None:
        return next((s for s in self.services if s.id == service_id), None)


SECTIONS: dict[str, type] = {
    "fault_detection": FaultDetectionConfig,
    "circuit_breaker": CircuitBreakerConfig,
    "recovery": RecoveryConfig,
    "heartbeat": HeartbeatConfig,
    "anomaly": AnomalyConfig,
    "rate_limit": RateLimitConfig,
    "alerts": AlertsConfig,
    "journal": JournalConfig,
    "api": ApiConfig,
}
OVERRIDABLE = ("fault_detection", "circuit_breaker", "recovery")
# \Z, not $: "$" also matches before a trailing newline, which let "web\n" through as an id.
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+\Z")


# ---------------------------------------------------------------- loading

def load_config(path: str | Path) -> Config:
    """Read and validate a TOML file. Raises ConfigError (one line) on any problem."""
    p = Path(path)
    label = p.name
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(_one_line(f"{p}: no such file")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(_one_line(f"{p}: cannot read: {exc}")) from None
    return parse_config(text, label=label, source=str(p))


def parse_config(text: str, label: str = "<config>", source: str = "") -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_one_line(f"{label}: TOML syntax error: {exc}")) from None
    except RecursionError:  # tomllib parses nested arrays/inline tables recursively
        raise ConfigError(_one_line(f"{label}: nested too deeply")) from None
    try:
        return _build_config(data, source)
    except _KeyProblem as exc:
        raise ConfigError(_one_line(f"{label}: {exc.path}: {exc.message}")) from None
    except RecursionError:
        raise ConfigError(_one_line(f"{label}: nested too deeply")) from None


def _one_line(text: str) -> str:
    """The one-line promise holds even for a file name or value with control characters in it."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class _KeyProblem(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _unknown(key: str, known: typing.Iterable[str], path: str) -> _KeyProblem:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return _KeyProblem(_join(path, key), f"unknown key{hint}")


def _join(path: str, key: str) -> str:
    # Keys that are not bare TOML keys are shown quoted, as TOML writes them (a quoted key can hold
    # a dot, a space or a newline, and the path must still name it unambiguously on one line).
    shown = key if _BARE_KEY_RE.match(key) else json.dumps(key)
    return f"{path}.{shown}" if path else shown


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)


def _coerce(value: Any, annotation: Any, path: str) -> Any:
    """Check one scalar against the declared type; ints are accepted where numbers are."""
    origin = get_origin(annotation)
    if isinstance(annotation, types.UnionType) or origin is typing.Union:
        return _coerce_union(value, [a for a in get_args(annotation) if a is not type(None)], path)
    if origin is tuple:
        item_type = get_args(annotation)[0]
        if not isinstance(value, list):
            raise _KeyProblem(path, f"expected an array, got {_type_name(value)} {_describe(value)}")
        return tuple(_coerce(v, item_type, f"{path}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return _section(annotation, value, path)
    if origin is Literal:
        choices = get_args(annotation)
        if value not in choices:
            listed = " | ".join(str(c) for c in choices)
            raise _KeyProblem(path, f"{_describe(value)} is not one of {listed}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise _KeyProblem(path, f"expected true or false, got {_type_name(value)} {_describe(value)}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _KeyProblem(path, f"expected an integer, got {_type_name(value)} {_describe(value)}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _KeyProblem(path, f"expected a number, got {_type_name(value)} {_describe(value)}")
        if value != value or value in (float("inf"), float("-inf")):
            raise _KeyProblem(path, f"expected a finite number, got {value}")
        try:
            return float(value)
        except OverflowError:  # an integer too large for a float (TOML integers are unbounded here)
            raise _KeyProblem(path, f"{_describe(value)} is too large") from None
    if annotation is str:
        if not isinstance(value, str):
            raise _KeyProblem(path, f"expected a string, got {_type_name(value)} {_describe(value)}")
        return value
    raise _KeyProblem(path, f"unsupported type {annotation}")  # pragma: no cover - declaration bug


def _coerce_union(value: Any, choices: list[Any], path: str) -> Any:
    """A key that takes one of several types (a value to compare: number, string or boolean)."""
    if len(choices) == 1:
        return _coerce(value, choices[0], path)
    by_value = {bool: bool, int: float, float: float, str: str}
    wanted = by_value.get(type(value))
    if wanted is not None and wanted in choices:
        return _coerce(value, wanted, path)
    if wanted is float and int in choices:
        return _coerce(value, int, path)
    for choice in choices:
        if isinstance(value, dict) and dataclasses.is_dataclass(choice):
            return _coerce(value, choice, path)
        if isinstance(value, list) and get_origin(choice) is tuple:
            return _coerce(value, choice, path)
    listed = " or ".join(_type_label(c).replace("\\|", "|") for c in choices)
    raise _KeyProblem(path, f"expected {listed}, got {_type_name(value)} {_describe(value)}")


def _section(cls: type, table: Any, path: str, base: Any | None = None) -> Any:
    """Build a section dataclass from a TOML table; `base` supplies defaults (per-service overrides)."""
    if not isinstance(table, dict):
        raise _KeyProblem(path, f"expected a table, got {_type_name(table)} {_describe(table)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            raise _unknown(key, fields, path)
        f = fields[key]
        kpath = _join(path, key)
        v = _coerce(value, hints[key], kpath)
        meta = f.metadata
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if meta.get("positive") and v <= 0:
                raise _KeyProblem(kpath, f"must be greater than 0, got {v}")
            if meta.get("min") is not None and v < meta["min"]:
                raise _KeyProblem(kpath, f"must be at least {meta['min']:g}, got {v}")
            if meta.get("max") is not None and v > meta["max"]:
                raise _KeyProblem(kpath, f"must be at most {meta['max']:g}, got {v}")
        values[key] = v
    if base is None:
        for f in fields.values():
            if f.metadata.get("required") and f.name not in values:
                raise _KeyProblem(_join(path, f.name), "is required")
    built = dataclasses.replace(base, **values) if base is not None else cls(**values)
    _check_section(built, path)
    return built


def _check_section(section: Any, path: str) -> None:
    """Rules between keys of one section."""
    if isinstance(section, RecoveryConfig):
        if section.restart_base_delay_seconds > section.restart_max_delay_seconds:
            raise _KeyProblem(
                _join(path, "restart_base_delay_seconds"),
                f"{section.restart_base_delay_seconds:g} is greater than restart_max_delay_seconds "
                f"({section.restart_max_delay_seconds:g})")
    if isinstance(section, AnomalyConfig) and section.k > section.n:
        raise _KeyProblem(_join(path, "k"), f"{section.k} is greater than n ({section.n})")
    if isinstance(section, ApiConfig):
        _parse_listen(section.listen, _join(path, "listen"))
    # Check types and protocol restart actions state their own rules between keys (a coil takes a
    # boolean, an OID is dotted digits) as `problem() -> (key, message) | None`.
    problem = getattr(section, "problem", None)
    found = problem() if callable(problem) else None
    if found is not None:
        raise _KeyProblem(_join(path, found[0]), found[1])


def _parse_listen(text: str, path: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    # isascii(): str.isdigit() is also true for "²" and other digits int() refuses or reads oddly.
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise _KeyProblem(path, f"{_describe(text)} is not host:port")
    return host.strip("[]"), int(port)


def parse_listen(text: str) -> tuple[str, int]:
    """`host:port` → (host, port); raises ConfigError."""
    try:
        return _parse_listen(text, "listen")
    except _KeyProblem as exc:
        raise ConfigError(str(exc)) from None


def _url(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _KeyProblem(path, f"expected a URL string, got {_type_name(value)} {_describe(value)}")
    if any(c.isspace() or not c.isprintable() for c in value):
        # urlsplit silently drops tabs and newlines; the HTTP client would refuse the URL later.
        raise _KeyProblem(path, f"{_describe(value)} contains whitespace or control characters")
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 bracket)
        raise _KeyProblem(path, f"{_describe(value)} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _KeyProblem(path, f"{_describe(value)} is not an http(s) URL")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise _KeyProblem(path, f"{_describe(value)} has an invalid port") from None
    return value.rstrip("/")


def _str_list(value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _KeyProblem(path, f"expected an array of strings, got {_type_name(value)} {_describe(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _KeyProblem(f"{path}[{i}]", f"expected a string, got {_type_name(item)} {_describe(item)}")
    return tuple(value)


def _restart(value: Any, path: str) -> RestartAction:
    known = ("http", "command", *restart_types())
    listed = ", ".join(f"'{k}'" for k in known)
    if not isinstance(value, dict):
        raise _KeyProblem(path, f"expected a table with one of {listed}, got {_type_name(value)}")
    for key in value:
        if key not in known:
            raise _unknown(key, known, path)
    if len(value) != 1:
        raise _KeyProblem(path, f"give exactly one of {listed}")
    kind = next(iter(value))
    if kind in restart_types():
        return ProtocolRestart(kind, _section(restart_types()[kind].settings, value[kind], _join(path, kind)))
    if "command" in value:
        argv = _str_list(value["command"], _join(path, "command"))
        if not argv or not argv[0]:
            raise _KeyProblem(_join(path, "command"), "must name a program to run")
        for i, arg in enumerate(argv):
            if "\x00" in arg:  # the OS cannot pass it; the restart would fail only when needed
                raise _KeyProblem(f"{_join(path, 'command')}[{i}]", "contains a NUL character")
        return CommandRestart(argv=argv)
    http = value["http"]
    hpath = _join(path, "http")
    if not isinstance(http, dict):
        raise _KeyProblem(hpath, f"expected a table with 'url', got {_type_name(http)}")
    for key in http:
        if key not in ("url", "method"):
            raise _unknown(key, ("url", "method"), hpath)
    if "url" not in http:
        raise _KeyProblem(_join(hpath, "url"), "is required")
    method = http.get("method", "POST")
    if not isinstance(method, str) or method.upper() not in ("POST", "PUT", "GET"):
        raise _KeyProblem(_join(hpath, "method"), f"{_describe(method)} is not one of POST | PUT | GET")
    return HttpRestart(url=_url(http["url"], _join(hpath, "url")), method=method.upper())


def _check(value: Any, path: str) -> Any:
    types_ = check_types()
    if not isinstance(value, dict):
        raise _KeyProblem(path, f"expected a table with 'type', got {_type_name(value)} {_describe(value)}")
    kind = value.get("type", "http")
    if not isinstance(kind, str) or kind not in types_:  # a list or table is unhashable, not just wrong
        close = difflib.get_close_matches(str(kind), list(types_), n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise _KeyProblem(_join(path, "type"), f"{_describe(kind)} is not one of {' | '.join(types_)}{hint}")
    settings = {k: v for k, v in value.items() if k != "type"}
    return _section(types_[kind].settings, settings, path)


def _service(table: Any, path: str, defaults: dict[str, Any]) -> ServiceConfig:
    if not isinstance(table, dict):
        raise _KeyProblem(path, f"expected a table, got {_type_name(table)}")
    for key in table:
        if key not in SERVICE_KEYS:
            raise _unknown(key, SERVICE_KEYS, path)
    if "id" not in table:
        raise _KeyProblem(_join(path, "id"), "is required")
    sid = table["id"]
    if not isinstance(sid, str) or not _ID_RE.match(sid):
        raise _KeyProblem(_join(path, "id"), f"{_describe(sid)} is not a slug (letters, digits, '-', '_', '.')")
    kw: dict[str, Any] = {"id": sid}
    if "check" in table:
        kw["check"] = _check(table["check"], _join(path, "check"))
    if "endpoint" in table:
        kw["endpoint"] = _url(table["endpoint"], _join(path, "endpoint"))
    elif isinstance(kw.get("check", HttpCheck()), HttpCheck):
        raise _KeyProblem(_join(path, "endpoint"), "is required (for http checks)")
    for key in ("name", "group", "health_path", "ca_bundle"):
        if key in table:
            kw[key] = _coerce(table[key], str, _join(path, key))
    kw.setdefault("name", sid)
    hp = kw.get("health_path", "/health")
    if not hp.startswith("/"):
        raise _KeyProblem(_join(path, "health_path"), f"{_describe(hp)} must start with '/'")
    if "tls_verify" in table:
        kw["tls_verify"] = _coerce(table["tls_verify"], bool, _join(path, "tls_verify"))
    if "tags" in table:
        kw["tags"] = _str_list(table["tags"], _join(path, "tags"))
    if "depends_on" in table:
        kw["depends_on"] = _str_list(table["depends_on"], _join(path, "depends_on"))
    if "backup_endpoints" in table:
        items = table["backup_endpoints"]
        bpath = _join(path, "backup_endpoints")
        if not isinstance(items, list):
            raise _KeyProblem(bpath, f"expected an array of URLs, got {_type_name(items)}")
        kw["backup_endpoints"] = tuple(_url(u, f"{bpath}[{i}]") for i, u in enumerate(items))
    if "restart" in table:
        kw["restart"] = _restart(table["restart"], _join(path, "restart"))
    if "heartbeat_interval_seconds" in table:
        hb = _coerce(table["heartbeat_interval_seconds"], float, _join(path, "heartbeat_interval_seconds"))
        if hb <= 0:
            raise _KeyProblem(_join(path, "heartbeat_interval_seconds"), f"must be greater than 0, got {hb:g}")
        kw["heartbeat_interval_seconds"] = hb
    for name in OVERRIDABLE:
        base = defaults[name]
        kw[name] = _section(SECTIONS[name], table[name], _join(path, name), base) if name in table else base
    return ServiceConfig(**kw)


def _build_config(data: dict[str, Any], source: str) -> Config:
    known = (*SECTIONS, "services", "notify", "maintenance")
    for key in data:
        if key not in known:
            raise _unknown(key, known, "")
    sections = {name: _section(cls, data.get(name, {}), name) for name, cls in SECTIONS.items()}
    raw_services = data.get("services", [])
    if not isinstance(raw_services, list):
        raise _KeyProblem("services", "expected an array of tables ([[services]])")
    services: list[ServiceConfig] = []
    seen: dict[str, int] = {}
    for i, table in enumerate(raw_services):
        svc = _service(table, f"services[{i}]", sections)
        if svc.id in seen:
            raise _KeyProblem(f"services[{i}].id", f"duplicate id '{svc.id}' (also services[{seen[svc.id]}])")
        seen[svc.id] = i
        services.append(svc)
    _check_dependencies(services)
    notify = tuple(_notify(t, f"notify[{i}]") for i, t in enumerate(_tables(data, "notify")))
    maintenance = tuple(_maintenance(t, f"maintenance[{i}]", i)
                        for i, t in enumerate(_tables(data, "maintenance")))
    return Config(**sections, services=tuple(services), notify=notify, maintenance=maintenance, source=source)


def _tables(data: dict[str, Any], key: str) -> list[Any]:
    raw = data.get(key, [])
    if not isinstance(raw, list):
        raise _KeyProblem(key, f"expected an array of tables ([[{key}]])")
    return raw


def _check_dependencies(services: list[ServiceConfig]) -> None:
    ids = {s.id for s in services}
    for i, svc in enumerate(services):
        for j, parent in enumerate(svc.depends_on):
            if parent not in ids:
                close = difflib.get_close_matches(parent, list(ids), n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise _KeyProblem(f"services[{i}].depends_on[{j}]", f"unknown service '{parent}'{hint}")
    try:
        DependencyGraph({s.id: s.depends_on for s in services})
    except DependencyError as exc:
        raise _KeyProblem("services", str(exc)) from None


def _notify(table: Any, path: str) -> NotifyConfig:
    cfg: NotifyConfig = _section(NotifyConfig, table, path)
    if bool(cfg.url) == bool(cfg.url_env):
        raise _KeyProblem(path, "give exactly one of 'url' or 'url_env'")
    if cfg.url and "://" not in cfg.url:
        # Not echoed: the value may carry a password or token.
        raise _KeyProblem(_join(path, "url"), "is not an apprise URL (scheme://...)")
    return cfg


def _maintenance(table: Any, path: str, index: int) -> MaintenanceWindowConfig:
    window: MaintenanceWindowConfig = _section(MaintenanceWindowConfig, table, path)
    try:
        plan(window, index)
    except ScheduleError as exc:
        raise _KeyProblem(_join(path, exc.key), exc.message) from None
    return window


# ---------------------------------------------------------------- docs

def _type_label(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return " \\| ".join(f'"{a}"' for a in get_args(annotation))
    if isinstance(annotation, types.UnionType):
        return " or ".join(_type_label(a) for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is tuple:
        return f"array of {_type_label(get_args(annotation)[0])}"
    if dataclasses.is_dataclass(annotation):
        return "table"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(annotation, str(annotation))


def _default_label(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def render_docs() -> str:
    """docs/config.md, generated from the declarations above."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m core.config --docs > docs/config.md`; a test fails when it drifts. -->",
        "",
        "Faultwatch reads one TOML file. The sections `[fault_detection]`, `[circuit_breaker]` and "
        "`[recovery]` are the original design's, with its keys and defaults; the rest extend it. "
        "Every key is optional except where marked. Unknown keys are errors.",
        "",
    ]
    for name, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        lines += [f"## [{name}]", "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for f in dataclasses.fields(cls):
            lines.append(f"| `{f.name}` | {_type_label(hints[f.name])} | {_default_label(f.default)} "
                         f"| {f.metadata['doc']} |")
        lines.append("")
    lines += ["## [[services]]", "", "One table per monitored service or device.", "",
              "| key | meaning |", "|---|---|"]
    for key, doc in SERVICE_KEYS.items():
        lines.append(f"| `{key}` | {doc} |")
    lines += ["", "A service's `[services.fault_detection]`, `[services.circuit_breaker]` and "
              "`[services.recovery]` tables override the global sections key by key.", ""]
    lines += ["`depends_on` ids must name services of the same file; a cycle is refused at load, named "
              "(`dependency cycle: a -> b -> a`).", ""]
    lines += ["## [[notify]]", "",
              "One table per notification channel, delivered with [apprise](https://github.com/caronc/apprise/wiki) "
              "(mail, ntfy, Slack, Teams, Telegram, Matrix, JSON webhooks, ...). Alerts are sent when they fire, "
              "resolve or escalate. Without filters a channel gets every alert at or above `min_severity`.", ""]
    lines += _settings_table(NotifyConfig)
    lines += ["## [[maintenance]]", "",
              "Scheduled maintenance windows: alerts and automatic recovery are held inside, checks go on.", ""]
    lines += _settings_table(MaintenanceWindowConfig)
    lines += ["## Check types", "",
              "`check = { type = \"...\", ... }` on a service; the timeout, interval and slow threshold are "
              "the service's `[fault_detection]` keys for every type.", ""]
    for name, ct in check_types().items():
        lines += [f"### type = \"{name}\"", "", ct.doc, ""]
        lines += _settings_table(ct.settings)
    lines += ["## Restart actions of protocol modules", "",
              "`restart = { <action> = { ... } }` beside `http` and `command`.", ""]
    for name, rt in restart_types().items():
        lines += [f"### {name}", "", rt.doc, ""]
        lines += _settings_table(rt.settings)
    return "\n".join(lines)


def _settings_table(cls: type) -> list[str]:
    hints = typing.get_type_hints(cls)
    out = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        shown = "required" if f.metadata.get("required") else (
            "–" if default is None or default == () else _default_label(default))
        out.append(f"| `{f.name}` | {_type_label(hints[f.name])} | {shown} | {f.metadata.get('doc', '')} |")
    out.append("")
    return out


def summary(config: Config) -> str:
    """The short human summary printed by `faultwatch --check-config`."""
    fd, cb, rc = config.fault_detection, config.circuit_breaker, config.recovery
    groups: dict[str, int] = {}
    for s in config.services:
        groups[s.group] = groups.get(s.group, 0) + 1
    out = [f"{config.source or 'config'}: OK, {len(config.services)} services in {len(groups)} groups"]
    for g, n in sorted(groups.items()):
        out.append(f"  group {g}: {n} services")
    out.append(f"  checks every {fd.check_interval_seconds:g}s, timeout {fd.timeout_seconds:g}s, "
               f"slow > {fd.slow_response_threshold_ms:g} ms, failed after {fd.max_failures}")
    out.append(f"  breaker opens after {cb.failure_threshold} failures ({cb.window}), "
               f"half-open after {cb.timeout_seconds:g}s, closes after {cb.success_threshold} successes")
    out.append(f"  restarts: up to {rc.max_restart_attempts}, {rc.restart_backoff_strategy} "
               f"{rc.restart_base_delay_seconds:g}..{rc.restart_max_delay_seconds:g}s, "
               f"storm guard {rc.storm_max_restarts}/{rc.storm_period_seconds:g}s")
    children = [s for s in config.services if s.depends_on]
    if children:
        parents = {p for s in children for p in s.depends_on}
        out.append(f"  dependencies: {len(children)} services behind {len(parents)} parents")
    if config.notify:
        names = [n.name or (f"${n.url_env}" if n.url_env else urlsplit(n.url).scheme + "://...")
                 for n in config.notify]
        out.append(f"  notify: {len(names)} channels ({', '.join(names)})")
    if config.maintenance:
        out.append(f"  maintenance: {len(config.maintenance)} scheduled windows")
    overridden = [s.id for s in config.services
                  if any(getattr(s, n) != getattr(config, n) for n in OVERRIDABLE)]
    if overridden:
        out.append(f"  per-service overrides: {', '.join(overridden[:10])}"
                   + (f" (+{len(overridden) - 10} more)" if len(overridden) > 10 else ""))
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:] == ["--docs"]:
        sys.stdout.write(render_docs())
