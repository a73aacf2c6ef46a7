"""The demo rack's HTTP server: one aiohttp listener hosting every simulated device.

Each device lives under `/dev/{id}` (`GET .../health`, `POST|PUT|GET .../restart`); `/sim/devices`
is the control API. Requests are dispatched by splitting the path once (no route table, no access
log), because the engine checks thousands of devices a second against this one process.

Everything that can wait forever (hanging, slowloris, huge, slow) waits on a future that `stop()`
resolves, so stopping never waits for a client.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any, Sequence

import aiohttp
from aiohttp import web

from core.clock import Clock, SystemClock
from core.sim.devices import Device, DeviceSpec, Reply, make_fleet
from core.logs import SIM as log

__all__ = ["SimServer", "make_fleet"]  # make_fleet re-exported: core.runtime imports it from here


_JSON = "application/json"
_LINGER_RST = struct.pack("ii", 1, 0)
_RESTART_METHODS = frozenset({"POST", "PUT", "GET"})
_HEALTH_METHODS = frozenset({"GET", "HEAD"})


def _json(status: int, data: Any) -> web.Response:
    return web.Response(status=status, body=json.dumps(data).encode(), content_type=_JSON)


def _drop(request: web.BaseRequest) -> None:
    """Close the connection without a response, as an RST (a device whose TCP stack gave up)."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        except OSError:
            pass
    transport.abort()


