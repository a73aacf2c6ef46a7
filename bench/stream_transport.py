"""WebSocket or server-sent events for /api/stream: the same frames over both, on loopback.

    .venv/bin/python bench/stream_transport.py [--frames 400] [--services 250]

One aiohttp server offers both transports; the client (aiohttp too, as the console's) reads and
JSON-decodes every frame. Frames are real delta frames: `--services` changed ServiceSnapshots in
wire form (250 = 1,000 devices at 1 s, one frame per 0.25 s). Measured per transport: frames/s and
MB/s when sent as fast as possible, the process CPU per frame, and the time from a frame being
sent to it being decoded when sent one at a time (p50/p99). A server and a client in one process,
each run on its own loop thread so they do not share a loop. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CpuMeter, machine, table  # noqa: E402

from core.events import BreakerState, ServiceStatus  # noqa: E402
from core.snapshot import BreakerView, ServiceSnapshot  # noqa: E402
from core.wire import snapshot_to_wire  # noqa: E402


def frame(services: int, n: int) -> str:
    snaps = [ServiceSnapshot(
        id=f"dev-{i:04d}", name=f"Device {i}", group=f"rack-{i % 20}", endpoint=f"http://127.0.0.1:9000/d{i}",
        active_endpoint=f"http://127.0.0.1:9000/d{i}", active_endpoint_index=0, status=ServiceStatus.HEALTHY,
        failed=False, consecutive_failures=0, last_latency_ms=1.5 + n % 7, p50_ms=1.4, p95_ms=3.1,
        last_check_wall=1.78e9 + n, last_ok_wall=1.78e9 + n, last_error=None, stale=False,
        breaker=BreakerView(BreakerState.CLOSED, 0, 0, 1, 0, 2, 5, None), recovery=None, paused=False,
        maintenance=False, maintenance_until_wall=None, heartbeat="", storm_tripped=False, slow_threshold_ms=1000.0,
        timeout_ms=1000.0, check_interval_s=1.0, restart_action="", checks_total=1000 + n, restarts_total=0,
        latencies_ms=tuple(1.0 + (i + k) % 5 for k in range(10))) for i in range(services)]
    return json.dumps({"t": "delta", "services": [snapshot_to_wire(s) for s in snaps],
                       "removed": [], "events": []}, separators=(",", ":"))


class Server:
    def __init__(self, payload: str, frames: int) -> None:
        self.payload = payload
        self.frames = frames
        self.paced = False

    def _frame(self) -> str:
        # The send time goes into the frame (a fixed-width prefix, no re-encoding of the body).
        return '{"sent":%.6f,' % time.perf_counter() + self.payload[1:]

    async def ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        for _ in range(self.frames):
            await ws.send_str(self._frame())
            if self.paced:
                await asyncio.sleep(0.01)
        await ws.close()
        return ws

    async def sse(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        for i in range(self.frames):
            await resp.write(f"id: {i}\ndata: {self._frame()}\n\n".encode())
            if self.paced:
                await asyncio.sleep(0.01)
        await resp.write_eof()
        return resp


async def read_ws(session: aiohttp.ClientSession, url: str) -> list[float]:
    delays: list[float] = []
    async with session.ws_connect(url, max_msg_size=0) as ws:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                body = json.loads(msg.data)
                delays.append((time.perf_counter() - body["sent"]) * 1000.0)
    return delays


async def read_sse(session: aiohttp.ClientSession, url: str) -> list[float]:
    delays: list[float] = []
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
        data: list[bytes] = []
        # readline() would split at aiohttp's line-length limit; frames are one long data: line.
        buffer = b""
        async for chunk in resp.content.iter_any():
            buffer += chunk
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                data = [line[6:] for line in event.split(b"\n") if line.startswith(b"data: ")]
                if data:
                    body = json.loads(b"\n".join(data))
                    delays.append((time.perf_counter() - body["sent"]) * 1000.0)
    return delays


def serve(server: Server) -> tuple[str, asyncio.AbstractEventLoop, threading.Thread]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def start() -> None:
        app = web.Application()
        app.router.add_get("/ws", server.ws)
        app.router.add_get("/sse", server.sse)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        box["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
        ready.set()

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    ready.wait(10)
    return box["url"], loop, thread


def q(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return statistics.median(s), s[min(len(s) - 1, int(len(s) * 0.99))]


async def measure(url: str, server: Server, frames: int, size: int) -> list[list[Any]]:
    rows: list[list[Any]] = []
    async with aiohttp.ClientSession() as session:
        for name, reader, path in (("WebSocket", read_ws, "/ws"), ("SSE", read_sse, "/sse")):
            for _ in range(2):  # first round warms up
                server.paced = False
                cpu = CpuMeter()
                cpu.start()
                t = time.perf_counter()
                got = await reader(session, url + path)
                elapsed = time.perf_counter() - t
                cpu_pct = cpu.percent()
            server.paced = True
            paced = await reader(session, url + path)
            p50, p99 = q(paced)
            rows.append([name, len(got) / elapsed, len(got) * size / elapsed / 1e6,
                         cpu_pct * elapsed * 10.0 / max(1, len(got)), p50, p99])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=400)
    p.add_argument("--services", type=int, default=250, help="changed services per frame")
    ns = p.parse_args(argv)
    payload = frame(ns.services, 1)
    server = Server(payload, ns.frames)
    url, loop, thread = serve(server)
    rows = asyncio.run(measure(url, server, ns.frames, len(payload)))
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    print(f"# bench/stream_transport.py — {machine()}")
    print(f"# {ns.frames} frames of {ns.services} changed services ({len(payload) / 1024:.0f} KiB each), loopback")
    print(table(["transport", "frames/s", "MB/s", "CPU ms/frame", "delay p50 ms", "delay p99 ms"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
