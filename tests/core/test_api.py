"""The HTTP listener against a fake engine: real sockets on port 0, a real aiohttp client."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import AsyncIterator, Sequence

import aiohttp
import psutil  # type: ignore[import-untyped]
import pytest

from core import __version__
from core.api import ApiServer, escape_label_value
from core.events import BreakerState, Event, ServiceStatus
from core.snapshot import AlertView, BreakerView, CommandResult, EngineStats, ServiceSnapshot
from core.token import load_or_create_token, redact

TOKEN = "s3cret-T0ken-for-tests_xyz"
WEIRD_ID = 'a"b\\c'
VERBS = {
    "force-open": "force_open",
    "force-close": "force_close",
    "reset": "reset",
    "restart": "restart",
    "pause": "pause",
    "resume": "resume",
}


def make_snapshot(service_id: str, *, group: str = "core", status: ServiceStatus = ServiceStatus.HEALTHY,
                  breaker: BreakerState = BreakerState.CLOSED, p50: float | None = 12.5,
                  p95: float | None = 40.0, last: float | None = 11.0) -> ServiceSnapshot:
    return ServiceSnapshot(
        id=service_id, name=service_id.upper(), group=group, endpoint="http://10.0.0.1:80",
        active_endpoint="http://10.0.0.1:80", active_endpoint_index=0, status=status, failed=False,
        consecutive_failures=2 if status is ServiceStatus.UNHEALTHY else 0, last_latency_ms=last,
        p50_ms=p50, p95_ms=p95, last_check_wall=1_700_000_000.0, last_ok_wall=None, last_error=None,
        stale=False,
        breaker=BreakerView(state=breaker, consecutive_failures=0, half_open_in_flight=0,
                            half_open_max_calls=1, half_open_successes=0, success_threshold=2,
                            failure_threshold=5, reopen_in_s=None),
        recovery=None, paused=False, maintenance=False, maintenance_until_wall=None, heartbeat="",
        storm_tripped=False, slow_threshold_ms=500.0, timeout_ms=2000.0, check_interval_s=5.0,
        restart_action="", checks_total=42, restarts_total=3, latencies_ms=(10.0, float("nan"), 12.0),
    )


class FakeControl:
    """EngineControl with canned reads; records every command call."""

    def __init__(self) -> None:
        self.services = {
            "web": make_snapshot("web", group="front"),
            "db": dataclasses.replace(make_snapshot("db", status=ServiceStatus.UNHEALTHY, breaker=BreakerState.OPEN),
                                      maintenance=True),
            "cam": make_snapshot("cam", status=ServiceStatus.UNKNOWN, p50=None, p95=None, last=None),
            WEIRD_ID: make_snapshot(WEIRD_ID, group='g"\n\\', breaker=BreakerState.FORCED_CLOSED),
        }
        self.alert_list = [AlertView(id="al-1", rule="down", service="db", group="core", severity="critical",
                                     message="db is down", active=True, acknowledged=False,
                                     silenced_until_wall=None, first_wall=1.0, last_wall=2.0, count=1)]
        self.calls: list[tuple[str, list[str], str]] = []
        self.result = CommandResult(True, "done")
        self.raise_on_snapshots = False

    async def _command(self, name: str, ids: Sequence[str], origin: str) -> CommandResult:
        self.calls.append((name, list(ids), origin))
        return self.result

    async def force_open(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._command("force_open", service_ids, origin)

    async def force_close(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._command("force_close", service_ids, origin)

    async def reset(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._command("reset", service_ids, origin)

    async def restart(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._command("restart", service_ids, origin)

    async def pause(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._command("pause", service_ids, origin)

    async def resume(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._command("resume", service_ids, origin)

    async def acknowledge(self, alert_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._command("acknowledge", alert_ids, origin)

    async def maintenance(self, targets: Sequence[str], on: bool, origin: str,
                          until_wall: float | None = None) -> CommandResult:
        return await self._command(f"maintenance_{'on' if on else 'off'}", targets, origin)

    async def reload(self, path: str, origin: str) -> CommandResult:
        return await self._command("reload", [path], origin)

    async def silence(self, alert_ids: Sequence[str], seconds: float, origin: str) -> CommandResult:
        return await self._command("silence", alert_ids, origin)

    async def latency_history(self, service_id: str, since_wall: float,
                              rollup: bool = False) -> list[tuple[float, float | None]]:
        return []

    async def journal_events(self, service_id: str | None = None, limit: int = 1000) -> list[Event]:
        return []

    def snapshots(self) -> dict[str, ServiceSnapshot]:
        if self.raise_on_snapshots:
            raise RuntimeError("boom: snapshot store corrupted")
        return dict(self.services)

    def stats(self) -> EngineStats:
        return EngineStats(checks_total=168, checks_per_second=3.25, loop_lag_ms=0.75, services=4,
                           events_total=9)

    def alerts(self) -> list[AlertView]:
        return list(self.alert_list)

    def drain_events(self) -> list[Event]:
        return []


class Beats:
    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.seen: list[str] = []

    def __call__(self, service_id: str) -> bool:
        self.seen.append(service_id)
        return service_id in self.known


@pytest.fixture
def control() -> FakeControl:
    return FakeControl()


@pytest.fixture
def beats() -> Beats:
    return Beats({"cam"})


@pytest.fixture
async def server(control: FakeControl, beats: Beats) -> AsyncIterator[ApiServer]:
    srv = ApiServer(control, beats, TOKEN, port=0)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- heartbeats

async def test_heartbeat_known_service_204(server: ApiServer, session: aiohttp.ClientSession,
                                           beats: Beats, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with session.post(f"{server.url}/heartbeat/cam") as r:
        assert r.status == 204
    assert beats.seen == ["cam"]
    # Hot path: not even a DEBUG line per beat.
    assert not [r for r in caplog.records if r.name.startswith("core.api")]


async def test_heartbeat_unknown_service_404(server: ApiServer, session: aiohttp.ClientSession,
                                             beats: Beats) -> None:
    async with session.post(f"{server.url}/heartbeat/nope") as r:
        assert r.status == 404
        assert await r.json() == {"error": "unknown service 'nope'"}
    assert beats.seen == ["nope"]


async def test_heartbeat_needs_no_token_but_get_is_not_allowed(server: ApiServer,
                                                               session: aiohttp.ClientSession) -> None:
    async with session.get(f"{server.url}/heartbeat/cam") as r:
        assert r.status == 405
        assert r.content_type == "application/json"
        assert "POST" in r.headers["Allow"]
        assert await r.json() == {"error": "method not allowed"}


# ---------------------------------------------------------------- metrics

_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def _unescape(value: str) -> str:
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def parse_metrics(text: str) -> tuple[list[tuple[str, dict[str, str], float]], dict[str, str], set[str]]:
    """A strict little parser: every non-comment line must be `name{labels} value`."""
    samples: list[tuple[str, dict[str, str], float]] = []
    types: dict[str, str] = {}
    helps: set[str] = set()
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split(" ")[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        assert not line.startswith("#"), line
        m = _SAMPLE_RE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, raw_labels, raw_value = m.groups()
        labels: dict[str, str] = {}
        if raw_labels:
            pos = 0
            while pos < len(raw_labels):
                lm = _LABEL_RE.match(raw_labels, pos)
                assert lm, f"bad labels in {line!r}"
                labels[lm.group(1)] = _unescape(lm.group(2))
                pos = lm.end()
        samples.append((name, labels, float(raw_value)))
    return samples, types, helps


async def test_metrics_format(server: ApiServer, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{server.url}/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await r.text()
    samples, types, helps = parse_metrics(text)
    names = {name for name, _, _ in samples}
    assert names == {"faultwatch_build_info", "faultwatch_up", "faultwatch_maintenance",
                     "faultwatch_latency_p50_seconds", "faultwatch_latency_p95_seconds",
                     "faultwatch_last_latency_seconds", "faultwatch_breaker_state", "faultwatch_restarts_total",
                     "faultwatch_checks_total", "faultwatch_consecutive_failures", "faultwatch_services",
                     "faultwatch_events_total", "faultwatch_checks_per_second", "faultwatch_loop_lag_seconds"}
    assert names <= helps and names <= set(types)
    # Prometheus conventions: counters and only counters end in _total; no millisecond units.
    assert {n for n in names if types[n] == "counter"} == {n for n in names if n.endswith("_total")}
    assert not [n for n in names if n.endswith("_ms") or "_ms_" in n]
    assert types["faultwatch_up"] == "gauge"

    def value(name: str, **labels: str) -> float:
        found = [v for n, lb, v in samples if n == name and all(lb.get(k) == x for k, x in labels.items())]
        assert len(found) == 1, (name, labels, found)
        return found[0]

    assert value("faultwatch_build_info", version=__version__) == 1
    assert value("faultwatch_up", service="web", group="front") == 1
    assert value("faultwatch_up", service="db") == 0
    assert value("faultwatch_up", service="cam") == -1
    assert value("faultwatch_maintenance", service="web") == 0
    assert value("faultwatch_maintenance", service="db") == 1
    # Milliseconds inside the engine, seconds on the wire.
    assert value("faultwatch_latency_p50_seconds", service="web", group="front") == pytest.approx(0.0125)
    assert value("faultwatch_latency_p95_seconds", service="web") == pytest.approx(0.040)
    assert value("faultwatch_last_latency_seconds", service="web") == pytest.approx(0.011)
    # No measurement yet: no latency sample, rather than a made-up one.
    assert not [1 for n, lb, _ in samples if "latency" in n and lb["service"] == "cam"]
    assert value("faultwatch_restarts_total", service="db") == 3
    assert value("faultwatch_checks_total", service="db") == 42
    assert value("faultwatch_consecutive_failures", service="db") == 2
    assert value("faultwatch_services") == 4
    assert value("faultwatch_events_total") == 9
    assert value("faultwatch_checks_per_second") == 3.25
    assert value("faultwatch_loop_lag_seconds") == pytest.approx(0.00075)


async def test_metrics_breaker_state_is_one_hot(server: ApiServer, session: aiohttp.ClientSession,
                                                control: FakeControl) -> None:
    async with session.get(f"{server.url}/metrics") as r:
        samples, _, _ = parse_metrics(await r.text())
    for service_id, snap in control.services.items():
        states = {lb["state"]: v for n, lb, v in samples
                  if n == "faultwatch_breaker_state" and lb["service"] == service_id}
        assert set(states) == {s.value for s in BreakerState}
        assert sum(states.values()) == 1
        assert states[snap.breaker.state.value] == 1


async def test_metrics_label_escaping(server: ApiServer, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{server.url}/metrics") as r:
        text = await r.text()
    assert 'service="a\\"b\\\\c"' in text
    assert 'group="g\\"\\n\\\\"' in text
    samples, _, _ = parse_metrics(text)  # a raw newline in a label would break the line format
    ups = [lb for n, lb, _ in samples if n == "faultwatch_up" and lb["service"] == WEIRD_ID]
    assert ups == [{"service": WEIRD_ID, "group": 'g"\n\\'}]


def test_escape_label_value_order() -> None:
    # Backslash first, or the backslashes added for quotes would be doubled.
    assert escape_label_value('\\"\n') == '\\\\\\"\\n'


# ---------------------------------------------------------------- JSON reads

async def test_services_json(server: ApiServer, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{server.url}/api/services") as r:
        assert r.status == 200
        assert r.content_type == "application/json"
        raw = await r.text()
    assert "NaN" not in raw  # strict JSON
    body = json.loads(raw)
    assert [s["id"] for s in body] == ["web", "db", "cam", WEIRD_ID]
    db = body[1]
    assert db["status"] == "unhealthy"
    assert db["breaker"]["state"] == "open"
    assert db["latencies_ms"] == [10.0, None, 12.0]
    assert db["recovery"] is None


async def test_one_service_and_404(server: ApiServer, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{server.url}/api/services/web") as r:
        assert r.status == 200
        body = await r.json()
        assert body["id"] == "web" and body["group"] == "front" and body["status"] == "healthy"
    async with session.get(f"{server.url}/api/services/nope") as r:
        assert r.status == 404
        assert await r.json() == {"error": "unknown service 'nope'"}


async def test_alerts_json(server: ApiServer, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{server.url}/api/alerts") as r:
        assert r.status == 200
        body = await r.json()
    assert body == [{"id": "al-1", "rule": "down", "service": "db", "group": "core", "severity": "critical",
                     "message": "db is down", "active": True, "acknowledged": False,
                     "silenced_until_wall": None, "first_wall": 1.0, "last_wall": 2.0, "count": 1}]


async def test_unknown_path_404_json(server: ApiServer, session: aiohttp.ClientSession) -> None:
    for method, path in (("GET", "/"), ("GET", "/nope"), ("POST", "/api/services/web/restart/now"),
                         ("GET", "/api/services/web/restart/now")):
        async with session.request(method, f"{server.url}{path}") as r:
            assert r.status == 404, path
            assert r.content_type == "application/json"
            assert await r.json() == {"error": "not found"}


# ---------------------------------------------------------------- commands and auth

@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": "Bearer "},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": "Bearer tökén"},
], ids=["none", "wrong", "basic-scheme", "empty", "longer", "non-ascii"])
async def test_commands_need_the_token(server: ApiServer, session: aiohttp.ClientSession,
                                       control: FakeControl, headers: dict[str, str]) -> None:
    for path in ("/api/services/web/restart", "/api/alerts/al-1/acknowledge",
                 "/api/services/nope/restart", "/api/services/web/bogus"):
        async with session.post(f"{server.url}{path}", headers=headers) as r:
            assert r.status == 401, path
            assert r.headers["WWW-Authenticate"] == "Bearer"
            assert await r.json() == {"error": "missing or wrong bearer token"}
    assert control.calls == []


@pytest.mark.parametrize("verb", sorted(VERBS))
async def test_command_with_token(server: ApiServer, session: aiohttp.ClientSession, control: FakeControl,
                                  verb: str) -> None:
    async with session.post(f"{server.url}/api/services/db/{verb}", headers=auth()) as r:
        assert r.status == 200
        assert await r.json() == {"ok": True, "message": "done"}
    assert control.calls == [(VERBS[verb], ["db"], "api")]


@pytest.mark.parametrize(("verb", "called"), [("maintenance-on", "maintenance_on"),
                                              ("maintenance-off", "maintenance_off")])
async def test_maintenance_with_token(server: ApiServer, session: aiohttp.ClientSession, control: FakeControl,
                                      verb: str, called: str) -> None:
    async with session.post(f"{server.url}/api/services/db/{verb}") as r:
        assert r.status == 401
    async with session.post(f"{server.url}/api/services/db/{verb}", headers=auth()) as r:
        assert r.status == 200
    assert control.calls == [(called, ["db"], "api")]


async def test_bearer_scheme_is_case_insensitive(server: ApiServer, session: aiohttp.ClientSession,
                                                 control: FakeControl) -> None:
    async with session.post(f"{server.url}/api/services/db/reset",
                            headers={"Authorization": f"bearer {TOKEN}"}) as r:
        assert r.status == 200
    assert control.calls == [("reset", ["db"], "api")]


async def test_command_with_odd_service_id(server: ApiServer, session: aiohttp.ClientSession,
                                           control: FakeControl) -> None:
    from urllib.parse import quote
    async with session.post(f"{server.url}/api/services/{quote(WEIRD_ID, safe='')}/pause",
                            headers=auth()) as r:
        assert r.status == 200
    assert control.calls == [("pause", [WEIRD_ID], "api")]


async def test_failed_command_409(server: ApiServer, session: aiohttp.ClientSession,
                                  control: FakeControl) -> None:
    control.result = CommandResult(False, "no restart action configured")
    async with session.post(f"{server.url}/api/services/web/restart", headers=auth()) as r:
        assert r.status == 409
        assert await r.json() == {"ok": False, "message": "no restart action configured"}
    assert control.calls == [("restart", ["web"], "api")]


async def test_command_404s(server: ApiServer, session: aiohttp.ClientSession, control: FakeControl) -> None:
    async with session.post(f"{server.url}/api/services/nope/restart", headers=auth()) as r:
        assert r.status == 404
        assert await r.json() == {"error": "unknown service 'nope'"}
    async with session.post(f"{server.url}/api/services/web/explode", headers=auth()) as r:
        assert r.status == 404
        assert await r.json() == {"error": "unknown command 'explode'"}
    async with session.post(f"{server.url}/api/alerts/al-9/acknowledge", headers=auth()) as r:
        assert r.status == 404
        assert await r.json() == {"error": "unknown alert 'al-9'"}
    assert control.calls == []


async def test_acknowledge(server: ApiServer, session: aiohttp.ClientSession, control: FakeControl) -> None:
    async with session.post(f"{server.url}/api/alerts/al-1/acknowledge", headers=auth()) as r:
        assert r.status == 200
        assert await r.json() == {"ok": True, "message": "done"}
    assert control.calls == [("acknowledge", ["al-1"], "api")]


async def test_handler_exception_500_without_traceback(server: ApiServer, session: aiohttp.ClientSession,
                                                       control: FakeControl,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    control.raise_on_snapshots = True
    for path in ("/metrics", "/api/services", "/api/services/web"):
        async with session.get(f"{server.url}{path}") as r:
            assert r.status == 500
            assert r.content_type == "application/json"
            raw = await r.text()
        assert json.loads(raw) == {"error": "internal error"}
        assert "Traceback" not in raw and "boom" not in raw and "RuntimeError" not in raw
    failures = [r for r in caplog.records if r.name == "core.api" and r.levelno == logging.ERROR]
    assert len(failures) == 3 and all(r.exc_info for r in failures)


# ---------------------------------------------------------------- binding and lifecycle

async def test_binds_loopback_by_default(control: FakeControl, beats: Beats) -> None:
    srv = ApiServer(control, beats, TOKEN, port=0)
    await srv.start()
    try:
        assert srv.port != 0
        assert srv.url == f"http://127.0.0.1:{srv.port}"
        listening = [c.laddr for c in psutil.Process().net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == srv.port]
        assert listening and all(addr.ip == "127.0.0.1" for addr in listening)
    finally:
        await srv.stop()
    await srv.stop()  # idempotent


async def test_stop_then_port_is_free(control: FakeControl, beats: Beats,
                                      session: aiohttp.ClientSession) -> None:
    srv = ApiServer(control, beats, TOKEN, port=0)
    await srv.start()
    url = srv.url
    await srv.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with session.get(f"{url}/metrics"):
            pass


def test_rejects_empty_token_and_host(control: FakeControl, beats: Beats) -> None:
    with pytest.raises(ValueError):
        ApiServer(control, beats, "")
    with pytest.raises(ValueError):
        ApiServer(control, beats, TOKEN, host="")


# ---------------------------------------------------------------- the token

def test_token_file_created_0600_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FW_TEST_TOKEN", raising=False)
    token, where = load_or_create_token("FW_TEST_TOKEN", tmp_path)
    path = tmp_path / "api-token"
    assert where == str(path)
    assert len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == token
    again, _ = load_or_create_token("FW_TEST_TOKEN", tmp_path)
    assert again == token


def test_token_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FW_TEST_TOKEN", "from-env")
    assert load_or_create_token("FW_TEST_TOKEN", tmp_path) == ("from-env", "$FW_TEST_TOKEN")
    assert not (tmp_path / "api-token").exists()
    monkeypatch.setenv("FW_TEST_TOKEN", "")  # set but empty: falls back to the file
    token, where = load_or_create_token("FW_TEST_TOKEN", tmp_path)
    assert where == str(tmp_path / "api-token") and token


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_loose_token_file_tightened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("FW_TEST_TOKEN", raising=False)
    path = tmp_path / "api-token"
    path.write_text("old-token-value\n")
    path.chmod(0o644)
    caplog.set_level(logging.DEBUG)
    assert load_or_create_token("FW_TEST_TOKEN", tmp_path) == ("old-token-value", str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "core.api"]
    assert len(warnings) == 1 and "0644" in warnings[0].getMessage()
    assert "old-token-value" not in caplog.text


def test_empty_token_file_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FW_TEST_TOKEN", raising=False)
    (tmp_path / "api-token").write_text("")
    (tmp_path / "api-token").chmod(0o600)
    token, _ = load_or_create_token("FW_TEST_TOKEN", tmp_path)
    assert token and (tmp_path / "api-token").read_text().strip() == token


def test_redact() -> None:
    assert redact("token abc and abcdef here", ["abc", "abcdef", ""]) == "token *** and *** here"
    assert redact("nothing", []) == "nothing"


async def test_token_never_logged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, control: FakeControl,
                                  beats: Beats, session: aiohttp.ClientSession,
                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # everything, every logger, including aiohttp's own
    monkeypatch.delenv("FW_TEST_TOKEN", raising=False)
    token, _ = load_or_create_token("FW_TEST_TOKEN", tmp_path)
    srv = ApiServer(control, beats, token, port=0)
    await srv.start()
    try:
        async with session.post(f"{srv.url}/api/services/web/restart", headers=auth(token + "x")) as r:
            assert r.status == 401
        async with session.post(f"{srv.url}/api/services/web/restart", headers=auth(token)) as r:
            assert r.status == 200
        control.result = CommandResult(False, "refused")
        async with session.post(f"{srv.url}/api/services/web/restart", headers=auth(token)) as r:
            assert r.status == 409
        async with session.post(f"{srv.url}/api/services/nope/restart", headers=auth(token)) as r:
            assert r.status == 404
        control.raise_on_snapshots = True
        async with session.post(f"{srv.url}/api/services/web/restart", headers=auth(token)) as r:
            assert r.status == 500
    finally:
        await srv.stop()
    assert caplog.records  # the run did log something
    for record in caplog.records:
        assert token not in record.getMessage()
    assert token not in caplog.text
    assert any(r.levelno == logging.DEBUG and r.name == "core.api.access" for r in caplog.records)


def test_token_from_the_os_keyring_when_the_environment_has_none(tmp_path, monkeypatch) -> None:
    import sys
    import types

    from core import token as token_mod

    fake = types.ModuleType("keyring")
    fake.get_password = lambda service, user: "from-keyring" if (service, user) == ("faultwatch", "api-token") else None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keyring", fake)
    monkeypatch.delenv("FW_TEST_TOKEN", raising=False)
    value, where = token_mod.load_or_create_token("FW_TEST_TOKEN", tmp_path)
    assert value == "from-keyring" and "keyring" in where
    assert not (tmp_path / token_mod.TOKEN_FILENAME).exists()
    monkeypatch.setenv("FW_TEST_TOKEN", "env-wins")
    assert token_mod.load_or_create_token("FW_TEST_TOKEN", tmp_path)[0] == "env-wins"


async def test_metrics_pass_promtool_lint(server: ApiServer, session: aiohttp.ClientSession) -> None:
    # Prometheus' own linter: base units, _total on counters only, HELP for every family, no
    # "quantile" label outside a summary. The fake engine's services cover every value shape
    # (unknown status, no latency yet, odd label characters).
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    async with session.get(f"{server.url}/metrics") as r:
        text = await r.text()
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
