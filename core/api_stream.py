"""What an attached console reads from an engine: the live stream, history, and remote-only commands.

`GET /api/stream` is a WebSocket (docs/benchmarks.md says why not server-sent events). On connect it
sends one `hello` frame with every service, alert and the engine's figures; with `?since=SEQ` it then
replays the journal's events after SEQ, so a console that lost its connection misses nothing; after
that, one `delta` frame per interval carries the services that changed, the alert list when it
changed, the stats, and the events published since the last frame, each with its journal seq.

A client that cannot keep up is disconnected rather than buffered without limit: it reconnects with
`?since=` its last seq and the journal fills the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import socket
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping, Sequence

from aiohttp import WSMsgType, web

from core import __version__
from core.api_auth import ROLE
from core.events import Event
from core.snapshot import AlertView, EngineStats, ServiceSnapshot
from core.wire import WIRE_VERSION, alert_to_wire, event_to_wire, snapshot_to_wire, stats_to_wire, to_wire

log = logging.getLogger("core.api.stream")

REPLAY_PAGE = 2000
MAX_QUEUED_FRAMES = 64  # ~16 s of deltas at 0.25 s: past that the client is gone or hopeless
HISTORY_MAX_POINTS = 200_000
_WS_HEARTBEAT_S = 5.0


@dataclass(frozen=True, slots=True)
class EngineReads:
    """The engine reads the stream and the history routes need (all cheap, on the engine's loop)."""

    snapshots: Callable[[], Mapping[str, ServiceSnapshot]]
    alerts: Callable[[], Sequence[AlertView]]
    stats: Callable[[], EngineStats]
    last_seq: Callable[[], int]
    events_after: Callable[[int, int], list[Event]]  # (since_seq exclusive, limit) → oldest first
    journal_events: Callable[[str | None, int], list[Event]]  # (service or None, limit) → newest first
    latency: Callable[[str, float], list[tuple[float, float | None]]]
    rollup: Callable[[str, float], list[tuple[float, float | None, float | None, float | None]]]
    # (service, since, rollup) → [(wall, value)]: numeric values a check read (None: not offered)
    values: Callable[[str, float, bool], Awaitable[list[tuple[float, float]]]] | None = None


def _dumps(body: Any) -> str:
    return json.dumps(body, allow_nan=False, separators=(",", ":"))


class StreamHub:
    """Diffs the engine's reads once per interval and fans the result out to every stream client.

    Attributes:
        site: the name consoles show for this engine.
        clients: the connected clients' frame queues.
    """

    def __init__(self, reads: EngineReads, *, site: str = "", interval_s: float = 0.25) -> None:
        self.reads = reads
        self.site = site or socket.gethostname()
        self.interval_s = interval_s
        self.clients: set[asyncio.Queue[str | None]] = set()
        self._pending: list[Event] = []
        self._last_snapshots: dict[str, ServiceSnapshot] = {}
        self._last_wire: dict[str, dict[str, Any]] = {}  # what the clients hold, per service
        self._last_alerts: list[AlertView] = []
        self._task: asyncio.Task[None] | None = None
        self._sockets: set[web.WebSocketResponse] = set()

    # ---------------------------------------------------------------- engine side

    def publish(self, event: Event) -> None:
        """Engine listener: called with every journaled event, on the engine loop."""
        if self.clients:
            self._pending.append(event)

    def start(self) -> None:
        self._last_snapshots = dict(self.reads.snapshots())
        self._last_wire = {sid: snapshot_to_wire(s) for sid, s in self._last_snapshots.items()}
        self._last_alerts = list(self.reads.alerts())
        self._task = asyncio.get_running_loop().create_task(self._run(), name="api:stream")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for q in list(self.clients):
            _offer(q, None)
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                frame = self.delta()
            except Exception:  # noqa: BLE001 - one bad tick must not end every stream
                log.exception("stream tick failed")
                continue
            for q in list(self.clients):
                if not _offer(q, frame):
                    log.warning("stream client too slow: disconnected (it resumes from its last seq)")
                    self.clients.discard(q)
                    _offer(q, None, force=True)

    def delta(self) -> str:
        """The frame for this interval (also advances what counts as "last sent").

        A service seen before goes out as a patch, only the fields that changed (`patches`); a new one
        whole (`services`). Patches are relative to the last frame, which is why `hello()` describes
        the state as of the last frame, not as of now.
        """
        current = self.reads.snapshots()
        full: list[dict[str, Any]] = []
        patches: list[dict[str, Any]] = []
        last_wire = self._last_wire
        for sid, snap in current.items():
            prev = self._last_snapshots.get(sid)
            if prev is snap or prev == snap:
                continue
            wire = snapshot_to_wire(snap)
            before = last_wire.get(sid)
            if before is None:
                full.append(wire)
            else:
                patches.append({"id": sid, "set": {k: v for k, v in wire.items() if before.get(k) != v}})
            last_wire[sid] = wire
        removed = [sid for sid in self._last_snapshots if sid not in current]
        for sid in removed:
            last_wire.pop(sid, None)
        self._last_snapshots = dict(current)
        body: dict[str, Any] = {"t": "delta", "services": full, "patches": patches, "removed": removed,
                                "stats": stats_to_wire(self.reads.stats())}
        alerts = list(self.reads.alerts())
        if alerts != self._last_alerts:
            self._last_alerts = alerts
            body["alerts"] = [alert_to_wire(a) for a in alerts]
        events, self._pending = self._pending, []
        body["events"] = [event_to_wire(e) for e in events]
        body["seq"] = events[-1].seq if events else self.reads.last_seq()
        return _dumps(body)

    def hello(self, role: str = "") -> dict[str, Any]:
        # The services as of the last delta frame: the next frame's patches apply to exactly this.
        # `role` ("viewer", "operator", "" without tokens) lets a console grey out what it may not do.
        return {"t": "hello", "wire": WIRE_VERSION, "version": __version__, "site": self.site,
                "seq": self.reads.last_seq(), "role": role,
                "services": list(self._last_wire.values()),
                "alerts": [alert_to_wire(a) for a in self.reads.alerts()],
                "stats": stats_to_wire(self.reads.stats())}

    # ---------------------------------------------------------------- HTTP side

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/stream", self._stream)
        app.router.add_get("/api/engine", self._engine)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/api/services/{service_id}/latency", self._latency)
        app.router.add_get("/api/services/{service_id}/values", self._values)

    async def _engine(self, request: web.Request) -> web.StreamResponse:
        return _json({"site": self.site, "version": __version__, "wire": WIRE_VERSION,
                      "seq": self.reads.last_seq(), "role": request.get(ROLE, "")})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        since = _int_arg(request, "since")
        ws = web.WebSocketResponse(heartbeat=_WS_HEARTBEAT_S, max_msg_size=64 * 1024, compress=False)
        await ws.prepare(request)
        # Subscribe before reading anything, so no event falls between the replay and the live frames.
        q: asyncio.Queue[str | None] = asyncio.Queue(MAX_QUEUED_FRAMES)
        self.clients.add(q)
        self._sockets.add(ws)
        reader = asyncio.ensure_future(self._drain_incoming(ws))
        try:
            hello = self.hello(request.get(ROLE, ""))
            await ws.send_str(_dumps(hello))
            sent_seq = int(hello["seq"])
            if since is not None and since < sent_seq:
                # (A `since` beyond our journal is a console that followed another journal: live only.)
                sent_seq = await self._replay(ws, since)
            while not ws.closed:
                getter = asyncio.ensure_future(q.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                frame = getter.result()
                if frame is None:
                    break
                frame, sent_seq = _skip_replayed(frame, sent_seq)
                await ws.send_str(frame)
        except ConnectionError:
            pass  # the console went away; it resumes with ?since= when it comes back
        finally:
            self.clients.discard(q)
            self._sockets.discard(ws)
            reader.cancel()
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    async def _replay(self, ws: web.WebSocketResponse, since: int) -> int:
        """Send the journal's events after `since`, in pages; returns the last seq sent."""
        last = since
        while True:
            events = self.reads.events_after(last, REPLAY_PAGE)
            if not events:
                return last
            await ws.send_str(_dumps({"t": "events", "events": [event_to_wire(e) for e in events],
                                      "seq": events[-1].seq}))
            last = events[-1].seq
            if len(events) < REPLAY_PAGE:
                return last

    @staticmethod
    async def _drain_incoming(ws: web.WebSocketResponse) -> None:
        # Clients send nothing but pings (answered by aiohttp); reading is what notices a close.
        async for msg in ws:
            if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break

    async def _events(self, request: web.Request) -> web.StreamResponse:
        service = request.query.get("service") or None
        limit = min(max(_int_arg(request, "limit") or 1000, 1), 10_000)
        since = _int_arg(request, "since")
        if since is not None:
            events = self.reads.events_after(since, limit)
        else:
            events = self.reads.journal_events(service, limit)
        return _json({"events": [event_to_wire(e) for e in events], "seq": self.reads.last_seq()})

    async def _latency(self, request: web.Request) -> web.StreamResponse:
        service_id = request.match_info["service_id"]
        if service_id not in self.reads.snapshots():
            return _json({"error": f"unknown service {service_id!r}"}, 404)
        since = _float_arg(request, "since")
        if since is None:
            return _json({"error": "since (wall time, seconds) is required"}, 400)
        if request.query.get("rollup") in ("1", "true"):
            rows = self.reads.rollup(service_id, since)
            return _json({"rollup": True, "points": to_wire([list(r) for r in rows[-HISTORY_MAX_POINTS:]])})
        points = self.reads.latency(service_id, since)
        return _json({"rollup": False, "points": to_wire([list(p) for p in points[-HISTORY_MAX_POINTS:]])})

    async def _values(self, request: web.Request) -> web.StreamResponse:
        """Numeric values a check read (Modbus registers, SNMP gauges...): raw, or per-minute means."""
        service_id = request.match_info["service_id"]
        if service_id not in self.reads.snapshots():
            return _json({"error": f"unknown service {service_id!r}"}, 404)
        since = _float_arg(request, "since")
        if since is None:
            return _json({"error": "since (wall time, seconds) is required"}, 400)
        rollup = request.query.get("rollup") in ("1", "true")
        points = await (self.reads.values or _no_values)(service_id, since, rollup)
        return _json({"rollup": rollup, "points": to_wire([list(p) for p in points[-HISTORY_MAX_POINTS:]])})


async def _no_values(service: str, since: float, rollup: bool) -> list[tuple[float, float]]:
    return []


def _skip_replayed(frame: str, sent_seq: int) -> tuple[str, int]:
    """Drop events a replay already sent from a live frame (the only case that needs parsing)."""
    if '"events":[]' in frame:
        return frame, sent_seq
    body = json.loads(frame)
    events = [e for e in body.get("events", []) if int(e.get("seq", 0)) > sent_seq or not e.get("seq")]
    if len(events) != len(body.get("events", [])):
        body["events"] = events
        frame = _dumps(body)
    if events:
        sent_seq = max(sent_seq, max(int(e.get("seq", 0)) for e in events))
    return frame, sent_seq


def _offer(q: asyncio.Queue[str | None], frame: str | None, force: bool = False) -> bool:
    try:
        q.put_nowait(frame)
        return True
    except asyncio.QueueFull:
        if force:
            with contextlib.suppress(asyncio.QueueEmpty):
                q.get_nowait()
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(frame)
        return False


def _int_arg(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    if not (text.isascii() and text.isdigit()):
        raise web.HTTPBadRequest(reason=f"{name} must be a non-negative integer")
    return int(text)


def _float_arg(request: web.Request, name: str) -> float | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise web.HTTPBadRequest(reason=f"{name} must be a number") from None
    if not math.isfinite(value):
        raise web.HTTPBadRequest(reason=f"{name} must be finite")
    return value


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=_dumps(body), content_type="application/json")
