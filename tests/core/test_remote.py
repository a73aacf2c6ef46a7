"""An attached console's view of a real engine: Runtime (engine + API over TLS) and RemoteEngine on
loopback, a simulated rack, tokens for both roles. Also the wire codec and the composite."""

from __future__ import annotations

import asyncio
import json
import dataclasses
import math
import time
from pathlib import Path
from typing import AsyncIterator, Callable

import aiohttp
import pytest

from core.api_auth import ApiSecurity, Gate, is_loopback
from core.clock import FakeClock
from core.config import ConfigError, parse_config
from core.events import ActionEvent, BreakerState, ProbeEvent, ServiceStatus
from core.multi import MultiEngine
from core.remote import RemoteEngine
from core.wire import UNREACHABLE
from core.runtime import Runtime
from core.sim.devices import DeviceSpec
from core.sim.server import SimServer
from core.snapshot import BreakerView, EngineStats, ServiceSnapshot
from core.wire import WireError, event_from_wire, event_to_wire, snapshot_from_wire, snapshot_to_wire, to_wire
from tests.tls_helpers import TlsFiles, make_tls_files

OPERATOR = "operator-token-for-remote-tests"
VIEWER = "viewer-token-for-remote-tests"


async def wait_for(cond: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def site_toml(server: SimServer, tls: TlsFiles | None, *, site: str = "site-a", extra_api: str = "") -> str:
    api = ['[api]', 'listen = "127.0.0.1:0"', f'site = "{site}"', "reads_need_token = true",
           "auth_failures_per_minute = 5", "stream_interval_seconds = 0.1"]
    if tls is not None:
        api += [f'tls_cert = "{tls.cert}"', f'tls_key = "{tls.key}"']
    services = []
    for device in ("d1", "d2"):
        base = server.base_url(device)
        services += ["[[services]]", f'id = "{device}"', f'endpoint = "{base}"', 'group = "rack"',
                     "heartbeat_interval_seconds = 30"]
    return ("[fault_detection]\ncheck_interval_seconds = 0.2\ntimeout_seconds = 1.0\n"
            + "\n".join(api) + "\n" + extra_api + "\n" + "\n".join(services) + "\n")


@pytest.fixture
async def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Runtime, TlsFiles]]:
    monkeypatch.setenv("FAULTWATCH_TOKEN", OPERATOR)
    monkeypatch.setenv("FAULTWATCH_VIEWER_TOKEN", VIEWER)
    tls = make_tls_files(tmp_path / "tls")
    async with SimServer([DeviceSpec("d1"), DeviceSpec("d2")]) as server:
        path = tmp_path / "site.toml"
        path.write_text(site_toml(server, tls), encoding="utf-8")
        runtime = Runtime(str(path), state_dir=str(tmp_path / "state"))
        await runtime.start()
        try:
            yield runtime, tls
        finally:
            await runtime.stop()


