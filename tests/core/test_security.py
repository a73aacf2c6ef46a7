"""Security rules, each tested so that breaking the rule fails the test.

* Restart commands never pass through a shell: shell metacharacters arrive verbatim and run nothing.
* The API token comes from the environment or a 0600 file, and never appears in logs (DEBUG, a whole
  engine run with API calls), in the journal's bytes, or in a CSV export; nor does the webhook token.
* The API refuses mutating calls without the token (401), and binds to loopback by default.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import secrets
import stat
import sys
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import psutil  # type: ignore[import-untyped]
import pytest
from aiohttp import web

from core.checks.base import CheckContext
from core.actions import run_action
from core.clock import SystemClock
from core.config import CommandRestart, JournalConfig, load_config, parse_config, parse_listen
from core.events import ActionEvent, AlertEvent
from core.journal import Journal
from core.paths import JOURNAL_FILENAME
from core.probe import make_session
from core.runtime import Runtime
from core.sim.devices import DeviceSpec
from core.sim.server import SimServer
from core.token import TOKEN_FILENAME

pytestmark = pytest.mark.timeout(60)

# The argument echo: writes its argv (after -c) as JSON to the file named by its first argument.
ECHO = "import sys, json; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"


def _hostile_args(d: Path) -> list[str]:
    return [
        f"; touch {d}/semicolon",
        f"$(touch {d}/dollar)",
        f"`touch {d}/backtick`",
        f"&& touch {d}/and",
        f"| touch {d}/pipe",
        f"|| touch {d}/or",
        f"> {d}/redirect",
        f"\ntouch {d}/newline",
        "$HOME ~ * ?",
        "'\"\\",
        "",
        "--flag=a b",
    ]


async def test_command_restart_never_uses_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    hostile = _hostile_args(tmp_path)
    session = make_session()
    try:
        result = await run_action(CommandRestart((sys.executable, "-c", ECHO, str(out), *hostile)), CheckContext(session), 30.0)
    finally:
        await session.close()
    assert result.ok, result.detail
    assert json.loads(out.read_text()) == hostile, "arguments must arrive verbatim, one argv item each"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["argv.json"], "a shell ran something"


async def test_command_from_a_config_file_never_uses_a_shell(tmp_path: Path) -> None:
    # The same through the config loader, as an operator would write it in TOML.
    out = tmp_path / "argv.json"
    hostile = _hostile_args(tmp_path)
    argv = [sys.executable, "-c", ECHO, str(out), *hostile]
    text = ('[[services]]\nid = "plc-1"\nendpoint = "http://127.0.0.1:9"\n'
            f"restart = {{ command = {json.dumps(argv)} }}\n")
    config = parse_config(text)
    action = config.services[0].restart
    assert isinstance(action, CommandRestart)
    session = make_session()
    try:
        result = await run_action(action, CheckContext(session), 30.0)
    finally:
        await session.close()
    assert result.ok, result.detail
    assert json.loads(out.read_text()) == hostile
    assert sorted(p.name for p in tmp_path.iterdir()) == ["argv.json"]


async def test_a_program_name_with_metacharacters_is_not_interpreted(tmp_path: Path) -> None:
    # argv[0] is a file name, not a command line: "true; touch x" is a program that does not exist.
    marker = tmp_path / "ran"
    session = make_session()
    try:
        result = await run_action(CommandRestart((f"true; touch {marker}",)), CheckContext(session), 10.0)
    finally:
        await session.close()
    assert not result.ok and result.detail.startswith("cannot run")
    assert not marker.exists()


# ---------------------------------------------------------------- a headless-like run with API calls

API_ENV = "FW_TEST_API_TOKEN"
HOOK_ENV = "FW_TEST_HOOK_TOKEN"


@pytest.fixture
async def hook_receiver() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A webhook receiver on loopback; records each request's headers."""
    seen: list[dict[str, str]] = []

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        seen.append(dict(request.headers))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", seen
    await runner.cleanup()