class SimServer:
    """Hosts simulated devices on one port.

    Attributes:
        port: the bound port (after start()).
        clock: time for reboots, flapping and heartbeats.
        heartbeat_url: base URL devices push `POST {heartbeat_url}/heartbeat/{id}` to (None: no beats).
        heartbeat_token: sent as a bearer token with heartbeats, if set.
    """

    def __init__(self, devices: Sequence[DeviceSpec], host: str = "127.0.0.1", port: int = 0,
                 clock: Clock | None = None, heartbeat_url: str | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.host = host
        self.port = port
        self.heartbeat_url = heartbeat_url
        self.heartbeat_token: str | None = None
        self._devices: dict[str, Device] = {}
        for spec in devices:
            if spec.id in self._devices:
                raise ValueError(f"duplicate device id {spec.id!r}")
            if "/" in spec.id or not spec.id:
                raise ValueError(f"device id {spec.id!r} must be non-empty and contain no '/'")
            self._devices[spec.id] = Device(spec, self.clock)
        self._runner: web.ServerRunner | None = None
        self._stopping = False
        self._waiters: set[asyncio.Future[None]] = set()
        self._beat_tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("SimServer already started")
        self._stopping = False
        server = web.Server(self._handle, handler_cancellation=True, access_log=None)
        # A short shutdown timeout is only a backstop: stop() wakes every waiting handler first.
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, backlog=2048)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        beating = [d for d in self._devices.values() if d.spec.heartbeat_interval_s]
        if beating:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0))
            self._beat_tasks = [asyncio.create_task(self._beat_loop(d), name=f"sim-heartbeat-{d.id}")
                                for d in beating]
        log.info("sim: %d devices at http://%s:%d/dev/", len(self._devices), self.host, self.port)

    async def stop(self) -> None:
        """Stop serving; requests still open (hanging, slowloris, huge) are dropped, not waited for."""
        self._stopping = True
        for fut in list(self._waiters):
            if not fut.done():
                fut.set_result(None)
        tasks, self._beat_tasks = self._beat_tasks, []
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------ queries

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def base_url(self, device_id: str) -> str:
        return f"http://{self.host}:{self.port}/dev/{device_id}"

    def device(self, device_id: str) -> Device:
        try:
            return self._devices[device_id]
        except KeyError:
            raise KeyError(f"no simulated device {device_id!r}") from None

    @property
    def devices(self) -> list[Device]:
        return list(self._devices.values())

    # ------------------------------------------------------------ request handling

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith("/dev/"):
            device_id, _, action = path[5:].partition("/")
            dev = self._devices.get(device_id)
            if dev is None:
                return web.Response(status=404, body=b'{"error":"no such device"}', content_type=_JSON)
            method = request.method
            if action == "health" and method in _HEALTH_METHODS:
                return await self._render(request, dev.respond(self.clock.monotonic()))
            if action == "restart" and method in _RESTART_METHODS:
                reply = dev.restart(self.clock.monotonic())
                log.debug("sim: %s restart #%d", dev.id, dev.restarts)
                return await self._render(request, reply)
            return web.Response(status=404, body=b'{"error":"not found"}', content_type=_JSON)
        if path.startswith("/sim/devices"):
            return await self._control(request, path[len("/sim/devices"):])
        return web.Response(status=404, body=b'{"error":"not found"}', content_type=_JSON)

    async def _render(self, request: web.BaseRequest, reply: Reply) -> web.StreamResponse:
        kind = reply.kind
        if reply.delay_s > 0 and not await self._pause(reply.delay_s):
            return self._abandon(request)
        if kind == "body":
            return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)
        if kind == "reset":
            return self._abandon(request)
        if kind == "hang":
            await self._pause(None)
            return self._abandon(request)
        if kind == "redirect":
            return web.Response(status=302, headers={"Location": request.path_qs})
        if kind == "stream":
            return await self._stream(request, reply)
        if kind == "trickle":
            return await self._trickle(request, reply)
        raise AssertionError(f"unhandled reply kind {kind}")  # pragma: no cover

    def _abandon(self, request: web.BaseRequest) -> web.StreamResponse:
        # aiohttp treats a write to a dropped connection as a client disconnect, quietly.
        _drop(request)
        return web.Response(status=503)

    async def _stream(self, request: web.BaseRequest, reply: Reply) -> web.StreamResponse:
        resp = web.StreamResponse(status=reply.status)
        resp.content_type = reply.content_type
        resp.content_length = reply.size_bytes
        chunk = b"x" * min(reply.chunk_bytes, max(reply.size_bytes, 1))
        try:
            await resp.prepare(request)
            left = reply.size_bytes
            while left > 0:
                if self._stopping:
                    return self._abandon(request)
                piece = chunk if left >= len(chunk) else chunk[:left]
                await resp.write(piece)  # waits for the client to drain: lazy, never 50 MB in memory
                left -= len(piece)
        except ConnectionError:
            pass
        return resp

    async def _trickle(self, request: web.BaseRequest, reply: Reply) -> web.StreamResponse:
        resp = web.StreamResponse(status=reply.status)
        resp.content_type = _JSON
        try:
            await resp.prepare(request)
            await resp.write(b"{")
            while await self._pause(reply.interval_s):
                await resp.write(b" ")
        except ConnectionError:
            return resp
        return self._abandon(request)

    async def _pause(self, seconds: float | None) -> bool:
        """Wait `seconds` of real time (None: until stop). False if the server is stopping.

        A bare future plus call_later, not wait_for: no task per waiting request.
        """
        if self._stopping:
            return False
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        handle = loop.call_later(seconds, _wake, fut) if seconds is not None else None
        self._waiters.add(fut)
        try:
            await fut
        finally:
            self._waiters.discard(fut)
            if handle is not None:
                handle.cancel()
        return not self._stopping

    # ------------------------------------------------------------ control API

    async def _control(self, request: web.BaseRequest, rest: str) -> web.StreamResponse:
        now = self.clock.monotonic()
        if rest in ("", "/"):
            if request.method != "GET":
                return _json(405, {"error": "use GET"})
            return _json(200, {"devices": [d.info(now) for d in self._devices.values()]})
        device_id = rest[1:] if rest.startswith("/") else ""
        dev = self._devices.get(device_id)
        if dev is None:
            return _json(404, {"error": f"no such device: {device_id!r}"})
        if request.method == "GET":
            return _json(200, dev.info(now))
        if request.method != "POST":
            return _json(405, {"error": "use GET or POST"})
        try:
            data = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _json(400, {"error": "body must be a JSON object"})
        if not isinstance(data, dict) or not isinstance(data.get("behaviour"), str):
            return _json(400, {"error": "body must be a JSON object with a 'behaviour' string"})
        params = dict(data)
        name = params.pop("behaviour")
        try:
            dev.set_behaviour(name, now=now, **params)
        except (ValueError, TypeError) as exc:
            return _json(400, {"error": str(exc)})
        log.info("sim: %s -> %s %s", dev.id, name, params or "")
        return _json(200, dev.info(now))

    # ------------------------------------------------------------ heartbeats

    async def _beat_loop(self, dev: Device) -> None:
        interval = dev.spec.heartbeat_interval_s
        assert interval
        while True:
            await self.clock.sleep(interval)
            url = self.heartbeat_url
            if url and self._session is not None and dev.alive(self.clock.monotonic()):
                await self._beat(self._session, url.rstrip("/") + "/heartbeat/" + dev.id, dev)

    async def _beat(self, session: aiohttp.ClientSession, url: str, dev: Device) -> None:
        headers = {"Authorization": f"Bearer {self.heartbeat_token}"} if self.heartbeat_token else None
        body = {"device": dev.id, "uptime_s": round(dev.uptime(self.clock.monotonic()), 1)}
        try:
            async with session.post(url, json=body, headers=headers) as resp:
                await resp.read()
                if resp.status < 300:
                    dev.heartbeats += 1
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            pass  # the receiver being away is normal for a simulator


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
