"""The demo rack (core.sim): device state rules with a fake clock, then the real server on sockets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import psutil
import pytest
from aiohttp import web

from core.clock import FakeClock
from core.config import HttpRestart, parse_config
from core.sim import (BEHAVIOURS, Device, DeviceSpec, ScenarioRunner, SimServer, Step, demo_config_toml,
                      demo_devices, demo_scenario_path, fleet_config_toml, load_scenario, make_fleet,
                      parse_scenario)

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

REPO = Path(__file__).resolve().parents[2]


def dev(behaviour: str = "healthy", clock: FakeClock | None = None, **kw: Any) -> tuple[Device, FakeClock]:
    clock = clock or FakeClock()
    params = kw.pop("params", {})
    return Device(DeviceSpec("d1", behaviour, params, **kw), clock), clock


def status(d: Device, clock: FakeClock) -> int | str:
    reply = d.respond(clock.monotonic())
    return reply.status if reply.kind == "body" else reply.kind


# ================================================================ pure state rules (FakeClock)

def test_flapping_alternates_every_period_from_when_it_was_set() -> None:
    d, clock = dev("flapping", params={"period_s": 10})
    seen = []
    for _ in range(6):
        seen.append(status(d, clock))
        clock.advance_sync(4.99)
        seen.append(status(d, clock))
        clock.advance_sync(5.01)
    assert seen == [200, 200, 503, 503, 200, 200, 503, 503, 200, 200, 503, 503]
    clock.advance_sync(3)
    d.set_behaviour("flapping", period_s=10)  # re-anchored: healthy half first again
    assert status(d, clock) == 200
    assert d.state(clock.monotonic()) == "flapping"
    clock.advance_sync(10)
    assert d.state(clock.monotonic()) == "down"
    assert not d.alive(clock.monotonic())


def test_restart_makes_any_device_unavailable_for_reboot_s_then_healthy() -> None:
    d, clock = dev("down", reboot_s=2.0)
    clock.advance_sync(100)
    reply = d.restart(clock.monotonic())
    assert reply.status == 200 and json.loads(reply.body)["status"] == "restarting"
    assert d.restarts == 1
    assert status(d, clock) == 503
    assert d.state(clock.monotonic()) == "rebooting"
    clock.advance_sync(1.99)
    assert status(d, clock) == 503
    assert d.behaviour == "down"
    clock.advance_sync(0.01)
    reply = d.respond(clock.monotonic())
    assert reply.status == 200
    assert d.behaviour == "healthy"
    assert json.loads(reply.body) == {"status": "ok", "device": "d1", "uptime_s": 0.0}  # rebooted
    assert d.requests == 3


def test_device_comes_back_with_after_restart() -> None:
    d, clock = dev("error500", reboot_s=1.0, after_restart="slow")
    d.restart(clock.monotonic())
    clock.advance_sync(1.0)
    reply = d.respond(clock.monotonic())
    assert d.behaviour == "slow"
    assert reply.status == 200 and reply.delay_s == pytest.approx(0.5)


def test_sticky_device_fails_again_right_after_reboot() -> None:
    d, clock = dev("hanging", reboot_s=2.0, sticky=True)
    for n in (1, 2, 3):
        d.restart(clock.monotonic())
        assert status(d, clock) == 503
        clock.advance_sync(2.0)
        assert status(d, clock) == "hang"
        assert d.restarts == n
    d.set_behaviour("down", sticky=False)
    d.restart(clock.monotonic())
    clock.advance_sync(2.0)
    assert status(d, clock) == 200


def test_reboot_can_drop_connections_instead_of_503() -> None:
    d, clock = dev("healthy", reboot_s=5.0, reboot_as="reset")
    d.restart(clock.monotonic())
    assert status(d, clock) == "reset"
    clock.advance_sync(5.0)
    assert status(d, clock) == 200


def test_restart_during_reboot_extends_it_and_zero_reboot_is_immediate() -> None:
    d, clock = dev("down", reboot_s=2.0)
    d.restart(clock.monotonic())
    clock.advance_sync(1.5)
    d.restart(clock.monotonic())
    clock.advance_sync(1.0)
    assert status(d, clock) == 503
    clock.advance_sync(1.0)
    assert status(d, clock) == 200
    assert d.restarts == 2
    z, zclock = dev("down", reboot_s=0.0)
    z.restart(zclock.monotonic())
    assert status(z, zclock) == 200


def test_set_behaviour_ends_a_reboot_in_progress() -> None:
    d, clock = dev("down", reboot_s=10.0)
    d.restart(clock.monotonic())
    d.set_behaviour("error500")
    assert status(d, clock) == 500
    clock.advance_sync(20)
    assert status(d, clock) == 500  # the pending "come back healthy" was cancelled too


def test_flaky_is_reproducible_per_seed_and_device_and_fails_about_p() -> None:
    def run(seed: int, device_id: str = "d1") -> list[int]:
        d = Device(DeviceSpec(device_id, "flaky", {"p": 0.3, "seed": seed}), FakeClock())
        return [d.respond(0.0).status for _ in range(2000)]

    a = run(1)
    assert a == run(1)
    assert a != run(2)
    assert a != run(1, "d2")
    assert 0.25 < a.count(503) / len(a) < 0.35
    assert set(a) == {200, 503}
    never = Device(DeviceSpec("x", "flaky", {"p": 0.0}), FakeClock())
    assert {never.respond(0).status for _ in range(50)} == {200}


def test_every_behaviour_gives_its_reply() -> None:
    kinds = {}
    for name in BEHAVIOURS:
        d, clock = dev(name)
        r = d.respond(clock.monotonic())
        kinds[name] = (r.kind, r.status)
    assert kinds == {
        "healthy": ("body", 200), "slow": ("body", 200), "flaky": kinds["flaky"], "down": ("body", 503),
        "reset": ("reset", 200), "flapping": ("body", 200), "hanging": ("hang", 200),
        "garbage": ("body", 200), "huge": ("stream", 200), "slowloris": ("trickle", 200),
        "error500": ("body", 500), "redirect_loop": ("redirect", 302), "reboot_on_restart": ("body", 200),
    }
    huge, _ = dev("huge")
    assert huge.respond(0).size_bytes == 50_000_000


def test_alive_decides_heartbeats() -> None:
    clock = FakeClock()
    alive = {name: dev(name, clock)[0].alive(clock.monotonic()) for name in BEHAVIOURS}
    assert {n for n, a in alive.items() if not a} == {"down", "reset", "hanging"}
    d, _ = dev("healthy", clock)
    d.restart(clock.monotonic())
    assert not d.alive(clock.monotonic())


@pytest.mark.parametrize(("behaviour", "params", "message"), [
    ("dwon", {}, "unknown behaviour 'dwon'"),
    ("slow", {"delay": 3}, "slow: unknown parameter 'delay'"),
    ("slow", {"delay_ms": -1}, "delay_ms must be >= 0"),
    ("flaky", {"p": 1.5}, "p must be at most 1"),
    ("flapping", {"period_s": 0}, "period_s must be > 0"),
    ("huge", {"size_bytes": "big"}, "size_bytes must be a finite number"),
    ("healthy", {"after_restart": "bogus"}, "after_restart: unknown behaviour"),
    ("healthy", {"reboot_s": -2}, "reboot_s must be"),
])
def test_set_behaviour_rejects_bad_input(behaviour: str, params: dict[str, Any], message: str) -> None:
    d, _ = dev("healthy")
    with pytest.raises(ValueError, match=message):
        d.set_behaviour(behaviour, **params)
    assert d.behaviour == "healthy"


def test_make_fleet_is_deterministic_mostly_healthy_and_racked() -> None:
    fleet = make_fleet(1000, group_size=40, seed=3)
    assert fleet == make_fleet(1000, group_size=40, seed=3)
    assert fleet != make_fleet(1000, group_size=40, seed=4)
    assert len({s.id for s in fleet}) == 1000
    assert fleet[0].id == "r01-d001" and fleet[0].group == "rack-01"
    assert fleet[46].id == "r02-d007" and fleet[46].group == "rack-02"
    assert len({s.group for s in fleet}) == 25
    healthy = sum(s.behaviour == "healthy" for s in fleet)
    assert 850 < healthy < 950
    for s in fleet:
        Device(s, FakeClock())  # every generated spec is valid
    assert {s.behaviour for s in make_fleet(50, mix={"down": 1})} == {"down"}
    with pytest.raises(ValueError, match="unknown behaviour 'nope'"):
        make_fleet(5, mix={"nope": 1})


# ================================================================ the server, on real sockets

Factory = Callable[..., Awaitable[SimServer]]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def sim() -> AsyncIterator[Factory]:
    servers: list[SimServer] = []

    async def make(*specs: DeviceSpec, **kw: Any) -> SimServer:
        server = SimServer(list(specs), **kw)
        await server.start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        await s.stop()
    await asyncio.sleep(0)
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leftover, leftover


async def test_healthy_device_answers_json(sim: Factory, session: aiohttp.ClientSession) -> None:
    server = await sim(DeviceSpec("r01-d007"))
    assert server.port > 0
    assert server.base_url("r01-d007") == f"http://127.0.0.1:{server.port}/dev/r01-d007"
    async with session.get(server.base_url("r01-d007") + "/health") as r:
        assert r.status == 200
        body = await r.json()
    assert body["status"] == "ok" and body["device"] == "r01-d007" and body["uptime_s"] >= 0
    assert server.device("r01-d007").requests == 1


async def test_status_behaviours(sim: Factory, session: aiohttp.ClientSession) -> None:
    server = await sim(DeviceSpec("down", "down"), DeviceSpec("e500", "error500"),
                       DeviceSpec("always", "flaky", {"p": 1.0}), DeviceSpec("never", "flaky", {"p": 0.0}))
    got = {}
    for d in ("down", "e500", "always", "never"):
        async with session.get(server.base_url(d) + "/health") as r:
            got[d] = r.status
    assert got == {"down": 503, "e500": 500, "always": 503, "never": 200}


async def test_slow_device_answers_after_its_delay(sim: Factory, session: aiohttp.ClientSession) -> None:
    server = await sim(DeviceSpec("s", "slow", {"delay_ms": 200}))
    t0 = time.monotonic()
    async with session.get(server.base_url("s") + "/health") as r:
        assert r.status == 200
    assert time.monotonic() - t0 >= 0.19


async def test_reset_device_drops_the_connection(sim: Factory, session: aiohttp.ClientSession) -> None:
    server = await sim(DeviceSpec("r", "reset"))
    with pytest.raises(aiohttp.ClientConnectionError):
        async with session.get(server.base_url("r") + "/health") as r:
            await r.read()
    assert server.device("r").requests >= 1  # aiohttp may retry an idempotent GET once


async def test_hanging_device_makes_the_client_time_out(sim: Factory, session: aiohttp.ClientSession) -> None:
    server = await sim(DeviceSpec("h", "hanging"))
    with pytest.raises(asyncio.TimeoutError):
        async with session.get(server.base_url("h") + "/health", timeout=aiohttp.ClientTimeout(total=0.3)):
            pass
    assert server.device("h").requests == 1


async def test_garbage_is_200_but_not_json(sim: Factory, session: aiohttp.ClientSession) -> None:
    server = await sim(DeviceSpec("g", "garbage"))
    async with session.get(server.base_url("g") + "/health") as r:
        assert r.status == 200
        assert r.content_type != "application/json"
        raw = await r.read()
        with pytest.raises(aiohttp.ContentTypeError):
            await r.json()
    with pytest.raises(ValueError):
        json.loads(raw)


async def test_huge_body_is_streamed_lazily(sim: Factory, session: aiohttp.ClientSession) -> None:
    server = await sim(DeviceSpec("big", "huge"), DeviceSpec("small", "huge", {"size_bytes": 1000}))
    tracemalloc.start()
    try:
        t0 = time.monotonic()
        async with session.get(server.base_url("big") + "/health") as r:
            assert r.status == 200
            assert r.content_length == 50_000_000
            first = await r.content.read(65536)
            await asyncio.sleep(0.2)  # give an eager server the chance to build up its 50 MB
            r.close()
        elapsed = time.monotonic() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 0 < len(first) <= 65536
    assert elapsed < 1.5
    assert peak < 16 * 1024 * 1024
    async with session.get(server.base_url("small") + "/health") as r:
        assert len(await r.read()) == 1000


async def test_slowloris_sends_a_byte_at_a_time_forever(sim: Factory, session: aiohttp.ClientSession) -> None:
    server = await sim(DeviceSpec("sl", "slowloris", {"interval_s": 0.05}))
    got = b""
    with pytest.raises(asyncio.TimeoutError):
        async with session.get(server.base_url("sl") + "/health",
                               timeout=aiohttp.ClientTimeout(total=0.5)) as r:
            assert r.status == 200
            async for chunk in r.content.iter_any():
                got += chunk
    assert got.startswith(b"{ ") and len(got) < 20


async def test_redirect_loop_exhausts_redirects(sim: Factory, session: aiohttp.ClientSession) -> None:
    server = await sim(DeviceSpec("loop", "redirect_loop"))
    with pytest.raises(aiohttp.TooManyRedirects):
        async with session.get(server.base_url("loop") + "/health", max_redirects=5):
            pass
    assert server.device("loop").requests >= 5


async def test_restart_over_http_reboots_and_counts(sim: Factory, session: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    server = await sim(DeviceSpec("d", "down", reboot_s=3.0), clock=clock)
    base = server.base_url("d")
    for method in ("POST", "PUT", "GET"):
        async with session.request(method, base + "/restart") as r:
            assert r.status == 200
    assert server.device("d").restarts == 3
    async with session.get(base + "/health") as r:
        assert r.status == 503 and (await r.json())["status"] == "rebooting"
    clock.advance_sync(3.0)
    async with session.get(base + "/health") as r:
        assert r.status == 200
    async with session.delete(base + "/restart") as r:
        assert r.status == 404
    assert server.device("d").restarts == 3


async def test_unknown_paths_are_404(sim: Factory, session: aiohttp.ClientSession) -> None:
    server = await sim(DeviceSpec("a"))
    for path in ("/dev/nope/health", "/dev/a/other", "/", "/sim/devices/nope"):
        async with session.get(server.url + path) as r:
            assert r.status == 404, path


async def test_control_api_lists_and_changes_devices(sim: Factory, session: aiohttp.ClientSession) -> None:
    server = await sim(DeviceSpec("a"), DeviceSpec("b", "slow", {"delay_ms": 5}))
    async with session.get(server.base_url("a") + "/health"):
        pass
    async with session.get(server.url + "/sim/devices") as r:
        listing = (await r.json())["devices"]
    assert [(d["id"], d["behaviour"], d["requests"], d["restarts"]) for d in listing] == [
        ("a", "healthy", 1, 0), ("b", "slow", 0, 0)]
    assert listing[1]["params"] == {"delay_ms": 5.0}

    async with session.post(server.url + "/sim/devices/a", json={"behaviour": "error500"}) as r:
        assert r.status == 200 and (await r.json())["behaviour"] == "error500"
    async with session.get(server.base_url("a") + "/health") as r:
        assert r.status == 500
    async with session.post(server.url + "/sim/devices/b",
                            json={"behaviour": "flapping", "period_s": 30, "sticky": True}) as r:
        assert r.status == 200
    assert server.device("b").params == {"period_s": 30.0} and server.device("b").sticky

    for body, want in (({"behaviour": "dwn"}, 400), ({"behaviour": "slow", "x": 1}, 400), ([1], 400)):
        async with session.post(server.url + "/sim/devices/a", json=body) as r:
            assert r.status == want
            assert "error" in await r.json()
    async with session.post(server.url + "/sim/devices/a", data=b"{not json") as r:
        assert r.status == 400
    async with session.post(server.url + "/sim/devices/zz", json={"behaviour": "down"}) as r:
        assert r.status == 404
    assert server.device("a").behaviour == "error500"


async def test_python_api_changes_behaviour_live(sim: Factory, session: aiohttp.ClientSession) -> None:
    server = await sim(DeviceSpec("a"))
    server.device("a").set_behaviour("down")
    async with session.get(server.base_url("a") + "/health") as r:
        assert r.status == 503
    with pytest.raises(KeyError):
        server.device("nope")


async def _wait_for(cond: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_stop_is_prompt_with_requests_in_flight(session: aiohttp.ClientSession) -> None:
    server = SimServer([DeviceSpec("h", "hanging"), DeviceSpec("sl", "slowloris", {"interval_s": 0.05}),
                        DeviceSpec("big", "huge"), DeviceSpec("slow", "slow", {"delay_ms": 60_000})])
    await server.start()
    port = server.port

    async def fetch(device_id: str) -> None:
        async with session.get(server.base_url(device_id) + "/health") as r:
            await r.read()

    names = ("h", "sl", "big", "slow")
    tasks = [asyncio.create_task(fetch(n)) for n in names]
    await _wait_for(lambda: all(server.device(n).requests == 1 for n in names))
    t0 = time.monotonic()
    await asyncio.wait_for(server.stop(), 2.0)
    # Below aiohttp's 1 s shutdown backstop: open requests are woken and dropped, not timed out.
    assert time.monotonic() - t0 < 0.9
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 2.0)
    assert all(isinstance(e, aiohttp.ClientError) for e in results), results
    mine = psutil.Process(os.getpid()).net_connections(kind="tcp")
    assert not [c for c in mine if c.laddr and c.laddr.port == port and c.status != psutil.CONN_TIME_WAIT]
    with pytest.raises(aiohttp.ClientConnectionError):
        async with session.get(f"http://127.0.0.1:{port}/dev/h/health"):
            pass


async def test_clients_that_give_up_do_not_leak_handlers(sim: Factory, session: aiohttp.ClientSession) -> None:
    server = await sim(DeviceSpec("h", "hanging"))
    for _ in range(5):
        with pytest.raises(asyncio.TimeoutError):
            async with session.get(server.base_url("h") + "/health", timeout=aiohttp.ClientTimeout(total=0.1)):
                pass
    await _wait_for(lambda: not server._waiters)


async def test_heartbeats_are_pushed_only_while_alive(sim: Factory) -> None:
    beats: list[tuple[str, str | None, Any]] = []
    arrived = asyncio.Event()

    async def receive(request: web.Request) -> web.Response:
        beats.append((request.match_info["id"], request.headers.get("Authorization"), await request.json()))
        arrived.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/heartbeat/{id}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        clock = FakeClock()
        server = await sim(DeviceSpec("hb", heartbeat_interval_s=5.0), DeviceSpec("quiet"), clock=clock)
        server.heartbeat_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        server.heartbeat_token = "t0k"
        await clock.advance(4.9)
        assert not beats
        await clock.advance(0.1)
        await asyncio.wait_for(arrived.wait(), 2.0)
        arrived.clear()
        server.device("hb").set_behaviour("down")
        await clock.advance(5.0)  # down: skipped
        server.device("hb").set_behaviour("healthy")
        await clock.advance(5.0)
        await asyncio.wait_for(arrived.wait(), 2.0)
        assert [(b[0], b[1], b[2]["device"]) for b in beats] == [("hb", "Bearer t0k", "hb")] * 2
        assert server.device("hb").heartbeats == 2
        assert server.device("quiet").heartbeats == 0
    finally:
        await runner.cleanup()


async def test_heartbeat_receiver_away_is_ignored_quietly(sim: Factory, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    server = await sim(DeviceSpec("hb", heartbeat_interval_s=1.0), clock=clock,
                       heartbeat_url="http://127.0.0.1:9")  # discard port: nothing listens
    for _ in range(3):
        await clock.advance(1.0)
        await asyncio.sleep(0.05)
    assert server.device("hb").heartbeats == 0
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


# ================================================================ scenarios

SCENARIO = """
repeat_every = 100
[[step]]
at = 50
device = "b"
behaviour = "healthy"
[[step]]
at = 20.0
device = "b"
behaviour = "slow"
delay_ms = 250
sticky = true
"""


async def test_scenario_steps_apply_at_their_fake_time_and_repeat(sim: Factory) -> None:
    clock = FakeClock()
    server = await sim(DeviceSpec("a"), DeviceSpec("b"), clock=clock)
    runner = ScenarioRunner(server, parse_scenario(SCENARIO), clock)
    task = asyncio.create_task(runner.run())
    try:
        b = server.device("b")
        await clock.advance(19.9)
        assert b.behaviour == "healthy"
        await clock.advance(0.1)
        assert (b.behaviour, b.params, b.sticky) == ("slow", {"delay_ms": 250.0}, True)
        await clock.advance(29.9)
        assert b.behaviour == "slow"
        await clock.advance(0.1)
        assert b.behaviour == "healthy"
        await clock.advance(69.9)  # t = 119.9
        assert b.behaviour == "healthy"
        await clock.advance(0.1)
        assert b.behaviour == "slow"
        assert runner.applied == 3
        assert server.device("a").behaviour == "healthy"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_scenario_without_repeat_ends(sim: Factory) -> None:
    clock = FakeClock()
    server = await sim(DeviceSpec("a"), DeviceSpec("b"), clock=clock)
    runner = ScenarioRunner(server, [Step(at=0, devices=("a", "b"), behaviour="down"),
                                     Step(at=5, devices=("a",), behaviour="healthy")], clock)
    task = asyncio.create_task(runner.run())
    await clock.advance(0)
    assert [server.device(x).behaviour for x in "ab"] == ["down", "down"]
    await clock.advance(5)
    assert task.done() and task.exception() is None
    assert [server.device(x).behaviour for x in "ab"] == ["healthy", "down"]


@pytest.mark.parametrize(("text", "message"), [
    ('[[step]]\nat = 1\ndevice = "a"\nbehaviour = "down"\n[[step]]\nat = 2\ndevice = "a"\nbehaviour = "dwn"',
     r"^x\.toml: step\[1\]: unknown behaviour 'dwn'"),
    ('[[step]]\ndevice = "a"\nbehaviour = "down"', r"^x\.toml: step\[0\]\.at: is required$"),
    ('[[step]]\nat = -1\ndevice = "a"\nbehaviour = "down"', r"step\[0\]\.at: must be >= 0"),
    ('[[step]]\nat = 1\nbehaviour = "down"', r"step\[0\]: give exactly one of 'device' or 'devices'"),
    ('[[step]]\nat = 1\ndevice = "a"\nbehaviour = "slow"\ndelay = 3', r"step\[0\]: slow: unknown parameter 'delay'"),
    ('[[step]]\nat = 1\ndevice = "a"\nbehaviour = "down"\nsticky = 1', r"step\[0\]\.sticky: expected true or false"),
    ('repeat_every = 10\n[[step]]\nat = 10\ndevice = "a"\nbehaviour = "down"',
     r"repeat_every: must be greater than the last step's 'at' \(10\)"),
    ('steps = 3', r"steps: unknown key"),
    ('[[step]\n', r"TOML syntax error"),
])
def test_scenario_errors_are_one_line_and_name_the_step(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_scenario(text, label="x.toml")
    assert "\n" not in str(info.value)


async def test_scenario_runner_rejects_unknown_devices(sim: Factory) -> None:
    server = await sim(DeviceSpec("a"))
    steps = parse_scenario('[[step]]\nat = 1\ndevice = "a"\nbehaviour = "down"\n'
                           '[[step]]\nat = 2\ndevices = ["a", "ghost"]\nbehaviour = "down"').steps
    with pytest.raises(ValueError, match=r"^step\[1\]: unknown device 'ghost'$"):
        ScenarioRunner(server, steps)


# ================================================================ the demo rack

def test_demo_rack_is_varied() -> None:
    specs = demo_devices()
    assert 16 <= len(specs) <= 24
    assert len({s.group for s in specs}) == 3
    assert len({s.id for s in specs}) == len(specs)
    behaviours = [s.behaviour for s in specs]
    assert behaviours.count("healthy") > len(specs) / 2
    for b in ("slow", "flaky", "flapping"):
        assert behaviours.count(b) == 1
    assert [s.backup_of for s in specs if s.backup_of] == ["gw-b"]
    assert sum(1 for s in specs if s.heartbeat_interval_s) >= 3
    assert all(s.name for s in specs)


async def test_demo_scenario_file_fits_the_demo_rack(sim: Factory) -> None:
    scenario = load_scenario(demo_scenario_path())
    assert scenario.repeat_every and scenario.steps
    server = await sim(*demo_devices())
    ScenarioRunner(server, scenario)  # every device it names exists
    downed = {d for s in scenario.steps if s.behaviour in ("down", "hanging", "error500") for d in s.devices}
    assert "label-l2" in downed and "gw-b" in downed


async def test_demo_config_parses_and_describes_the_rack(sim: Factory) -> None:
    server = await sim(*demo_devices())
    config = parse_config(demo_config_toml(server, api_listen="127.0.0.1:8799"), label="demo")
    specs = demo_devices()
    assert [s.id for s in config.services] == [s.id for s in specs if not s.backup_of]
    assert config.fault_detection.check_interval_seconds == 1
    assert config.fault_detection.timeout_seconds == 2
    assert config.fault_detection.slow_response_threshold_ms == 300
    assert (config.circuit_breaker.timeout_seconds, config.circuit_breaker.failure_threshold,
            config.circuit_breaker.success_threshold) == (10, 3, 2)
    assert (config.recovery.restart_base_delay_seconds, config.recovery.restart_max_delay_seconds,
            config.recovery.verify_checks) == (1, 20, 2)
    assert config.api.listen == "127.0.0.1:8799"
    gw = config.service("gw-b")
    assert gw is not None and gw.backup_endpoints == (server.base_url("gw-b-backup"),)
    plc = config.service("plc-l1")
    assert plc is not None
    assert plc.name == "PLC line 1" and plc.group == "line-1" and plc.heartbeat_interval_seconds == 5
    assert plc.endpoint == server.base_url("plc-l1") and plc.health_path == "/health"
    assert plc.restart == HttpRestart(url=server.base_url("plc-l1") + "/restart", method="POST")
    assert config.service("robot-c3").heartbeat_interval_seconds is None  # type: ignore[union-attr]


async def test_demo_config_urls_reach_the_devices(sim: Factory, session: aiohttp.ClientSession) -> None:
    server = await sim(*demo_devices())
    config = parse_config(demo_config_toml(server))
    for svc in config.services[:3]:
        async with session.get(svc.endpoint + svc.health_path) as r:
            assert r.status in (200, 503)
        assert isinstance(svc.restart, HttpRestart)
        async with session.request(svc.restart.method, svc.restart.url) as r:
            assert r.status == 200
        assert server.device(svc.id).restarts == 1


async def test_fleet_config_parses(sim: Factory) -> None:
    specs = make_fleet(300)
    server = await sim(*specs)
    config = parse_config(fleet_config_toml(server, interval_s=0.5))
    assert len(config.services) == 300
    assert config.fault_detection.check_interval_seconds == 0.5
    assert len({s.group for s in config.services}) == 8
    sub = parse_config(fleet_config_toml(server, devices=specs[:10]))
    assert [s.id for s in sub.services] == [s.id for s in specs[:10]]


# ================================================================ the command line

def test_cli_serves_a_fleet_and_stops_on_ctrl_c() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "core.sim", "--devices", "20", "--port", "0"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("sim: 20 devices at http://127.0.0.1:"), line
        proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "sim: stopped" in out