async def test_stream_commands_and_roles_over_tls(site: tuple[Runtime, TlsFiles]) -> None:
    runtime, tls = site
    assert runtime.api is not None and runtime.api.url.startswith("https://127.0.0.1:")
    operator = RemoteEngine(runtime.api.url, OPERATOR, ca_file=str(tls.ca), origin="gui@laptop-1")
    viewer = RemoteEngine(runtime.api.url, VIEWER, ca_file=str(tls.ca))
    operator.start()
    viewer.start()
    try:
        await wait_for(lambda: operator.connected and viewer.connected, what="both attached")
        assert operator.name == "site-a"
        assert viewer.read_only and not operator.read_only  # from the engine's hello
        assert set(operator.snapshots()) == {"d1", "d2"}
        await wait_for(lambda: operator.snapshots()["d1"].status is ServiceStatus.HEALTHY, what="d1 checked")

        result = await operator.force_open(["d1"], "gui")
        assert result.ok, result.message
        engine = runtime.engine
        assert engine is not None
        await wait_for(lambda: operator.snapshots()["d1"].breaker.state is BreakerState.FORCED_OPEN,
                       what="the forced state streamed back")
        actions = [e for e in engine.journal.events(kinds=["action"]) if isinstance(e, ActionEvent)]
        assert [(a.command, a.service, a.origin) for a in actions if a.command == "force_open"] == \
            [("force_open", "d1", "gui@laptop-1")]
        assert engine.snapshots()["d2"].breaker.state is BreakerState.CLOSED

        refused = await viewer.reset(["d1"], "gui")
        assert not refused.ok and "may only read" in refused.message
        assert engine.snapshots()["d1"].breaker.state is BreakerState.FORCED_OPEN
        forbidden = [e for e in engine.journal.events(kinds=["action"])
                     if isinstance(e, ActionEvent) and e.command == "api_forbidden"]
        assert len(forbidden) == 1 and not forbidden[0].ok and VIEWER not in forbidden[0].detail

        # The viewer reads history like a local console does: raw samples and per-minute rollups.
        raw = await viewer.latency_history("d2", time.time() - 60)
        rolled = await viewer.latency_history("d2", time.time() - 3600, rollup=True)
        assert raw and all(isinstance(ms, float) for _, ms in raw)
        assert rolled and rolled[-1][0] % 60 == 0
        assert await viewer.value_history("d2", time.time() - 60) == []  # an HTTP check reads no value
        history = await viewer.journal_events(limit=50)
        assert any(isinstance(e, ActionEvent) and e.command == "force_open" for e in history)

        # Live events arrive with their seq, in order and without gaps.
        seen = operator.drain_events()
        await operator.force_close(["d1"], "gui")

        def closed() -> bool:
            seen.extend(operator.drain_events())
            return any(isinstance(e, ActionEvent) and e.command == "force_close" for e in seen)
        await wait_for(closed, what="force_close event")
        seqs = [e.seq for e in seen]
        assert seqs == sorted(seqs) and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    finally:
        await operator.stop()
        await viewer.stop()


async def test_resume_from_seq_replays_what_was_missed(site: tuple[Runtime, TlsFiles]) -> None:
    runtime, tls = site
    assert runtime.api is not None and runtime.engine is not None
    remote = RemoteEngine(runtime.api.url, OPERATOR, ca_file=str(tls.ca))
    remote.start()
    try:
        await wait_for(lambda: remote.connected, what="attached")
        await remote.stop()  # the console goes away...
        before = remote.last_seq
        await runtime.engine.pause(["d2"], "cli")  # ...while the engine journals things
        await runtime.engine.resume(["d2"], "cli")
        assert runtime.engine.journal.last_seq() > before
        remote.drain_events()
        remote.start()
        await wait_for(lambda: remote.last_seq >= runtime.engine.journal.last_seq(), what="caught up")  # type: ignore[union-attr]
        replayed = remote.drain_events()
        assert [e.seq for e in replayed][:2] == [before + 1, before + 2]
        assert [e.command for e in replayed if isinstance(e, ActionEvent)][:2] == ["pause", "resume"]
    finally:
        await remote.stop()


async def test_401_and_429_on_the_real_api_and_both_journaled(site: tuple[Runtime, TlsFiles]) -> None:
    runtime, tls = site
    assert runtime.api is not None and runtime.engine is not None
    import ssl

    ctx = ssl.create_default_context(cafile=str(tls.ca))
    url = runtime.api.url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/api/services", ssl=ctx) as r:
            assert r.status == 401  # reads need a token here
        async with http.get(f"{url}/api/services", ssl=ctx, headers={"Authorization": f"Bearer {VIEWER}"}) as r:
            assert r.status == 200
        async with http.get(f"{url}/metrics", ssl=ctx, headers={"Authorization": f"Bearer {VIEWER}"}) as r:
            assert r.status == 200
        statuses = []
        for i in range(7):
            async with http.get(f"{url}/api/services", ssl=ctx, headers={"Authorization": f"Bearer wrong-{i}"}) as r:
                statuses.append(r.status)
        assert statuses == [401] * 4 + [429] * 3
        # Limited means limited: even the right token from that address waits for the window to pass.
        async with http.get(f"{url}/api/services", ssl=ctx, headers={"Authorization": f"Bearer {OPERATOR}"}) as r:
            assert r.status == 429 and r.headers["Retry-After"] == "60"
        async with http.post(f"{url}/heartbeat/d1", ssl=ctx) as r:
            assert r.status == 204  # heartbeats stay token-free (heartbeat_auth = false)
    actions = [e for e in runtime.engine.journal.events(kinds=["action"]) if isinstance(e, ActionEvent)]
    commands = [a.command for a in actions if a.command.startswith("api_")]
    assert commands == ["api_auth_refused", "api_rate_limited"]  # not one event per bad request
    assert all("wrong-" not in a.detail and OPERATOR not in a.detail for a in actions)


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "10.1.2.3:8765", "[::]:0"])
async def test_an_exposed_listener_without_tls_is_refused(tmp_path: Path, listen: str) -> None:
    path = tmp_path / "exposed.toml"
    path.write_text(f'[api]\nlisten = "{listen}"\n', encoding="utf-8")
    runtime = Runtime(str(path), state_dir=str(tmp_path / "state"))
    with pytest.raises(ConfigError, match=r"not loopback: set \[api\] tls_cert and tls_key"):
        await runtime.start()
    assert runtime.engine is None  # refused before anything started
    path.write_text(f'[api]\nlisten = "{listen}"\nallow_insecure = true\nenabled = false\n', encoding="utf-8")


