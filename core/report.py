"""Reports: what the journal says about one period — availability, outages, detection and recovery.

Reads the journal through its own read-only SQLite connection (`mode=ro`): in WAL mode a reader
never blocks the engine's writer, so a report can be made while an engine runs. Nothing here writes.

How time is classified, per service (docs/reports.md has the reader's version):

* not monitored: the engine was not running (a gap with no events and no samples from any service,
  at least `gap_s` long, or between `engine_stop`/`engine_start` markers if the journal has them),
  the service's verdict was unknown (before its first check, checks paused), or the service had
  stopped reporting (no sample or event since; removed from the config). Never downtime.
* maintenance: the service or its group was in maintenance (planned; outside the availability ratio).
* down: inside an outage. An outage is a run of failed checks that reached the service's
  `max_failures` (the console's red "failed"); it starts at the first failed check and ends at the
  next healthy or degraded verdict. A shorter run of failures (the amber "FAILING n/N") is a blip,
  counted as degraded.
* degraded: slow (or a blip); healthy: the rest.

availability % = healthy / (monitored − maintenance); up % counts degraded as up too. Outages are clipped at the period's edges, at
maintenance and at engine gaps; a clipped piece says so (`clipped_start`, `clipped_end`).
Time to detect = failure verdict − last good check (the last ok sample before the first failed check,
from raw samples; when those are past `raw_retention_hours`, from the first failed check). Time to
recover = healthy again − failure verdict. MTBF = (healthy + degraded) / failures that began in the
period. Restarts, failovers, reboots are counted from `recovery` and `reboot` events in the period.
"""

from __future__ import annotations

import bisect
import json
import math
import operator
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from core.clock import iso_utc
from core.journal import SCHEMA_VERSION

DEFAULT_GAP_S = 300.0
# Default check interval 30 s, breaker timeout 60 s: a running engine is never silent this long.
DEFAULT_FINE_GAP_S = 120.0
DEFAULT_MAX_FAILURES = 3
_MIN = 60
# Events that change state or are counted; alerts and anomalies are left in the file.
_KINDS = ("probe", "breaker", "recovery", "action", "reboot")
_BLOCKING = frozenset({"open", "forced_open"})
_FORCED = frozenset({"forced_open", "forced_closed"})
_UP_STATUSES = frozenset({"healthy", "degraded"})
# Where in a tie the engine-gap edges fall: a gap ends at its first evidence (before that event is
# applied) and starts at its last evidence (after that event is applied).
_ORDER_GAP_END, _ORDER_EVENT, _ORDER_GAP_START = 0, 1, 2


class ReportError(Exception):
    """The journal cannot be read for a report; the message is one line."""


# ---------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """What a report needs to know about a service from the configuration."""

    group: str = ""
    max_failures: int = DEFAULT_MAX_FAILURES


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """One report's period and scope.

    Attributes:
        since, until: the period, wall seconds (UTC), since < until.
        group, service: only this group / service (None: all).
        services: known services (from the config): their group and failure threshold. Services
            found only in the journal are reported too, with `default_max_failures`.
        gap_s: a stretch this long with nothing journaled by anyone is an engine gap (not monitored).
        fine_gap_s: the same, shorter, where raw samples are still kept (None: not searched). It must
            be longer than the longest silence a running engine can have: a check interval, or an
            open breaker's timeout plus an interval when every device's breaker is open at once.
    """

    since: float
    until: float
    group: str | None = None
    service: str | None = None
    services: Mapping[str, ServiceInfo] = field(default_factory=dict)
    default_max_failures: int = DEFAULT_MAX_FAILURES
    gap_s: float = DEFAULT_GAP_S
    fine_gap_s: float | None = DEFAULT_FINE_GAP_S