async def _wait_for(predicate: object, timeout_s: float = 15.0) -> None:
    """Bounded wait on real sockets (not a timing rule)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def _scan_logs(records: list[logging.LogRecord], secret: str) -> list[str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    hits = []
    for r in records:
        text = formatter.format(r) + repr(r.args) + repr(r.__dict__.get("exc_text"))
        if secret in text:
            hits.append(text[:300])
    return hits


@pytest.mark.parametrize("token_source", ["env", "file"])
async def test_tokens_never_reach_logs_journal_or_csv(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        hook_receiver: tuple[str, list[dict[str, str]]], token_source: str) -> None:
    hook_url, hook_seen = hook_receiver
    hook_token = "hook-" + secrets.token_urlsafe(24)
    monkeypatch.setenv(HOOK_ENV, hook_token)
    if token_source == "env":
        api_token = "api-" + secrets.token_urlsafe(24)
        monkeypatch.setenv(API_ENV, api_token)
    else:
        monkeypatch.delenv(API_ENV, raising=False)
    caplog.set_level(logging.DEBUG)

    state = tmp_path / "state"
    sim = SimServer([DeviceSpec("ok"), DeviceSpec("dead", "down", sticky=True, reboot_s=0.1)])
    await sim.start()
    config_path = tmp_path / "rack.toml"
    config_path.write_text(f"""
[fault_detection]
check_interval_seconds = 0.2
timeout_seconds = 2
max_failures = 1
jitter_fraction = 0

[recovery]
restart_base_delay_seconds = 0
restart_max_delay_seconds = 0
verify_timeout_seconds = 1

[alerts]
unhealthy_for_seconds = 0
webhook_url = "{hook_url}"
webhook_token_env = "{HOOK_ENV}"
webhook_retries = 0

[api]
listen = "127.0.0.1:0"
token_env = "{API_ENV}"

[[services]]
id = "ok"
endpoint = "{sim.base_url('ok')}"