def test_cert_and_key_go_together() -> None:
    with pytest.raises(ConfigError, match=r"api.tls_key: tls_cert and tls_key go together"):
        parse_config('[api]\ntls_cert = "/x.pem"\n', label="t.toml")


def test_loopback_hosts() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.9.9.9", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.org"))


def test_rate_limit_window_uses_the_clock() -> None:
    clock = FakeClock()
    refused: list[str] = []
    gate = Gate(ApiSecurity(b"op", b"", True, False, 3), clock, lambda what, _d: refused.append(what))
    for _ in range(3):
        gate.note_failure("10.0.0.9", "api_auth_refused", "x")
    assert gate.limited("10.0.0.9") and not gate.limited("10.0.0.8")
    clock.advance_sync(60.5)
    assert not gate.limited("10.0.0.9")
    assert refused == ["api_auth_refused", "api_rate_limited"]
    assert gate.role_of("Bearer op") is not None and gate.role_of("Bearer op ") is not None
    assert gate.role_of("Bearer ") is None and gate.role_of("Basic op") is None
    assert "op" not in repr(gate.security).replace("operator", "")


# ---------------------------------------------------------------- wire codec

def _snapshot(**kw: object) -> ServiceSnapshot:
    base: dict[str, object] = dict(
        id="d1", name="D1", group="rack", endpoint="http://x", active_endpoint="http://x", active_endpoint_index=0,
        status=ServiceStatus.DEGRADED, failed=False, consecutive_failures=0, last_latency_ms=12.5, p50_ms=None,
        p95_ms=20.0, last_check_wall=1.5, last_ok_wall=None, last_error=None, stale=False,
        breaker=BreakerView(BreakerState.HALF_OPEN, 1, 0, 1, 0, 2, 5, None), recovery=None, paused=False,
        maintenance=False, maintenance_until_wall=None, heartbeat="", storm_tripped=False, slow_threshold_ms=500.0,
        timeout_ms=1000.0, check_interval_s=1.0, restart_action="", checks_total=3, restarts_total=0,
        latencies_ms=(1.0, math.nan, 3.0))
    base.update(kw)
    return ServiceSnapshot(**base)  # type: ignore[arg-type]


def test_snapshot_round_trip_and_tolerance() -> None:
    snap = _snapshot()
    wire = snapshot_to_wire(snap)
    assert wire["latencies_ms"] == [1.0, None, 3.0]  # strict JSON has no NaN
    back = snapshot_from_wire(wire)
    assert dataclasses.replace(back, latencies_ms=()) == dataclasses.replace(snap, latencies_ms=())
    assert math.isnan(back.latencies_ms[1])
    # A newer engine's extra field is ignored; an older engine's missing field gets a default.
    newer = dict(wire, some_future_field={"x": 1})
    older = {k: v for k, v in wire.items() if k not in ("max_failures", "heartbeat", "recovery")}
    assert snapshot_from_wire(newer).id == "d1"
    assert snapshot_from_wire(older).max_failures == 3 and snapshot_from_wire(older).heartbeat == ""
    with pytest.raises(WireError):
        snapshot_from_wire(dict(wire, status="exploded"))
    with pytest.raises(WireError):
        snapshot_from_wire(dict(wire, checks_total="many"))


