"""RemoteEngine: an engine on another host (or process), read through its stream, commanded over HTTP.

It offers the read and command surface of `EngineControl`, so a console cannot tell an attached
engine from its own, with one difference it must show: while the engine is unreachable, every
service it reported turns UNKNOWN and stale, its error saying "engine unreachable" with the age of
the last data, so old green is never shown as live. The client reconnects with capped exponential
backoff (core/backoff.py) and resumes the stream from the last journal seq it saw, so no event is
missed across the gap; history for charts is fetched from the engine's journal on demand.

Pure asyncio and aiohttp: it runs on whatever loop calls `run()` (the console puts all of them on
one worker loop, core/attach.py). Reads are reference reads of frozen values and safe from any thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import socket
import ssl
import threading
from typing import Any, Callable, Sequence
from urllib.parse import quote, urlencode, urlsplit

import aiohttp

from core.api_auth import is_loopback
from core.backoff import backoff_delay
from core.clock import Clock, SystemClock
from core.config_client import ConfigClient
from core.events import Event
from core.maintenance_board import MaintenanceWindowView, from_wire
from core.snapshot import AlertView, CommandResult, EngineStats, ServiceSnapshot
from core.wire import (UNREACHABLE, WireError, alert_from_wire, event_from_wire, format_age, patch_from_wire,
                       snapshot_from_wire, stats_from_wire, unreachable_view)

log = logging.getLogger("core.remote")

RECONNECT_BASE_S = 0.5
RECONNECT_MAX_S = 10.0
_EMPTY_STATS = EngineStats(0, 0.0, 0.0, 0, 0)
_MAX_PENDING_EVENTS = 20_000
_COMMAND_TIMEOUT_S = 15.0


def check_engine_url(url: str) -> str | None:
    """Why `url` cannot be an engine's address (one line), or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s):// engine URL"
    try:
        parts.port
    except ValueError:
        return f"{url!r} has a bad port"
    return None


def default_origin() -> str:
    """How this console names itself in an engine's journal: gui@<host>."""
    host = "".join(c if c.isalnum() or c in "._-" else "-" for c in socket.gethostname())[:64] or "unknown"
    return f"gui@{host}"