@dataclass(frozen=True, slots=True)
class Step:
    """One thing done about an outage: a recovery step, an operator action, a reboot seen."""

    at: float
    kind: str  # restart | failover | failback | action | reboot
    outcome: str  # recovery outcome, the action's command, or "seen"
    attempt: int = 0
    detail: str = ""

    def text(self) -> str:
        head = f"{self.kind} {self.outcome}" if self.kind not in ("action", "reboot") else (
            f"{self.outcome}" if self.kind == "action" else "reboot seen")
        if self.attempt:
            head += f" (attempt {self.attempt})"
        return f"{iso_utc(self.at)[11:19]} {head}" + (f": {self.detail}" if self.detail else "")

    def to_json(self) -> dict[str, Any]:
        return {"at": iso_utc(self.at), "kind": self.kind, "outcome": self.outcome, "attempt": self.attempt,
                "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Outage:
    """One outage (or the part of it inside the period and outside maintenance and engine gaps).

    Attributes:
        start, end: wall seconds; `clipped_start`/`clipped_end` when an edge is the period's, a
            maintenance window's or an engine gap's rather than the failure's own.
        detected: the failure verdict (max_failures reached), None if not known.
        ttd_s, ttr_s: time to detect / recover for this outage, None where not measurable.
        end_reason: recovered | period_end | maintenance | not_monitored.
    """

    service: str
    group: str
    start: float
    end: float
    detected: float | None
    ttd_s: float | None
    ttr_s: float | None
    failure_type: str
    error: str
    steps: tuple[Step, ...]
    clipped_start: bool
    clipped_end: bool
    end_reason: str

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def cause(self) -> str:
        return ": ".join(p for p in (self.failure_type, self.error) if p) or "unknown"

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service, "group": self.group, "start": iso_utc(self.start), "end": iso_utc(self.end),
            "duration_s": _r(self.duration_s),
            "cause": {"failure_type": self.failure_type, "error": self.error},
            "steps": [s.to_json() for s in self.steps],
            "detected": None if self.detected is None else iso_utc(self.detected),
            "ttd_s": _r(self.ttd_s), "ttr_s": _r(self.ttr_s),
            "clipped_start": self.clipped_start, "clipped_end": self.clipped_end, "end_reason": self.end_reason,
        }


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of one service, one group or the fleet over the period (seconds unless named)."""

    monitored_s: float = 0.0
    healthy_s: float = 0.0
    degraded_s: float = 0.0
    maintenance_s: float = 0.0
    downtime_s: float = 0.0
    outages: int = 0
    failures: int = 0  # outages that began inside the period (the MTBF divisor)
    longest_outage_s: float = 0.0
    ttd_s: float | None = None
    ttr_s: float | None = None
    mtbf_s: float | None = None
    restarts: int = 0
    restarts_ok: int = 0
    restarts_gave_up: int = 0
    failovers: int = 0
    breaker_open_s: float = 0.0
    reboots: int = 0

    @property
    def availability_pct(self) -> float | None:
        base = self.monitored_s - self.maintenance_s
        return None if base <= 0 else 100.0 * self.healthy_s / base

    @property
    def up_pct(self) -> float | None:
        """Like availability, with degraded (slow, or failing short of the threshold) counted as up."""
        base = self.monitored_s - self.maintenance_s
        return None if base <= 0 else 100.0 * (self.healthy_s + self.degraded_s) / base

    @property
    def restart_success_pct(self) -> float | None:
        return None if not self.restarts else 100.0 * self.restarts_ok / self.restarts

    def to_json(self) -> dict[str, Any]:
        pct, up = self.availability_pct, self.up_pct
        return {
            "availability_pct": None if pct is None else round(pct, 3),
            "up_pct": None if up is None else round(up, 3),
            "outages": self.outages, "downtime_s": _r(self.downtime_s),
            "ttd_s": _r(self.ttd_s), "ttr_s": _r(self.ttr_s), "mtbf_s": _r(self.mtbf_s),
            "restarts": self.restarts, "restarts_ok": self.restarts_ok,
            "breaker_open_s": _r(self.breaker_open_s), "reboots": self.reboots,
            "monitored_s": _r(self.monitored_s), "healthy_s": _r(self.healthy_s),
            "degraded_s": _r(self.degraded_s), "maintenance_s": _r(self.maintenance_s),
            "longest_outage_s": _r(self.longest_outage_s), "failures": self.failures,
            "restarts_gave_up": self.restarts_gave_up, "failovers": self.failovers,
        }


@dataclass(frozen=True, slots=True)
class ServiceReport:
    id: str
    group: str
    figures: Figures


@dataclass(frozen=True, slots=True)
class GroupReport:
    name: str
    services: int
    figures: Figures


@dataclass(frozen=True, slots=True)
class Report:
    """A whole report. `gaps` are the engine gaps (not monitored) that overlap the period, clipped."""

    since: float
    until: float
    services: tuple[ServiceReport, ...]
    groups: tuple[GroupReport, ...]
    fleet: Figures
    outages: tuple[Outage, ...]
    gaps: tuple[tuple[float, float], ...]
    scope: str = ""  # "group rack-a", "service plc-1" or "" for the whole fleet

    def to_json(self) -> dict[str, Any]:
        """The documented shape (docs/reports.md): period, services, outages; groups and fleet added."""
        return {
            "period": {"since": iso_utc(self.since), "until": iso_utc(self.until)},
            "services": [{"id": s.id, "group": s.group, **s.figures.to_json()} for s in self.services],
            "outages": [o.to_json() for o in self.outages],
            "groups": [{"group": g.name, "services": g.services, **g.figures.to_json()} for g in self.groups],
            "fleet": {"services": len(self.services), **self.fleet.to_json()},
            "not_monitored": [{"start": iso_utc(a), "end": iso_utc(b), "duration_s": _r(b - a)}
                              for a, b in self.gaps],
        }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# ---------------------------------------------------------------- reading the journal


class _Ev(NamedTuple):
    """One journaled event as a report needs it (a tuple: hundreds of thousands are made per report)."""

    seq: int
    kind: str
    service: str
    wall: float
    rec: Mapping[str, Any]


_SEQ = operator.itemgetter(0)
_POINT_ORDER = operator.itemgetter(0, 1, 2)  # time, then gap end / event / gap start, then seq


class JournalReader:
    """A read-only view of a journal file for reports; never writes, never takes the write lock."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise ReportError(f"{self.path}: no journal here (has an engine run with this state directory?)")
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        try:
            self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=5.0)
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise ReportError(f"{self.path}: cannot read journal: {_one_line(exc)}") from None
        if version == 0:
            self._conn.close()
            raise ReportError(f"{self.path}: not a Faultwatch journal")
        if version > SCHEMA_VERSION:
            self._conn.close()
            raise ReportError(f"{self.path}: journal schema v{version} is newer than this Faultwatch "
                              f"reads (v{SCHEMA_VERSION})")
        rows = self.q("SELECT sid, name FROM services")
        self.sids: dict[str, int] = {str(name): int(sid) for sid, name in rows}

    def q(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise ReportError(f"{self.path}: journal read failed: {_one_line(exc)}") from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> JournalReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- events

    def events(self, since: float, until: float) -> list[_Ev]:
        """The events a report uses, oldest first. Probe and breaker events (most of a busy journal)
        are read field by field in SQL: decoding every record in Python was the report's largest cost."""
        out: list[_Ev] = []
        for seq, svc, wall, status, cf, error in self.q(
                "SELECT seq, service, wall, json_extract(record, '$.status'),"
                " json_extract(record, '$.consecutive_failures'), json_extract(record, '$.error')"
                " FROM events WHERE wall >= ? AND wall < ? AND kind = 'probe'", (since, until)):
            out.append(_Ev(int(seq), "probe", str(svc), float(wall),
                           {"status": status, "consecutive_failures": cf, "error": error}))
        for seq, svc, wall, to in self.q(
                "SELECT seq, service, wall, json_extract(record, '$.to') FROM events"
                " WHERE wall >= ? AND wall < ? AND kind = 'breaker'", (since, until)):
            out.append(_Ev(int(seq), "breaker", str(svc), float(wall), {"to": to}))
        for seq, svc, wall, rid, strategy, outcome, attempt, detail, ftype in self.q(
                "SELECT seq, service, wall, json_extract(record, '$.recovery_id'), json_extract(record, '$.strategy'),"
                " json_extract(record, '$.outcome'), json_extract(record, '$.attempt'),"
                " json_extract(record, '$.detail'), json_extract(record, '$.failure_type')"
                " FROM events WHERE wall >= ? AND wall < ? AND kind = 'recovery'", (since, until)):
            out.append(_Ev(int(seq), "recovery", str(svc), float(wall),
                           {"recovery_id": rid, "strategy": strategy, "outcome": outcome, "attempt": attempt,
                            "detail": detail, "failure_type": ftype}))
        for seq, kind, svc, wall, rec in self.q(
                "SELECT seq, kind, service, wall, record FROM events WHERE wall >= ? AND wall < ?"
                " AND kind IN ('action', 'reboot')", (since, until)):
            out.append(_Ev(int(seq), str(kind), str(svc), float(wall), _loads(rec)))
        out.sort(key=_SEQ)
        return out

    def sample_walls(self, sid: int, lo: float, hi: float) -> list[float]:
        return [v / 1000.0 for (v,) in self.q("SELECT wall_ms FROM samples WHERE sid = ? AND wall_ms > ?"
                                              " AND wall_ms < ? ORDER BY wall_ms", (sid, _ms(lo), _ms(hi)))]

    def typical_interval(self, limit: int = 50) -> float | None:
        """The largest median spacing of recent raw samples over the services (their check interval)."""
        worst: float | None = None
        for sid in self.sids.values():
            walls = [v for (v,) in self.q("SELECT wall_ms FROM samples WHERE sid = ? ORDER BY wall_ms DESC LIMIT ?",
                                          (sid, limit))]
            steps = sorted(a - b for a, b in zip(walls, walls[1:]))
            if steps:
                median = steps[len(steps) // 2] / 1000.0
                worst = median if worst is None else max(worst, median)
        return worst

    def fleet_raw_floor(self) -> float | None:
        """Where raw samples begin (prune() cuts every service at the same time)."""
        best: float | None = None
        for sid in self.sids.values():
            (v,) = self.q("SELECT min(wall_ms) FROM samples WHERE sid = ?", (sid,))[0]
            if v is not None and (best is None or v / 1000.0 < best):
                best = v / 1000.0
        return best

    def raw_floor(self, service: str) -> float | None:
        """The service's oldest raw sample (older ones are pruned; only rollups remain)."""
        sid = self.sids.get(service)
        if sid is None:
            return None
        (v,) = self.q("SELECT min(wall_ms) FROM samples WHERE sid = ?", (sid,))[0]
        return None if v is None else v / 1000.0

    def last_before(self, kind: str, since: float, services: Iterable[str]) -> dict[str, _Ev]:
        """Each service's last event of `kind` before `since`.

        One backwards walk of the (service, seq) index per service, starting at the last seq before
        `since`: a GROUP BY over the whole table cost 0.6 s on a month of 1,000 devices."""
        (top,) = self.q("SELECT max(seq) FROM events WHERE wall < ?", (since,))[0]
        out: dict[str, _Ev] = {}
        if top is None:
            return out
        for name in services:
            rows = self.q("SELECT seq, kind, service, wall, record FROM events WHERE service = ? AND seq <= ?"
                          " AND kind = ? AND wall < ? ORDER BY seq DESC LIMIT 1", (name, top, kind, since))
            if rows:
                seq, k, svc, wall, rec = rows[0]
                out[str(svc)] = _Ev(int(seq), str(k), str(svc), float(wall), _loads(rec))
        return out

    def maintenance_before(self, since: float) -> dict[str, bool]:
        """Each maintenance target's state (service id or group) just before `since`."""
        rows = self.q("SELECT service, record FROM events WHERE kind = 'action' AND wall < ?"
                      " AND record LIKE '%maintenance_o%' ORDER BY seq", (since,))
        state: dict[str, bool] = {}
        for svc, rec in rows:
            r = _loads(rec)
            if r.get("ok", True) and r.get("command") in ("maintenance_on", "maintenance_off"):
                state[str(svc)] = r.get("command") == "maintenance_on"
        return state

    def alert_groups(self) -> dict[str, str]:
        """service → group as alerts named it (for services the config does not know)."""
        rows = self.q("SELECT service, json_extract(record, '$.group') FROM events WHERE seq IN"
                      " (SELECT max(seq) FROM events WHERE kind = 'alert' AND service != '' GROUP BY service)")
        return {str(s): str(g) for s, g in rows if g}

    def last_event_wall(self, before: float, after: float) -> float | None:
        row = self.q("SELECT max(wall) FROM events WHERE wall < ? AND wall >= ?", (before, after))
        return None if row[0][0] is None else float(row[0][0])

    def first_event_wall(self, at_or_after: float, before: float) -> float | None:
        row = self.q("SELECT min(wall) FROM events WHERE wall >= ? AND wall < ?", (at_or_after, before))
        return None if row[0][0] is None else float(row[0][0])

    # ---- samples and rollups

    def minutes(self, sid: int, lo_min: int, hi_min: int) -> list[int]:
        return [int(m) for (m,) in self.q("SELECT minute FROM rollups WHERE sid = ? AND minute >= ?"
                                          " AND minute < ? ORDER BY minute", (sid, lo_min, hi_min))]

    def rollup_edge(self, lo_min: int, hi_min: int, last: bool) -> int | None:
        """The last (or first) minute in [lo_min, hi_min) that any service has a rollup for."""
        fn = "max" if last else "min"
        best: int | None = None
        for sid in self.sids.values():
            (v,) = self.q(f"SELECT {fn}(minute) FROM rollups WHERE sid = ? AND minute >= ? AND minute < ?",
                          (sid, lo_min, hi_min))[0]
            if v is not None:
                best = int(v) if best is None else (max(best, int(v)) if last else min(best, int(v)))
        return best

    def sample_edge(self, lo: float, hi: float, last: bool) -> float | None:
        """The last (or first) raw sample of any service with lo <= wall < hi."""
        fn = "max" if last else "min"
        best: float | None = None
        for sid in self.sids.values():
            (v,) = self.q(f"SELECT {fn}(wall_ms) FROM samples WHERE sid = ? AND wall_ms >= ? AND wall_ms < ?",
                          (sid, _ms(lo), _ms(hi)))[0]
            if v is not None:
                w = v / 1000.0
                best = w if best is None else (max(best, w) if last else min(best, w))
        return best

    def last_evidence(self, service: str, before: float) -> float | None:
        """The service's last sample before `before` (raw, else the end of its last rollup minute)."""
        sid = self.sids.get(service)
        if sid is None:
            return None
        (raw,) = self.q("SELECT max(wall_ms) FROM samples WHERE sid = ? AND wall_ms < ?", (sid, _ms(before)))[0]
        (minute,) = self.q("SELECT max(minute) FROM rollups WHERE sid = ? AND minute < ?",
                           (sid, math.ceil(before / _MIN)))[0]
        best = None if raw is None else raw / 1000.0
        if minute is not None and (best is None or best < minute * _MIN):
            best = min(before, (int(minute) + 1) * float(_MIN))
        return best

    def last_ok_sample(self, service: str, before: float, after: float) -> float | None:
        sid = self.sids.get(service)
        if sid is None:
            return None
        (v,) = self.q("SELECT max(wall_ms) FROM samples WHERE sid = ? AND ok = 1 AND wall_ms < ? AND wall_ms >= ?",
                      (sid, _ms(before), _ms(after)))[0]
        return None if v is None else v / 1000.0

    def reboots(self, since: float, until: float) -> dict[str, int]:
        rows = self.q("SELECT service, count(*) FROM events WHERE kind = 'reboot' AND wall >= ? AND wall < ?"
                      " GROUP BY service", (since, until))
        return {str(s): int(n) for s, n in rows}


def _ms(wall: float) -> int:
    return round(wall * 1000.0)


def _loads(text: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# ---------------------------------------------------------------- engine gaps


def find_gaps(reader: JournalReader, lo: float, hi: float, gap_s: float,
              event_walls: Sequence[float], markers: Sequence[tuple[float, str]] = (),
              fine_gap_s: float | None = None) -> list[tuple[float, float]]:
    """Stretches in [lo, hi) when the engine was not running: nothing journaled by anyone for >= gap_s.

    Works on per-minute rollups so a month of a big fleet is not read row by row: candidate stretches
    start as the whole window and are cut by each service's rollup minutes in turn, so after the
    first few services only the real gaps are left to look at. Edges are then refined to the last
    and first evidence (event or raw sample) around each stretch. `markers` are (wall, "start"|"stop")
    engine lifecycle events, if the journal has them; a stop..start pair is a gap whatever its length.

    Where raw samples are still kept (the last `raw_retention_hours`), `fine_gap_s` finds shorter
    silences too (a quick restart), the same way at sample resolution: see `_fine_gaps`.
    """
    fine: list[tuple[float, float]] = []
    if fine_gap_s is not None and fine_gap_s < gap_s:
        floor = reader.fleet_raw_floor()
        if floor is not None and floor < hi:
            fine = _fine_gaps(reader, max(lo, floor), hi, fine_gap_s, event_walls)
    need = max(1, int(gap_s // _MIN) - 1)  # whole unseen minutes inside any gap of gap_s or more
    lo_min, hi_min = math.floor(lo / _MIN), math.ceil(hi / _MIN)
    seen_by_events = sorted({math.floor(w / _MIN) for w in event_walls})
    cands = _cut([(lo_min, hi_min)], seen_by_events, need)
    for sid in reader.sids.values():
        if not cands:
            break
        nxt: list[tuple[int, int]] = []
        for a, b in cands:
            nxt.extend(_cut([(a, b)], reader.minutes(sid, a, b), need))
        cands = nxt
    gaps: list[tuple[float, float]] = []
    for a, b in cands:
        # Nothing within gap_s on a side means the gap reaches at least that far: the window's edge.
        start = _edge_before(reader, a * _MIN, gap_s, event_walls)
        end = _edge_after(reader, b * _MIN, gap_s, event_walls)
        s = start if start is not None else a * _MIN - gap_s
        e = end if end is not None else b * _MIN + gap_s
        if e - s >= gap_s:
            gaps.append((max(lo, s), min(hi, e)))
    stop: float | None = None
    for wall, what in sorted(markers):
        if what == "stop":
            stop = wall
        elif what == "start":
            begin = stop
            if begin is None:  # a start without a stop: the engine died; it was down since its last word
                begin = _edge_before(reader, wall, gap_s, [w for w in event_walls if w < wall])
            if begin is not None and wall > begin:
                gaps.append((max(lo, begin), min(hi, wall)))
            stop = None
    return _merge([g for g in gaps + fine if g[1] > g[0]])


def _fine_gaps(reader: JournalReader, lo: float, hi: float, gap_s: float,
               event_walls: Sequence[float]) -> list[tuple[float, float]]:
    """Silences of at least gap_s in [lo, hi) with no event and no raw sample from any service.

    Candidates are open intervals between consecutive pieces of evidence; each service's samples
    inside the remaining candidates cut them further (one indexed range query per candidate), so the
    first service reads its own samples and the rest only look inside its silences. The edges are
    the evidence itself, so the result is exact. The window's own edges count as evidence only when
    something is there: a silence reaching lo or hi is kept if it is at least gap_s long.
    """
    i, j = bisect.bisect_left(event_walls, lo), bisect.bisect_left(event_walls, hi)
    cands = _cut_open([(lo, hi)], event_walls[i:j], gap_s)
    for sid in reader.sids.values():
        if not cands:
            break
        nxt: list[tuple[float, float]] = []
        for a, b in cands:
            nxt.extend(_cut_open([(a, b)], reader.sample_walls(sid, a, b), gap_s))
        cands = nxt
    return cands


def _cut_open(ranges: Iterable[tuple[float, float]], seen: Sequence[float], need: float) -> list[tuple[float, float]]:
    """Split (a, b) at the evidence times in `seen` (sorted); keep the pieces at least `need` long."""
    out: list[tuple[float, float]] = []
    for a, b in ranges:
        k = bisect.bisect_right(seen, a)
        cur = a
        while k < len(seen) and seen[k] < b:
            if seen[k] - cur >= need:
                out.append((cur, seen[k]))
            cur = seen[k]
            k += 1
        if b - cur >= need:
            out.append((cur, b))
    return out


def _cut(ranges: Iterable[tuple[int, int]], seen: Sequence[int], need: int) -> list[tuple[int, int]]:
    """Split minute ranges [a, b) at the seen minutes; keep unseen runs at least `need` long."""
    out: list[tuple[int, int]] = []
    for a, b in ranges:
        i = bisect.bisect_left(seen, a)
        cur = a
        while i < len(seen) and seen[i] < b:
            if seen[i] - cur >= need:
                out.append((cur, seen[i]))
            cur = seen[i] + 1
            i += 1
        if b - cur >= need:
            out.append((cur, b))
    return out


def _edge_before(reader: JournalReader, t: float, within: float, event_walls: Sequence[float]) -> float | None:
    """The last evidence of a running engine in [t - within, t): an event or a sample."""
    i = bisect.bisect_left(event_walls, t)
    ev = event_walls[i - 1] if i and event_walls[i - 1] >= t - within else reader.last_event_wall(t, t - within)
    raw = reader.sample_edge(t - within, t, last=True)
    minute = reader.rollup_edge(math.floor((t - within) / _MIN), math.ceil(t / _MIN), last=True)
    if minute is not None and (raw is None or raw < minute * _MIN):
        raw = min(t, (minute + 1) * float(_MIN))  # that minute's samples are past raw retention: its end
    found = [v for v in (ev, raw) if v is not None and t - within <= v <= t]
    return max(found) if found else None


def _edge_after(reader: JournalReader, t: float, within: float, event_walls: Sequence[float]) -> float | None:
    """The first evidence in [t, t + within)."""
    i = bisect.bisect_left(event_walls, t)
    ev = event_walls[i] if i < len(event_walls) and event_walls[i] < t + within \
        else reader.first_event_wall(t, t + within)
    raw = reader.sample_edge(t, t + within, last=False)
    minute = reader.rollup_edge(math.floor(t / _MIN), math.ceil((t + within) / _MIN), last=False)
    if minute is not None and (raw is None or raw >= (minute + 1) * _MIN):
        raw = max(t, minute * float(_MIN))
    found = [v for v in (ev, raw) if v is not None and t <= v < t + within]
    return min(found) if found else None


def _merge(gaps: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(gaps):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


# ---------------------------------------------------------------- one service's timeline


@dataclass(slots=True)
class _Run:
    """A run of failed checks (between a good verdict, or an engine gap, and the next good verdict)."""

    first_fail: float
    first_fail_known: bool  # False when the run began before the period (first_fail is then a bound)
    verdict: float | None = None
    end: float | None = None
    recovered: bool = False
    error: str = ""
    max_cf: int = 0


@dataclass(slots=True)
class _Acc:
    healthy: float = 0.0
    degraded: float = 0.0
    maintenance: float = 0.0
    down: float = 0.0
    breaker_open: float = 0.0
    pieces: list[tuple[float, float, _Run]] = field(default_factory=list)


def _service_timeline(
        svc: str, group: str, max_failures: int, since: float, until: float,
        events: Sequence[_Ev], gaps: Sequence[tuple[float, float]],
        init_probe: _Ev | None, init_breaker: _Ev | None, init_maint: Mapping[str, bool],
        span_end: float | None) -> _Acc:
    """Walk one service's state through the period and add up its time per class."""
    # Points: (time, order, seq, what, payload)
    points: list[tuple[float, int, int, str, Any]] = []
    for a, b in gaps:
        points.append((a, _ORDER_GAP_START, 0, "gap_start", None))
        points.append((b, _ORDER_GAP_END, 0, "gap_end", None))
    for e in events:
        if e.kind == "probe" or e.kind == "breaker":
            points.append((e.wall, _ORDER_EVENT, e.seq, e.kind, e.rec))
        elif e.kind == "action" and e.rec.get("command") in ("maintenance_on", "maintenance_off") \
                and e.rec.get("ok", True):
            points.append((e.wall, _ORDER_EVENT, e.seq, "maint_svc" if e.service == svc else "maint_grp",
                           e.rec.get("command") == "maintenance_on"))
    if span_end is not None and span_end < until:
        points.append((span_end, _ORDER_GAP_START, 0, "span_end", None))
    points.sort(key=_POINT_ORDER)

    engine_up = not any(a <= since < b for a, b in gaps)
    in_span = True
    status = "unknown"
    run: _Run | None = None
    if init_probe is not None and engine_up:
        status = str(init_probe.rec.get("status", "unknown"))
        if status == "unhealthy":
            cf = int(init_probe.rec.get("consecutive_failures", 0) or 0)
            run = _Run(first_fail=since, first_fail_known=False, max_cf=cf,
                       error=str(init_probe.rec.get("error") or ""))
            if cf >= max_failures:
                run.verdict = init_probe.wall
    breaker = "closed"
    if init_breaker is not None:
        breaker = str(init_breaker.rec.get("to", "closed"))
        if not engine_up and breaker not in _FORCED:
            breaker = "closed"
    maint_svc = init_maint.get(svc, False)
    maint_grp = bool(group) and init_maint.get(group, False)

    acc = _Acc()
    # (start, end, class, run): unhealthy segments are sorted into outage or blip once every run's
    # length is known (a run becomes an outage only when it reaches max_failures, later).
    segments: list[tuple[float, float, str, _Run | None]] = []

    def account(a: float, b: float) -> None:
        if b <= a:
            return
        if engine_up and breaker in _BLOCKING:
            acc.breaker_open += b - a
        if not (engine_up and in_span) or status == "unknown":
            return
        if maint_svc or maint_grp:
            acc.maintenance += b - a
        elif status == "unhealthy":
            segments.append((a, b, "unhealthy", run))
        elif status == "healthy":
            acc.healthy += b - a
        else:
            acc.degraded += b - a

    def end_run(t: float, recovered: bool) -> None:
        nonlocal run
        if run is not None:
            run.end, run.recovered = t, recovered
        run = None

    cur = since
    for t, _, _, what, payload in points:
        if t >= until:
            break
        if t > cur:
            account(max(cur, since), t)
            cur = t
        if what in ("gap_start", "span_end"):
            if what == "gap_start":
                engine_up = False
                if breaker not in _FORCED:
                    breaker = "closed"  # a new engine starts with closed breakers, unless forced
            else:
                in_span = False
            status = "unknown"
            end_run(t, False)
        elif what == "gap_end":
            engine_up = True
        elif what == "probe" and engine_up:
            status = str(payload.get("status", "unknown"))
            if status == "unhealthy":
                ncf = int(payload.get("consecutive_failures", 0) or 0)
                if run is None:
                    run = _Run(first_fail=t, first_fail_known=True)
                run.max_cf = max(run.max_cf, ncf)
                if run.verdict is None and ncf >= max_failures:
                    run.verdict, run.error = t, str(payload.get("error") or "")
                elif not run.error:
                    run.error = str(payload.get("error") or "")
            else:
                end_run(t, status in _UP_STATUSES)
        elif what == "breaker":
            breaker = str(payload.get("to", breaker))
        elif what == "maint_svc":
            maint_svc = bool(payload)
        elif what == "maint_grp":
            maint_grp = bool(payload)
    account(max(cur, since), until)

    for a, b, _, r in segments:
        if r is not None and r.max_cf >= max_failures:
            acc.down += b - a
            if acc.pieces and acc.pieces[-1][1] == a and acc.pieces[-1][2] is r:
                acc.pieces[-1] = (acc.pieces[-1][0], b, r)
            else:
                acc.pieces.append((a, b, r))
        else:
            acc.degraded += b - a
    return acc


# ---------------------------------------------------------------- the report


def build_report(reader: JournalReader, request: ReportRequest) -> Report:
    """Compute a report from a journal (see the module docstring for the definitions)."""
    since, until = request.since, request.until
    if not until > since:
        raise ReportError("the period is empty: --until must be after --since")
    gap_s = request.gap_s
    events = reader.events(since, until)
    known = set(request.services) | set(reader.sids) | {e.service for e in events if e.service}
    init_probe = reader.last_before("probe", since, known)
    init_breaker = reader.last_before("breaker", since, known)
    init_maint = reader.maintenance_before(since)
    # An open breaker carried in from long before: engine gaps back to then reset it.
    lookback = since - gap_s
    for ev in init_breaker.values():
        if ev.rec.get("to") not in ("closed", *_FORCED):
            lookback = min(lookback, ev.wall)
    pre = reader.events(lookback, since) if lookback < since else []
    walls = sorted([e.wall for e in pre] + [e.wall for e in events])
    markers = [(e.wall, "start" if e.rec.get("command") == "engine_start" else "stop")
               for e in (*pre, *events)
               if e.kind == "action" and e.rec.get("command") in ("engine_start", "engine_stop")]
    fine_gap_s = request.fine_gap_s
    if fine_gap_s is not None and not request.services:
        # No config to say how often devices are checked: ask the samples, so a fleet checked every
        # 5 minutes is not "not running" between its checks.
        interval = reader.typical_interval()
        if interval is not None:
            fine_gap_s = max(fine_gap_s, 3.0 * interval)
            gap_s = max(gap_s, 3.0 * interval)
    all_gaps = find_gaps(reader, lookback, until, gap_s, walls, markers, fine_gap_s)

    # Which services, and their groups.
    names: set[str] = set(request.services)
    names |= {e.service for e in events if e.service and e.kind in ("probe", "breaker", "recovery", "reboot")}
    names |= set(init_probe)
    last_seen = {n: reader.last_evidence(n, until) for n in reader.sids}
    names |= {n for n, t in last_seen.items() if t is not None and t >= since}
    alert_groups = reader.alert_groups() if any(n not in request.services for n in names) else {}

    def group_of(name: str) -> str:
        info = request.services.get(name)
        return info.group if info is not None else alert_groups.get(name, "")

    chosen = sorted(n for n in names if n
                    and (request.service is None or n == request.service)
                    and (request.group is None or group_of(n) == request.group))
    by_service: dict[str, list[_Ev]] = {n: [] for n in chosen}
    group_events: dict[str, list[_Ev]] = {}
    for e in events:
        if e.service in by_service:
            by_service[e.service].append(e)
        elif e.kind == "action":
            group_events.setdefault(e.service, []).append(e)
    reboots = reader.reboots(since, until)

    service_reports: list[ServiceReport] = []
    outages: list[Outage] = []
    for name in chosen:
        group = group_of(name)
        info = request.services.get(name)
        max_failures = info.max_failures if info is not None else request.default_max_failures
        evs = by_service[name]
        ev_last = max(evs[-1].wall, evs[0].wall) if evs else None  # seq order is wall order, give or take
        if group and group != name and group_events.get(group):
            evs = sorted(evs + group_events[group], key=lambda e: e.seq)
        last = last_seen[name] if name in last_seen else reader.last_evidence(name, until)
        probe0 = init_probe.get(name)
        latest = max((v for v in (last, ev_last) if v is not None), default=None)
        span_end = None if latest is not None and latest >= until - gap_s else (latest if latest is not None else since)
        acc = _service_timeline(name, group, max_failures, since, until, evs, all_gaps,
                                probe0, init_breaker.get(name), init_maint, span_end)
        svc_outages = _outages(reader, name, group, acc, evs, since, until, all_gaps)
        monitored = acc.healthy + acc.degraded + acc.maintenance + acc.down
        if name not in request.services and monitored <= 0 and not any(e.service == name for e in evs):
            continue  # known only from old samples: nothing to say about this period
        outages.extend(svc_outages)
        service_reports.append(ServiceReport(name, group, _figures(acc, svc_outages, evs, reboots.get(name, 0))))

    groups: dict[str, list[ServiceReport]] = {}
    for s in service_reports:
        groups.setdefault(s.group, []).append(s)
    group_reports = tuple(GroupReport(g, len(members), _sum([m.figures for m in members],
                                                            [o for o in outages if o.group == g]))
                          for g, members in sorted(groups.items()))
    fleet = _sum([s.figures for s in service_reports], outages)
    scope = f"service {request.service}" if request.service else (f"group {request.group}" if request.group else "")
    clipped_gaps = tuple((max(a, since), min(b, until)) for a, b in all_gaps if b > since and a < until)
    outages.sort(key=lambda o: (o.start, o.service))
    return Report(since, until, tuple(service_reports), group_reports, fleet, tuple(outages), clipped_gaps, scope)


def _outages(reader: JournalReader, svc: str, group: str, acc: _Acc, evs: Sequence[_Ev],
             since: float, until: float, gaps: Sequence[tuple[float, float]]) -> list[Outage]:
    out: list[Outage] = []
    if not acc.pieces:
        return out
    recov = [e for e in evs if e.service == svc and e.kind in ("recovery", "action", "reboot")]
    recov.sort(key=lambda e: (e.wall, e.seq))
    walls = [e.wall for e in recov]
    # A recovery belongs to the outage its first step falls in, with all its steps (the verified
    # "succeeded" comes after the healthy verdict).
    by_rid: dict[str, list[_Ev]] = {}
    for e in recov:
        if e.kind == "recovery":
            by_rid.setdefault(str(e.rec.get("recovery_id", "")), []).append(e)
    firsts = sorted((steps[0].wall, rid) for rid, steps in by_rid.items())
    first_walls = [w for w, _ in firsts]
    floor = reader.raw_floor(svc) if acc.pieces else None
    for a, b, run in acc.pieces:
        clipped_start = not (run.first_fail_known and a == run.first_fail)
        at_run_end = run.end is not None and b == run.end
        clipped_end = not (at_run_end and run.recovered)
        if at_run_end and run.recovered:
            reason = "recovered"
        elif b >= until:
            reason = "period_end"
        elif any(abs(g[0] - b) < 1e-9 for g in gaps) or (at_run_end and not run.recovered):
            reason = "not_monitored"
        else:
            reason = "maintenance"
        ttd: float | None = None
        if not clipped_start and run.verdict is not None:
            good = None
            if floor is not None and floor < run.first_fail:
                prev_end = max([e for _, e in _prior(gaps, a)] + [since - 86_400.0])
                good = reader.last_ok_sample(svc, run.first_fail, prev_end)
            ttd = run.verdict - (good if good is not None else run.first_fail)
        ttr = (b - run.verdict) if (reason == "recovered" and run.verdict is not None) else None
        chosen: dict[int, _Ev] = {}
        for e in recov[bisect.bisect_left(walls, a):bisect.bisect_right(walls, b)]:
            if e.kind != "recovery":
                chosen[e.seq] = e
        for _, rid in firsts[bisect.bisect_left(first_walls, a):bisect.bisect_right(first_walls, b)]:
            for e in by_rid[rid]:
                chosen[e.seq] = e
        steps: list[Step] = []
        ftype = ""
        for e in sorted(chosen.values(), key=lambda e: (e.wall, e.seq)):
            if e.kind == "recovery":
                ftype = ftype or str(e.rec.get("failure_type") or "")
                steps.append(Step(e.wall, str(e.rec.get("strategy", "")), str(e.rec.get("outcome", "")),
                                  int(e.rec.get("attempt", 0) or 0), str(e.rec.get("detail") or "")))
            elif e.kind == "reboot":
                steps.append(Step(e.wall, "reboot", "seen", 0, str(e.rec.get("reason") or e.rec.get("detail") or "")))
            else:
                cmd = str(e.rec.get("command", ""))
                if cmd in ("maintenance_on", "maintenance_off"):
                    continue
                steps.append(Step(e.wall, "action", cmd, 0,
                                  " ".join(p for p in (f"by {e.rec.get('origin', '')}", str(e.rec.get("detail") or "")) if p)))
        out.append(Outage(svc, group, a, b, run.verdict, ttd, ttr, ftype, run.error, tuple(steps),
                          clipped_start, clipped_end, reason))
    return out


def _prior(gaps: Sequence[tuple[float, float]], t: float) -> list[tuple[float, float]]:
    return [g for g in gaps if g[1] <= t]


def _figures(acc: _Acc, outages: Sequence[Outage], evs: Sequence[_Ev], reboots: int) -> Figures:
    restarts = restarts_ok = gave_up = failovers = 0
    for e in evs:
        if e.kind != "recovery":
            continue
        strategy, outcome = e.rec.get("strategy"), e.rec.get("outcome")
        if strategy == "restart":
            restarts += outcome == "started"
            restarts_ok += outcome == "succeeded"
            gave_up += outcome == "gave_up"
        elif strategy == "failover":
            failovers += outcome == "started"
    monitored = acc.healthy + acc.degraded + acc.maintenance + acc.down
    failures = sum(1 for o in outages if not o.clipped_start)
    ttds = [o.ttd_s for o in outages if o.ttd_s is not None]
    ttrs = [o.ttr_s for o in outages if o.ttr_s is not None]
    up = acc.healthy + acc.degraded
    return Figures(
        monitored_s=monitored, healthy_s=acc.healthy, degraded_s=acc.degraded, maintenance_s=acc.maintenance,
        downtime_s=acc.down, outages=len(outages), failures=failures,
        longest_outage_s=max((o.duration_s for o in outages), default=0.0),
        ttd_s=sum(ttds) / len(ttds) if ttds else None, ttr_s=sum(ttrs) / len(ttrs) if ttrs else None,
        mtbf_s=up / failures if failures else None,
        restarts=restarts, restarts_ok=restarts_ok, restarts_gave_up=gave_up, failovers=failovers,
        breaker_open_s=acc.breaker_open, reboots=reboots)


def _sum(parts: Sequence[Figures], outages: Sequence[Outage]) -> Figures:
    """Group and fleet figures: times and counts add up; means are over all the outages."""
    ttds = [o.ttd_s for o in outages if o.ttd_s is not None]
    ttrs = [o.ttr_s for o in outages if o.ttr_s is not None]
    failures = sum(p.failures for p in parts)
    up = sum(p.healthy_s + p.degraded_s for p in parts)
    return Figures(
        monitored_s=sum(p.monitored_s for p in parts), healthy_s=sum(p.healthy_s for p in parts),
        degraded_s=sum(p.degraded_s for p in parts), maintenance_s=sum(p.maintenance_s for p in parts),
        downtime_s=sum(p.downtime_s for p in parts), outages=sum(p.outages for p in parts), failures=failures,
        longest_outage_s=max((p.longest_outage_s for p in parts), default=0.0),
        ttd_s=sum(ttds) / len(ttds) if ttds else None, ttr_s=sum(ttrs) / len(ttrs) if ttrs else None,
        mtbf_s=up / failures if failures else None,
        restarts=sum(p.restarts for p in parts), restarts_ok=sum(p.restarts_ok for p in parts),
        restarts_gave_up=sum(p.restarts_gave_up for p in parts), failovers=sum(p.failovers for p in parts),
        breaker_open_s=sum(p.breaker_open_s for p in parts), reboots=sum(p.reboots for p in parts))


def load_report(journal: Path, request: ReportRequest) -> Report:
    """Open the journal read-only, build the report, close. Raises ReportError (one line)."""
    with JournalReader(journal) as reader:
        return build_report(reader, request)