def test_event_round_trip() -> None:
    event = ProbeEvent(service="d1", mono=5.0, wall=1_700_000_000.25, seq=42, status=ServiceStatus.UNHEALTHY,
                       latency_ms=None, error="boom", consecutive_failures=2)
    back = event_from_wire(event_to_wire(event))
    assert back == dataclasses.replace(event, mono=0.0)
    with pytest.raises(WireError):
        event_from_wire({"kind": "nonsense", "wall": 1.0})
    assert to_wire({"a": (1.0, math.inf)}) == {"a": [1.0, None]}


# ---------------------------------------------------------------- composite

class _Member:
    def __init__(self, name: str, snaps: dict[str, ServiceSnapshot]) -> None:
        self.name = name
        self._snaps = snaps
        self.calls: list[tuple[str, list[str], str]] = []

    def snapshots(self) -> dict[str, ServiceSnapshot]:
        return self._snaps

    def alerts(self) -> list:  # type: ignore[type-arg]
        return []

    def drain_events(self) -> list:  # type: ignore[type-arg]
        return []

    async def force_open(self, ids: list[str], origin: str) -> object:
        from core.snapshot import CommandResult

        self.calls.append(("force_open", list(ids), origin))
        return CommandResult(True, f"forced {ids}")


async def test_composite_qualifies_ids_and_routes_commands_to_the_owner() -> None:
    a = _Member("site-a", {"d1": _snapshot(id="d1"), "d2": _snapshot(id="d2")})
    b = _Member("site-a", {"d1": _snapshot(id="d1")})  # the same site name twice: told apart
    multi = MultiEngine()
    multi.add(a)  # type: ignore[arg-type]
    multi.add(b)  # type: ignore[arg-type]
    merged = multi.snapshots()
    assert sorted(merged) == ["site-a#2/d1", "site-a/d1", "site-a/d2"]
    assert merged["site-a/d1"].group == "site-a/rack"
    assert multi.snapshots() is merged  # nothing changed: the same dict, so the bridge skips the diff
    result = await multi.force_open(["site-a#2/d1", "site-a/d2"], "gui")
    assert result.ok
    assert a.calls == [("force_open", ["d2"], "gui")] and b.calls == [("force_open", ["d1"], "gui")]


def test_unreachable_engine_shows_no_live_green() -> None:
    clock = FakeClock()
    remote = RemoteEngine("https://127.0.0.1:1", "t", clock=clock)
    remote._apply({"t": "hello", "site": "s", "seq": 7, "services": [snapshot_to_wire(_snapshot())],
                   "alerts": [], "stats": {}})
    assert remote.snapshots()["d1"].status is ServiceStatus.DEGRADED
    remote._set_connected(False)
    clock.advance_sync(12.0)
    offline = remote.snapshots()["d1"]
    assert offline.status is ServiceStatus.UNKNOWN and offline.stale
    assert offline.last_error == f"{UNREACHABLE} (last data 12 s ago)"


def test_a_journal_that_went_backwards_is_followed_from_its_new_seq() -> None:
    remote = RemoteEngine("https://127.0.0.1:1", "t", clock=FakeClock())
    hello: dict[str, object] = {"t": "hello", "site": "s", "services": [], "alerts": [], "stats": {}}
    remote._apply({**hello, "seq": 40})
    assert remote.last_seq == 40
    remote._apply({**hello, "seq": 3})  # the engine's state directory was replaced
    event = ProbeEvent(service="d1", mono=0.0, wall=1.0, seq=4, status=ServiceStatus.HEALTHY, latency_ms=1.0,
                       error=None, consecutive_failures=0)
    remote._apply({"t": "delta", "events": [event_to_wire(event)]})
    assert [e.seq for e in remote.drain_events()] == [4]


