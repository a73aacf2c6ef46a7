"""MultiEngine: several engines (the console's own and attached ones) seen as one EngineControl.

The window, the wall and the status bar work on one id space, so ids are qualified by engine:
service "plc-1" of the engine named "site-a" is "site-a/plc-1", its group "rack-a" becomes
"site-a/rack-a" (so grouping by group groups by site first), and its alerts and events are
qualified the same way. The console's own engine, if any, keeps its ids unqualified, so a console
that attaches nothing looks exactly as before. Commands are split by qualifier and each part goes
to the engine that owns it, and only to it.

Merging runs on every bridge poll, so it reuses qualified snapshots whose source did not change
(the bridge diffs by identity first).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol, Sequence

from core.events import Event
from core.maintenance_board import MaintenanceWindowView
from core.snapshot import AlertView, CommandResult, EngineControl, EngineStats, ServiceSnapshot

SEP = "/"


class Attached(EngineControl, Protocol):
    """An engine with a name (RemoteHandle)."""

    @property
    def name(self) -> str: ...

    @property
    def read_only(self) -> bool: ...  # attached with a viewer token


@dataclass(eq=False)
class _Member:
    engine: EngineControl
    label: str  # "" for the console's own engine (ids unqualified); fixed once it has data
    raw: dict[str, ServiceSnapshot] = field(default_factory=dict)
    qualified: dict[str, ServiceSnapshot] = field(default_factory=dict)
    alerts_raw: list[AlertView] | None = None
    alerts: list[AlertView] = field(default_factory=list)


def _sanitize(label: str) -> str:
    return label.replace(SEP, "-").strip() or "engine"


class MultiEngine:
    """EngineControl over a local engine (optional) and any number of attached ones.

    Attributes:
        local: the console's own engine (EngineThread), or None when only attached engines are shown.
        attacher: the AttachThread hosting the attached engines' clients (created on first attach).
    """

    def __init__(self, local: EngineControl | None = None, attacher: Any = None) -> None:
        self.local = local
        self.attacher = attacher
        self._members: list[_Member] = [_Member(local, "")] if local is not None else []
        self._merged: dict[str, ServiceSnapshot] = {}
        self._stale = True  # membership changed: merge again even if no member's dict did
        # Engines whose scheduled maintenance the last scheduled_maintenance() could not read: label → why.
        self.maintenance_unavailable: dict[str, str] = {}

    # ---------------------------------------------------------------- membership

    def add(self, engine: EngineControl) -> None:
        """Add an attached engine; its label is fixed from its name when it first has services."""
        self._members.append(_Member(engine, ""))
        self._stale = True

    def remove(self, engine: EngineControl) -> None:
        self._members = [m for m in self._members if m.engine is not engine]
        self._stale = True

    def attach(self, url: str, token: str, *, ca_file: str | None = None) -> Any:
        """Attach to the engine at `url` on the attach thread (never blocks); returns its handle."""
        if self.attacher is None:
            from core.attach import AttachThread

            self.attacher = AttachThread()
        handle = self.attacher.attach(url, token, ca_file=ca_file)
        self.add(handle)
        return handle

    @property
    def attached(self) -> list[Any]:
        return [m.engine for m in self._members if m.engine is not self.local]

    def label_of(self, engine: EngineControl) -> str:
        for m in self._members:
            if m.engine is engine:
                return m.label
        return ""

    def _label(self, m: _Member) -> str:
        if m.engine is self.local or m.label:
            return m.label
        name = _sanitize(str(getattr(m.engine, "name", "") or "engine"))
        taken = {x.label for x in self._members if x is not m}
        label, n = name, 2
        while label in taken:
            label, n = f"{name}#{n}", n + 1
        return label

    def _owner(self, qualified: str) -> tuple[_Member, str] | None:
        """(member, id inside it) for a qualified id; unqualified ids belong to the local engine."""
        label, sep, rest = qualified.partition(SEP)
        if sep:
            for m in self._members:
                if m.label and m.label == label:
                    return m, rest
        if self.local is not None:
            return self._members[0], qualified
        return None

    def read_only_engines(self, qualified_ids: Sequence[str]) -> list[str]:
        """The labels of the engines owning some of these ids that were attached with a viewer
        token (they would refuse commands), in order; [] when every owner takes commands."""
        out: list[str] = []
        for qid in qualified_ids:
            owner = self._owner(qid)
            if owner is None or owner[0].engine is self.local:
                continue
            m = owner[0]
            if getattr(m.engine, "read_only", False) and m.label not in out:
                out.append(m.label)
        return out

    def owner_of(self, qualified: str) -> tuple[EngineControl, str, str] | None:
        """(engine, id inside it, its label) for a qualified id; the label is "" for the console's own."""
        owner = self._owner(qualified)
        if owner is None:
            return None
        m, raw = owner
        return m.engine, raw, m.label

    def _q(self, m: _Member, raw_id: str) -> str:
        return f"{m.label}{SEP}{raw_id}" if m.label else raw_id

    # ---------------------------------------------------------------- reads

    def snapshots(self) -> dict[str, ServiceSnapshot]:
        changed = False
        for m in self._members:
            raw = m.engine.snapshots()
            if raw is not m.raw:
                if raw and not m.label and m.engine is not self.local:
                    m.label = self._label(m)
                    qualify = getattr(m.engine, "set_qualifier", None)
                    if qualify is not None:
                        qualify(f"{m.label}{SEP}")  # it qualifies its own snapshots from now on
                if m.label:
                    # Copy the qualified dict (C speed) and redo only what changed: a poll at 5,000
                    # services must not format 5,000 ids.
                    old_raw = m.raw if m.qualified else {}
                    qualified = dict(m.qualified) if old_raw else {}
                    prefix = f"{m.label}{SEP}"
                    get = old_raw.get
                    for sid, snap in raw.items():
                        if get(sid) is not snap:
                            qid = prefix + sid
                            qualified[qid] = snap if snap.id == qid else dataclasses.replace(
                                snap, id=qid, group=prefix + snap.group)
                    if len(qualified) != len(raw):
                        for sid in old_raw.keys() - raw.keys():
                            qualified.pop(prefix + sid, None)
                    m.qualified = qualified
                else:
                    m.qualified = raw
                m.raw = raw
                changed = True
        if changed or self._stale:
            self._stale = False
            if len(self._members) == 1:
                self._merged = self._members[0].qualified
            else:
                merged: dict[str, ServiceSnapshot] = {}
                for m in self._members:
                    merged.update(m.qualified)
                self._merged = merged
        return self._merged

    def alerts(self) -> list[AlertView]:
        out: list[AlertView] = []
        for m in self._members:
            raw = m.engine.alerts()
            if raw is not m.alerts_raw:
                m.alerts_raw = raw
                m.alerts = raw if not m.label else [
                    dataclasses.replace(a, id=self._q(m, a.id), service=self._q(m, a.service) if a.service else "",
                                        group=f"{m.label}{SEP}{a.group}" if a.group else "",
                                        message=f"{m.label}: {a.message}")  # the banner names the engine
                    for a in raw]
            out.extend(m.alerts)
        return out

    def stats(self) -> EngineStats:
        parts = [m.engine.stats() for m in self._members]
        if not parts:
            return EngineStats(0, 0.0, 0.0, 0, 0)
        return EngineStats(sum(p.checks_total for p in parts), sum(p.checks_per_second for p in parts),
                           max(p.loop_lag_ms for p in parts), sum(p.services for p in parts),
                           sum(p.events_total for p in parts))

    def drain_events(self) -> list[Event]:
        out: list[Event] = []
        for m in self._members:
            events = m.engine.drain_events()
            out.extend(events if not m.label else [self._qualify_event(m, e) for e in events])
        return out

    def _qualify_event(self, m: _Member, e: Event) -> Event:
        return dataclasses.replace(e, service=self._q(m, e.service) if e.service else m.label)

    # ---------------------------------------------------------------- commands

    async def _split(self, ids: Sequence[str],
                     call: Callable[[EngineControl, list[str]], Awaitable[CommandResult]]) -> CommandResult:
        parts: dict[int, tuple[_Member, list[str]]] = {}
        unknown: list[str] = []
        for qid in ids:
            owner = self._owner(qid)
            if owner is None:
                unknown.append(qid)
                continue
            m, raw = owner
            parts.setdefault(id(m), (m, []))[1].append(raw)
        results = await asyncio.gather(*(call(m.engine, raw) for m, raw in parts.values()),
                                       return_exceptions=True)
        messages: list[str] = []
        ok = not unknown
        for (m, _), r in zip(parts.values(), results):
            if isinstance(r, BaseException):
                ok = False
                messages.append(f"{m.label or 'local'}: {r}")
            else:
                ok = ok and r.ok
                if r.message:
                    messages.append(f"{m.label}: {r.message}" if m.label and len(parts) > 1 else r.message)
        if unknown:
            messages.append(f"unknown: {', '.join(unknown)}")
        if not parts and not unknown:
            return CommandResult(False, "no service selected")
        return CommandResult(ok, "; ".join(messages))

    async def force_open(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._split(service_ids, lambda e, ids: e.force_open(ids, origin))

    async def force_close(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._split(service_ids, lambda e, ids: e.force_close(ids, origin))

    async def reset(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._split(service_ids, lambda e, ids: e.reset(ids, origin))

    async def restart(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._split(service_ids, lambda e, ids: e.restart(ids, origin))

    async def pause(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._split(service_ids, lambda e, ids: e.pause(ids, origin))

    async def resume(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._split(service_ids, lambda e, ids: e.resume(ids, origin))

    async def acknowledge(self, alert_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._split(alert_ids, lambda e, ids: e.acknowledge(ids, origin))

    async def silence(self, alert_ids: Sequence[str], seconds: float, origin: str) -> CommandResult:
        return await self._split(alert_ids, lambda e, ids: e.silence(ids, seconds, origin))

    async def maintenance(self, targets: Sequence[str], on: bool, origin: str,
                          until_wall: float | None = None) -> CommandResult:
        return await self._split(targets, lambda e, ids: e.maintenance(ids, on, origin, until_wall))

    async def reload(self, path: str, origin: str) -> CommandResult:
        if self.local is None:
            return CommandResult(False, "this console runs no engine of its own: reload an attached "
                                        "engine's config on its host")
        return await self.local.reload(path, origin)

    async def latency_history(self, service_id: str, since_wall: float,
                              rollup: bool = False) -> list[tuple[float, float | None]]:
        owner = self._owner(service_id)
        if owner is None:
            return []
        return await owner[0].engine.latency_history(owner[1], since_wall, rollup)

    async def value_history(self, service_id: str, since_wall: float,
                            rollup: bool = False) -> list[tuple[float, float]]:
        owner = self._owner(service_id)
        if owner is None:
            return []
        return await owner[0].engine.value_history(owner[1], since_wall, rollup)

    async def journal_events(self, service_id: str | None = None, limit: int = 1000) -> list[Event]:
        if service_id is not None:
            owner = self._owner(service_id)
            if owner is None:
                return []
            m, raw = owner
            events = await m.engine.journal_events(raw, limit)
            return events if not m.label else [self._qualify_event(m, e) for e in events]
        members = [m for m in self._members if m.label or m.engine is self.local]
        results = await asyncio.gather(*(m.engine.journal_events(None, limit) for m in members),
                                       return_exceptions=True)
        out: list[Event] = []
        for m, r in zip(members, results):
            if isinstance(r, BaseException):
                continue  # an unreachable engine has no history to give now; its stream replays later
            out.extend(r if not m.label else [self._qualify_event(m, e) for e in r])
        out.sort(key=lambda e: e.wall, reverse=True)
        return out[:limit]

    async def scheduled_maintenance(self, horizon_s: float = 7 * 86400.0) -> list[MaintenanceWindowView]:
        """Every engine's windows, ids qualified. An engine that cannot answer is left out, the others
        still show, and `maintenance_unavailable` names it with the reason (the panel says so)."""
        members = [m for m in self._members if m.label or m.engine is self.local]
        results = await asyncio.gather(*(m.engine.scheduled_maintenance(horizon_s) for m in members),
                                       return_exceptions=True)
        out: list[MaintenanceWindowView] = []
        unavailable: dict[str, str] = {}
        for m, r in zip(members, results):
            if isinstance(r, BaseException):
                if isinstance(r, asyncio.CancelledError):
                    raise r
                unavailable[m.label or "this console"] = str(r).splitlines()[0] if str(r) else type(r).__name__
                continue
            out.extend(r if not m.label else [
                dataclasses.replace(w, name=f"{m.label}: {w.name}", services=tuple(self._q(m, s) for s in w.services))
                for w in r])
        out.sort(key=lambda w: (not w.active, w.end_wall if w.active else w.start_wall, w.name))
        self.maintenance_unavailable = unavailable
        return out

    # ---------------------------------------------------------------- what the window reads besides

    @property
    def config(self) -> Any:
        return getattr(self.local, "config", None)

    @property
    def config_path(self) -> str | None:
        path = getattr(self.local, "config_path", None)
        return str(path) if path else None

    def alert_sound(self) -> bool:
        return bool(self.local.alert_sound()) if self.local is not None else False

    def start(self) -> None:
        starter = getattr(self.local, "start", None)
        if starter is not None:
            starter()
        if self.attacher is not None:
            self.attacher.start()

    def stop(self) -> None:
        if self.attacher is not None:
            self.attacher.stop()
        stopper = getattr(self.local, "stop", None)
        if stopper is not None:
            stopper()