[[services]]
id = "dead"
endpoint = "{sim.base_url('dead')}"
restart = {{ http = {{ url = "{sim.base_url('dead')}/restart" }} }}
""", encoding="utf-8")
    runtime = Runtime(str(config_path), state_dir=str(state))
    try:
        engine = await runtime.start()
        assert runtime.api is not None
        if token_source == "file":
            token_file = state / TOKEN_FILENAME
            api_token = token_file.read_text().strip()
            assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
            assert runtime.token_where == str(token_file)
        else:
            assert runtime.token_where == f"${API_ENV}"
            assert not (state / TOKEN_FILENAME).exists(), "an env token must not be written to disk"
        base = runtime.api.url
        auth = {"Authorization": f"Bearer {api_token}"}
        async with aiohttp.ClientSession() as client:
            async def post(path: str, headers: dict[str, str] | None = None) -> int:
                async with client.post(base + path, headers=headers) as resp:
                    await resp.read()
                    return resp.status

            assert await post("/api/services/dead/restart") == 401
            assert await post("/api/services/dead/restart", {"Authorization": "Bearer nope"}) == 401
            assert await post("/api/services/dead/restart", {"Authorization": f"Bearer {api_token}x"}) == 401
            assert await post("/api/services/dead/restart", {"Authorization": api_token}) == 401
            assert await post("/api/services/ok/force-open", auth) == 200
            assert await post("/api/services/ok/reset", auth) == 200
            # A token in the query string (a careless script) must not be logged either.
            assert await post(f"/api/services/ok/pause?token={api_token}", auth) == 200
            assert await post(f"/api/services/ok/resume?token={api_token}", auth) == 200
            assert await post("/api/services/dead/restart", auth) in (200, 409)
            for path in ("/metrics", "/api/services", "/api/alerts", f"/api/services/ok?token={api_token}"):
                async with client.get(base + path, headers=auth) as resp:
                    await resp.read()
                    assert resp.status == 200
        # Let the dead device fail, alert (through the webhook, with its token) and get restarted.
        await _wait_for(lambda: len(hook_seen) >= 1 and engine.services["dead"].recovery.restarts_total >= 1)
        journal_path = engine.journal.path
    finally:
        await runtime.stop()
        await sim.stop()

    # The tokens were really in play: the webhook got its bearer token, the API accepted ours.
    assert hook_seen[0].get("Authorization") == f"Bearer {hook_token}"
    records = list(caplog.records)
    assert any(r.name == "core.api.access" for r in records), "the DEBUG access log did not run"
    assert _scan_logs(records, api_token) == []
    assert _scan_logs(records, hook_token) == []

    # The journal, byte for byte (main file and any WAL/SHM left).
    db_files = [p for p in journal_path.parent.iterdir() if p.name.startswith(JOURNAL_FILENAME)]
    assert db_files
    for p in db_files:
        data = p.read_bytes()
        assert api_token.encode() not in data, p.name
        assert hook_token.encode() not in data, p.name

    journal = Journal.open(journal_path, JournalConfig(), SystemClock())
    try:
        events = journal.events(limit=None)
    finally:
        journal.close()
    assert any(isinstance(e, ActionEvent) and e.origin == "api" for e in events)
    assert any(isinstance(e, AlertEvent) for e in events)
    for e in events:
        blob = json.dumps(e.to_record())
        assert api_token not in blob and hook_token not in blob

    # The CSV export (gui/timeline.py's export_csv; its module needs PySide6).
    try:
        from gui.timeline import export_csv
    except ImportError as exc:  # pragma: no cover - PySide6 missing
        pytest.skip(f"gui.timeline cannot be imported ({exc}); CSV export not scanned")
    csv_path = tmp_path / "timeline.csv"
    assert export_csv(events, csv_path) == len(events)
    text = csv_path.read_text(encoding="utf-8")
    assert api_token not in text and hook_token not in text


# ---------------------------------------------------------------- the listener

async def test_default_api_listen_is_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A config with no [api] section: the default listen address, bound for real.
    config_path = tmp_path / "plain.toml"
    config_path.write_text('[[services]]\nid = "x"\nendpoint = "http://127.0.0.1:9"\n', encoding="utf-8")
    config = load_config(config_path)
    host, port = parse_listen(config.api.listen)
    assert host == "127.0.0.1" and config.api.enabled
    monkeypatch.setenv(config.api.token_env, "t-" + secrets.token_urlsafe(16))
    runtime = Runtime(str(config_path), state_dir=str(tmp_path / "state"))
    try:
        try:
            await runtime.start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                pytest.skip(f"the default API port {port} is in use on this machine")
            raise
        assert runtime.api is not None and runtime.api.port == port
        listening = [c for c in psutil.Process().net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
        assert listening, "no listening socket on the default port"
        assert {c.laddr.ip for c in listening} <= {"127.0.0.1", "::1"}, listening
        # And a client on loopback is refused without the token.
        async with aiohttp.ClientSession() as client:
            async with client.post(f"{runtime.api.url}/api/services/x/force-open") as resp:
                assert resp.status == 401
                assert resp.headers.get("WWW-Authenticate") == "Bearer"
    finally:
        await runtime.stop()


async def test_token_file_is_created_0600_in_a_0700_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.token import load_or_create_token

    monkeypatch.delenv(API_ENV, raising=False)
    state = tmp_path / "new-state"
    token, where = load_or_create_token(API_ENV, state)
    assert where == str(state / TOKEN_FILENAME)
    assert stat.S_IMODE((state / TOKEN_FILENAME).stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert len(token) >= 32
    # The same token on the next start; the environment wins over the file when set.
    assert load_or_create_token(API_ENV, state)[0] == token
    monkeypatch.setenv(API_ENV, "from-env")
    assert load_or_create_token(API_ENV, state) == ("from-env", f"${API_ENV}")
    # A file someone loosened is tightened again before use.
    monkeypatch.delenv(API_ENV)
    os.chmod(state / TOKEN_FILENAME, 0o644)
    assert load_or_create_token(API_ENV, state)[0] == token
    assert stat.S_IMODE((state / TOKEN_FILENAME).stat().st_mode) == 0o600