def test_patches_carry_only_changed_fields_and_apply_to_the_hello_state() -> None:
    from core.api_stream import EngineReads, StreamHub

    state = {"d1": _snapshot(), "d2": _snapshot(id="d2")}
    reads = EngineReads(snapshots=lambda: state, alerts=lambda: [], stats=lambda: EngineStats(0, 0.0, 0.0, 2, 0),
                        last_seq=lambda: 0, events_after=lambda since, limit: [],
                        journal_events=lambda service, limit: [], latency=lambda service, since: [],
                        rollup=lambda service, since: [])
    hub = StreamHub(reads, site="s")
    hub._last_snapshots = dict(state)
    hub._last_wire = {sid: snapshot_to_wire(s) for sid, s in state.items()}
    remote = RemoteEngine("https://127.0.0.1:1", "t", clock=FakeClock())
    remote._apply(hub.hello())
    state = {**state, "d1": dataclasses.replace(state["d1"], checks_total=4, last_latency_ms=None,
                                                latencies_ms=(2.0, 3.0))}
    frame = json.loads(hub.delta())
    assert frame["services"] == [] and frame["patches"] == [
        {"id": "d1", "set": {"last_latency_ms": None, "checks_total": 4, "latencies_ms": [2.0, 3.0]}}]
    remote._apply(frame)
    assert remote.snapshots()["d1"] == state["d1"] and remote.snapshots()["d2"] is not None
    state = {"d2": state["d2"], "d3": _snapshot(id="d3")}
    frame = json.loads(hub.delta())
    assert frame["removed"] == ["d1"] and [s["id"] for s in frame["services"]] == ["d3"]
    remote._apply(frame)
    assert set(remote.snapshots()) == {"d2", "d3"}


def test_what_each_route_needs() -> None:
    from aiohttp.test_utils import make_mocked_request

    from core.api_auth import Role

    exposed = Gate(ApiSecurity(b"op", b"view", True, True, 10), FakeClock())
    loopback = Gate(ApiSecurity(b"op", b"view", False, False, 10), FakeClock())
    cases = [("POST", "/heartbeat/d1", Role.VIEWER, None), ("GET", "/metrics", Role.VIEWER, None),
             ("GET", "/api/stream", Role.VIEWER, None), ("GET", "/healthz", None, None),
             ("POST", "/api/services/d1/reset", Role.OPERATOR, Role.OPERATOR),
             ("PUT", "/api/config/services/d1", Role.OPERATOR, Role.OPERATOR),
             ("GET", "/api/config/services", Role.OPERATOR, Role.OPERATOR)]
    for method, path, on_network, on_loopback in cases:
        request = make_mocked_request(method, path)
        assert exposed.needs(exposed.kind_of(request)) is on_network, (method, path)
        assert loopback.needs(loopback.kind_of(request)) is on_loopback, (method, path)
    assert exposed.role_of("Bearer view") is Role.VIEWER and exposed.role_of("bearer op") is Role.OPERATOR


def test_plain_http_to_another_host_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    RemoteEngine("http://127.0.0.1:8765", "secret-token")
    assert not caplog.records
    RemoteEngine("http://rack-7.example:8765", "secret-token")
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "clear text" in caplog.text and "secret-token" not in caplog.text


def test_stopping_the_attach_thread_ends_a_request_still_in_flight() -> None:
    """A read the window started (history, maintenance) against an engine that does not answer is
    cancelled when the console closes, not left to be finalized on a closed loop."""
    import concurrent.futures
    import socket

    from core.attach import AttachThread

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel's backlog) and never answers
    try:
        host = AttachThread()
        # https: the TLS handshake never completes, the spot where a closing window found it.
        handle = host.attach(f"https://127.0.0.1:{silent.getsockname()[1]}", "t0ken")
        pending = host.submit(handle.remote.scheduled_maintenance())
        time.sleep(0.2)  # the request is on its way (real socket; nothing here is timed)
        assert not pending.done()
        host.stop(timeout=10)
        assert pending.done()
        with pytest.raises((concurrent.futures.CancelledError, aiohttp.ClientError)):
            pending.result(timeout=0)
    finally:
        silent.close()


def test_the_attach_thread_runs_asyncios_own_loop_whatever_policy_is_installed() -> None:
    """The GUI installs qasync's loop policy; an attach thread started later (File → Connect, or
    the own engine started behind the window) must not get a Qt loop on a worker thread."""
    from core.attach import AttachThread

    class QtLikePolicy(asyncio.DefaultEventLoopPolicy):
        def new_event_loop(self) -> asyncio.AbstractEventLoop:
            raise AssertionError("the installed policy's loop was used on the attach thread")

    before = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(QtLikePolicy())
    host = AttachThread()
    try:
        host.start()
        assert host.submit(asyncio.sleep(0, result="ran")).result(timeout=5) == "ran"
    finally:
        host.stop()
        asyncio.set_event_loop_policy(before)
