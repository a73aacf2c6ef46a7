"""The maintenance board: scheduled maintenance windows as the console and the API show them.

The schedule (core/schedule.py) knows windows by what they name (services, groups, tags); a console
that shows "which devices" and a detail panel that says "in maintenance until 02:00" need the service
ids each window covers, resolved where the tags are known: in the engine. `board()` builds those
frozen views from an engine; `to_wire`/`from_wire` carry them over the HTTP API (GET /api/maintenance)
to attached consoles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Protocol, Sequence

from core.schedule import ActiveWindow

DEFAULT_HORIZON_S = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class MaintenanceWindowView:
    """One occurrence of a scheduled window.

    Attributes:
        name: the window's name ("nightly-backup").
        targets: what the configuration names, in a few words ("plc-1, group rack-a, tag pumps").
        services: the service ids it covers now (groups and tags resolved), sorted.
        start_wall / end_wall: the occurrence's instants (wall seconds).
        repeat: "once", "daily", "weekly mon fri", "cron 0 2 * * *".
        active: open now (the engine holds alerts and recovery of `services`).
    """

    name: str
    targets: str
    services: tuple[str, ...]
    start_wall: float
    end_wall: float
    repeat: str
    active: bool

    @property
    def duration_s(self) -> float:
        return self.end_wall - self.start_wall


class _Engine(Protocol):
    """What board() reads: the engine's services and its (open, upcoming) windows."""

    @property
    def services(self) -> Mapping[str, Any]: ...

    def maintenance_windows(self, horizon_s: float = DEFAULT_HORIZON_S) -> tuple[list[Any], list[Any]]: ...


def covered(window: ActiveWindow, services: Mapping[str, Any]) -> tuple[str, ...]:
    """The ids of `services` (id → Service with .cfg.group and .cfg.tags) the window covers."""
    return tuple(sorted(sid for sid, svc in services.items()
                        if window.covers(sid, svc.cfg.group, svc.cfg.tags)))


def views(open_windows: Iterable[ActiveWindow], upcoming: Iterable[ActiveWindow],
          services: Mapping[str, Any]) -> list[MaintenanceWindowView]:
    """Open windows first (soonest end first), then upcoming ones (soonest start first).

    `upcoming` may repeat the open ones (MaintenanceSchedule.upcoming includes them): each
    occurrence is listed once. Open ones are what the engine applied at its last tick, so the board
    never shows a window as open that the engine does not hold, or the reverse.
    """
    opened = {(w.name, w.start_wall): w for w in open_windows}
    out = [_view(w, services, True) for w in sorted(opened.values(), key=lambda w: (w.end_wall, w.name))]
    later = [w for w in upcoming if (w.name, w.start_wall) not in opened]
    out += [_view(w, services, False) for w in sorted(later, key=lambda w: (w.start_wall, w.name))]
    return out


def board(engine: _Engine, horizon_s: float = DEFAULT_HORIZON_S) -> list[MaintenanceWindowView]:
    """The engine's open and upcoming windows (call on the engine's loop: it reads its services)."""
    open_windows, upcoming = engine.maintenance_windows(horizon_s)
    return views(open_windows, upcoming, dict(engine.services))


def _view(w: ActiveWindow, services: Mapping[str, Any], active: bool) -> MaintenanceWindowView:
    return MaintenanceWindowView(name=w.name, targets=w.describe(), services=covered(w, services),
                                 start_wall=w.start_wall, end_wall=w.end_wall, repeat=w.repeat or "once",
                                 active=active)


def to_wire(windows: Sequence[MaintenanceWindowView]) -> dict[str, Any]:
    """The JSON body of GET /api/maintenance."""
    return {"windows": [{"name": w.name, "targets": w.targets, "services": list(w.services),
                         "start_wall": w.start_wall, "end_wall": w.end_wall, "repeat": w.repeat,
                         "active": w.active} for w in windows]}


def from_wire(body: Any) -> list[MaintenanceWindowView]:
    """Parse GET /api/maintenance. Raises ValueError naming what is wrong."""
    if not isinstance(body, dict) or not isinstance(body.get("windows"), list):
        raise ValueError("maintenance: expected {\"windows\": [...]}")
    out = []
    for i, raw in enumerate(body["windows"]):
        try:
            out.append(MaintenanceWindowView(
                name=str(raw["name"]), targets=str(raw.get("targets", "")),
                services=tuple(str(s) for s in raw.get("services", [])),
                start_wall=float(raw["start_wall"]), end_wall=float(raw["end_wall"]),
                repeat=str(raw.get("repeat", "")), active=bool(raw.get("active", False))))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"maintenance: window {i} is unreadable ({exc!r})") from None
    return out


__all__ = ["DEFAULT_HORIZON_S", "MaintenanceWindowView", "board", "covered", "from_wire", "to_wire", "views"]