class RemoteEngine:
    """One attached engine.

    Attributes:
        url: the engine's base URL (https://host:port).
        name: the engine's site name (from its hello; the URL's host:port until then).
        connected: the stream is up and has delivered its hello.
        last_seq: the highest journal seq received (the stream resumes after it).
        last_data_wall: wall time of the last frame received (None before the first).
        error: why the last connection attempt failed or ended ("" while connected).
        read_only: its hello said our token is a viewer's (every command would get 403).
    """

    def __init__(self, url: str, token: str, *, origin: str | None = None, clock: Clock | None = None,
                 ca_file: str | None = None, session: aiohttp.ClientSession | None = None,
                 rng: random.Random | None = None, heartbeat_s: float = 5.0) -> None:
        problem = check_engine_url(url)
        if problem:
            raise ValueError(problem)
        parts = urlsplit(url)
        if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            log.warning("%s: plain http to another host: the token crosses the network in clear text", url)
        self.url = url.rstrip("/")
        self.name = parts.netloc
        self.read_only = False  # its hello said our token is a viewer's
        self._token = token
        self.origin = origin or default_origin()
        self.clock = clock or SystemClock()
        self._ssl: ssl.SSLContext | None = (ssl.create_default_context(cafile=ca_file)
                                            if parts.scheme == "https" else None)
        self._session_given = session
        self._session: aiohttp.ClientSession | None = session
        self._rng = rng or random.Random()
        self._heartbeat_s = heartbeat_s
        self.connected = False
        self._had_hello = False  # after the first hello, every reconnect resumes from last_seq
        # Set from another thread (core/multi.py): snapshots are qualified from the next frame on.
        self.qualifier = ""
        self._qualified_as = ""
        self.last_seq = 0
        self.last_data_wall: float | None = None
        self.error = "not connected yet"
        self.role = ""
        self._snapshots: dict[str, ServiceSnapshot] = {}
        self._alerts: list[AlertView] = []
        self._stats = _EMPTY_STATS
        self._pending: list[Event] = []
        self._pending_lock = threading.Lock()  # appended on the stream's loop, drained by the GUI thread
        self._offline_view: tuple[int, dict[str, ServiceSnapshot]] | None = None
        self._task: asyncio.Task[None] | None = None
        self.listeners: list[Callable[[RemoteEngine], None]] = []  # told when `connected` changes

    def __repr__(self) -> str:  # never the token
        return f"RemoteEngine({self.url!r}, name={self.name!r}, connected={self.connected})"

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the stream task on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name=f"remote:{self.url}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._session_given is None and self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5.0))
        return self._session

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}", "X-Faultwatch-Origin": self.origin}

    async def run(self) -> None:
        """Stay attached: connect, follow the stream, and on any loss reconnect with backoff."""
        attempt = 0
        while True:
            try:
                await self._follow()
                attempt = 0  # a stream that worked and then ended starts the backoff over
            except asyncio.CancelledError:
                self._set_connected(False)
                raise
            except aiohttp.WSServerHandshakeError as exc:
                self.error = _one_line(exc)
                if exc.status in (401, 403, 429):
                    attempt = max(attempt, 4)  # a wrong token will not fix itself quickly
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError, WireError) as exc:
                self.error = _one_line(exc)
            self._set_connected(False)
            attempt += 1
            delay = backoff_delay("exponential", attempt, RECONNECT_BASE_S, RECONNECT_MAX_S, "equal", self._rng)
            log.info("%s: %s; reconnecting in %.1f s", self.name, self.error or "stream ended", delay)
            await self.clock.sleep(delay)

    async def _follow(self) -> None:
        url = f"{self.url}/api/stream" + (f"?since={self.last_seq}" if self._had_hello else "")
        async with self._client().ws_connect(url, headers=self._headers(), ssl=self._ssl if self._ssl else True,
                                             heartbeat=self._heartbeat_s, max_msg_size=0,
                                             timeout=aiohttp.ClientWSTimeout(ws_close=2.0)) as ws:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._apply(json.loads(msg.data))
                elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                    break
            self.error = "the engine closed the stream"

    # ---------------------------------------------------------------- stream frames

    def _apply(self, body: dict[str, Any]) -> None:
        kind = body.get("t")
        self.last_data_wall = self.clock.wall()
        if kind == "hello":
            self.name = str(body.get("site") or self.name)
            self.read_only = body.get("role") == "viewer"
            self._qualified_as = self.qualifier
            self._snapshots = {s.id: self._qualify(s.id, s) for s in map(snapshot_from_wire, body.get("services", []))}
            self._alerts = [alert_from_wire(a) for a in body.get("alerts", [])]
            self._stats = stats_from_wire(body.get("stats", {}))
            engine_seq = int(body.get("seq", 0))
            if not self._had_hello or engine_seq < self.last_seq:
                if self._had_hello:
                    # Its journal went backwards (replaced or wiped): the seqs we saw mean nothing there.
                    log.warning("%s: journal seq went back from %d to %d; following it from there",
                                self.name, self.last_seq, engine_seq)
                self.last_seq = engine_seq
                self._had_hello = True
            self.error = ""
            self._set_connected(True)
            return
        if kind == "delta":
            changed = body.get("services", [])
            patches = body.get("patches", [])
            removed = body.get("removed", [])
            requalify = self.qualifier != self._qualified_as
            if changed or patches or removed or requalify:
                merged = dict(self._snapshots)
                if requalify:
                    self._qualified_as = self.qualifier
                    merged = {sid: self._qualify(sid, snap) for sid, snap in merged.items()}
                for raw in changed:
                    snap = snapshot_from_wire(raw)
                    merged[snap.id] = self._qualify(snap.id, snap)
                for patch in patches:
                    sid = str(patch.get("id"))
                    previous = merged.get(sid)
                    if previous is not None:
                        changes = patch.get("set", {})
                        snap = patch_from_wire(previous, changes)
                        if "id" in changes or "group" in changes:
                            snap = self._qualify(sid, snap)
                        merged[sid] = snap
                for sid in removed:
                    merged.pop(sid, None)
                self._snapshots = merged  # a new dict: readers on other threads swap references
            if "alerts" in body:
                self._alerts = [alert_from_wire(a) for a in body["alerts"]]
            if "stats" in body:
                self._stats = stats_from_wire(body["stats"])
        self._add_events(body.get("events", []))

    def _add_events(self, records: Sequence[Any]) -> None:
        for raw in records:
            event = event_from_wire(raw)
            if event.seq and event.seq <= self.last_seq:
                continue  # already seen (a replay overlapping the live frames)
            self.last_seq = max(self.last_seq, event.seq)
            with self._pending_lock:
                if len(self._pending) < _MAX_PENDING_EVENTS:
                    self._pending.append(event)

    def set_qualifier(self, prefix: str) -> None:
        """Qualify snapshots as "<prefix><id>" from the next frame on (any thread: one attribute)."""
        self.qualifier = prefix

    def _qualify(self, sid: str, snap: ServiceSnapshot) -> ServiceSnapshot:
        """With a qualifier ("site-a/"), the snapshot as a composite shows it: id and group qualified.

        Done here, on the attach thread, once per decoded snapshot, rather than by the composite on
        the GUI thread (a second copy of every changed snapshot, every poll).
        """
        prefix = self._qualified_as
        if not prefix:
            return snap
        return dataclasses.replace(snap, id=prefix + sid, group=prefix + snap.group)

    def _set_connected(self, connected: bool) -> None:
        if connected == self.connected:
            return
        self.connected = connected
        self._offline_view = None
        log.info("%s (%s): %s", self.name, self.url, "attached" if connected else f"unreachable: {self.error}")
        for listener in list(self.listeners):
            try:
                listener(self)
            except Exception:  # noqa: BLE001
                log.exception("remote listener failed")

    # ---------------------------------------------------------------- reads (any thread)

    def snapshots(self) -> dict[str, ServiceSnapshot]:
        if self.connected:
            return self._snapshots
        age = None if self.last_data_wall is None else self.clock.wall() - self.last_data_wall
        # Rebuilt once a second at most: the age in the text is whole seconds.
        key = -1 if age is None else int(age)
        cached = self._offline_view
        if cached is None or cached[0] != key:
            cached = (key, {sid: unreachable_view(s, age) for sid, s in self._snapshots.items()})
            self._offline_view = cached
        return cached[1]

    def alerts(self) -> list[AlertView]:
        return self._alerts

    def stats(self) -> EngineStats:
        return self._stats if self.connected else dataclasses.replace(self._stats, checks_per_second=0.0)

    def drain_events(self) -> list[Event]:
        with self._pending_lock:
            out, self._pending = self._pending, []
        return out

    # ---------------------------------------------------------------- commands (HTTP, operator token)

    async def _post(self, path: str) -> CommandResult:
        try:
            async with self._client().post(f"{self.url}{path}", headers=self._headers(), ssl=self._ssl or True,
                                           timeout=aiohttp.ClientTimeout(total=_COMMAND_TIMEOUT_S)) as resp:
                try:
                    body = await resp.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    body = {}
                if resp.status == 403:
                    return CommandResult(False, f"{self.name}: refused: this console's token may only read")
                if resp.status in (401, 429):
                    return CommandResult(False, f"{self.name}: refused: {body.get('error', resp.reason)}")
                if "ok" in body:
                    return CommandResult(bool(body["ok"]), str(body.get("message", "")))
                return CommandResult(False, f"{self.name}: HTTP {resp.status} {body.get('error', resp.reason)}")
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            return CommandResult(False, f"{self.name}: {UNREACHABLE} ({_one_line(exc)})")

    async def _each(self, ids: Sequence[str], path: Callable[[str], str]) -> CommandResult:
        if not ids:
            return CommandResult(False, "no service selected")
        results = [await self._post(path(i)) for i in ids]
        ok = all(r.ok for r in results)
        return CommandResult(ok, "; ".join(dict.fromkeys(r.message for r in results if r.message)))

    def _service_command(self, verb: str) -> Callable[[str], str]:
        return lambda sid: f"/api/services/{quote(sid, safe='')}/{verb}"

    async def force_open(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._each(service_ids, self._service_command("force-open"))

    async def force_close(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._each(service_ids, self._service_command("force-close"))

    async def reset(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._each(service_ids, self._service_command("reset"))

    async def restart(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._each(service_ids, self._service_command("restart"))

    async def pause(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._each(service_ids, self._service_command("pause"))

    async def resume(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._each(service_ids, self._service_command("resume"))

    async def acknowledge(self, alert_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._each(alert_ids, lambda a: f"/api/alerts/{quote(a, safe='')}/acknowledge")

    async def silence(self, alert_ids: Sequence[str], seconds: float, origin: str) -> CommandResult:
        return await self._each(alert_ids, lambda a: f"/api/alerts/{quote(a, safe='')}/silence?seconds={seconds:g}")

    async def maintenance(self, targets: Sequence[str], on: bool, origin: str,
                          until_wall: float | None = None) -> CommandResult:
        # The API applies the engine's default window (it takes no end time); services and groups
        # have their own routes.
        verb = "maintenance-on" if on else "maintenance-off"
        ids = set(self._snapshots)
        return await self._each(targets, lambda t: (f"/api/services/{quote(t, safe='')}/{verb}" if t in ids
                                                    else f"/api/groups/{quote(t, safe='')}/{verb}"))

    async def reload(self, path: str, origin: str) -> CommandResult:
        return CommandResult(False, f"{self.name}: an attached engine reloads its own config on its host "
                                    "(SIGHUP or its own console); device edits go through its API")

    def config_client(self) -> ConfigClient:
        """A client of this engine's /api/config/ routes: same token, TLS, session and origin (use it
        on the loop this engine runs on)."""
        return ConfigClient(self.url, self._token, origin=self.origin, name=self.name, ssl_context=self._ssl,
                            session=self._client)

    async def reload_own(self, origin: str, *, edit: str = "", service: str = "") -> CommandResult:
        """Ask the engine to reload its own config file (POST /api/reload): for the console's own
        engine in a child process (core/child.py), which shares the file with the console."""
        query = urlencode({k: v for k, v in (("edit", edit), ("service", service)) if v})
        return await self._post("/api/reload" + (f"?{query}" if query else ""))

    # ---------------------------------------------------------------- history (on demand)

    async def _get(self, path: str) -> Any:
        async with self._client().get(f"{self.url}{path}", headers=self._headers(), ssl=self._ssl or True,
                                      timeout=aiohttp.ClientTimeout(total=_COMMAND_TIMEOUT_S)) as resp:
            if resp.status != 200:
                raise ConnectionError(f"{self.name}: HTTP {resp.status} for {path.split('?')[0]}")
            return await resp.json()

    async def latency_history(self, service_id: str, since_wall: float,
                              rollup: bool = False) -> list[tuple[float, float | None]]:
        body = await self._get(f"/api/services/{quote(service_id, safe='')}/latency"
                               f"?since={since_wall:.3f}&rollup={1 if rollup else 0}")
        return [(float(p[0]), None if p[1] is None else float(p[1])) for p in body.get("points", [])]

    async def value_history(self, service_id: str, since_wall: float,
                            rollup: bool = False) -> list[tuple[float, float]]:
        body = await self._get(f"/api/services/{quote(service_id, safe='')}/values"
                               f"?since={since_wall:.3f}&rollup={1 if rollup else 0}")
        return [(float(p[0]), float(p[1])) for p in body.get("points", []) if p[1] is not None]

    async def journal_events(self, service_id: str | None = None, limit: int = 1000) -> list[Event]:
        query = f"?limit={int(limit)}" + (f"&service={quote(service_id, safe='')}" if service_id else "")
        body = await self._get(f"/api/events{query}")
        out: list[Event] = []
        for raw in body.get("events", []):
            try:
                out.append(event_from_wire(raw))
            except WireError as exc:
                log.warning("%s: skipping an unreadable event: %s", self.name, exc)
        return out

    async def scheduled_maintenance(self, horizon_s: float = 7 * 86400.0) -> list[MaintenanceWindowView]:
        """GET /api/maintenance (raw ids, as journal_events: the composite qualifies them)."""
        body = await self._get(f"/api/maintenance?horizon={horizon_s:.0f}")
        try:
            return from_wire(body)
        except ValueError as exc:
            raise ConnectionError(f"{self.name}: {exc}") from None


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return f"HTTP {exc.status} {exc.message}"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
