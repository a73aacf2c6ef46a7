"""The console's visual vocabulary: one small palette, every state coded twice (colour + shape/word).

Report by exception (ISA-101 high-performance HMI): normal is neutral grey; red = critical/unhealthy/
open; amber = warning/degraded/half-open; magenta = suppressed by an operator (forced, maintenance,
paused, silenced); blue = informational (recovery in progress). No green for "fine".
This module is pure data plus tiny lookups; it imports nothing from Qt so it is testable anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.events import BreakerState, ServiceStatus
from core.snapshot import ServiceSnapshot
from core.wire import is_unreachable


@dataclass(frozen=True, slots=True)
class Theme:
    name: str
    window: str
    surface: str
    text: str
    muted: str  # secondary text, healthy indicators
    grid: str
    critical: str
    warning: str
    suppressed: str
    info: str
    on_colour: str  # text drawn on a coloured fill


LIGHT = Theme("light", window="#e9e9e7", surface="#f4f4f2", text="#1f1f1f", muted="#8a8a86",
              grid="#d0d0cc", critical="#c8102e", warning="#d08700", suppressed="#a020a0",
              info="#1f6fb2", on_colour="#ffffff")
DARK = Theme("dark", window="#1b1c1e", surface="#232427", text="#e6e6e3", muted="#8d8e8a",
             grid="#3a3b3f", critical="#ff4d5e", warning="#f0a500", suppressed="#d070e0",
             info="#5aa9e6", on_colour="#111111")
THEMES = {"light": LIGHT, "dark": DARK}


@dataclass(frozen=True, slots=True)
class Indicator:
    """How one state is drawn: a hue role, a shape and a word (the word also goes to tooltips)."""

    role: str  # normal | critical | warning | suppressed | info
    shape: str  # circle | ring | triangle | square | lock | diamond
    word: str


def colour(theme: Theme, role: str) -> str:
    return {"normal": theme.muted, "critical": theme.critical, "warning": theme.warning,
            "suppressed": theme.suppressed, "info": theme.info}[role]


def status_indicator(snap: ServiceSnapshot) -> Indicator:
    """The service's overall state, most important first."""
    if is_unreachable(snap):
        # Before everything else: whatever the engine said last (maintenance, failed, healthy) is
        # not live any more, and must not look as if it were.
        return Indicator("warning", "ring", "UNREACHABLE")
    if snap.maintenance:
        return Indicator("suppressed", "lock", "MAINTENANCE")
    if snap.paused:
        return Indicator("suppressed", "lock", "PAUSED")
    if snap.recovery is not None and snap.recovery.state in ("in_progress", "waiting", "verifying"):
        return Indicator("info", "diamond", f"RECOVERING {snap.recovery.attempt}/{snap.recovery.max_attempts}")
    if snap.failed:
        return Indicator("critical", "triangle", "FAILED")
    if snap.status is ServiceStatus.UNHEALTHY:
        # One failed check is a warning, not an alarm: red is kept for max_failures in a row, so a
        # flaky device does not flash the wall red on every dropped packet.
        return Indicator("warning", "triangle", f"FAILING {snap.consecutive_failures}/{snap.max_failures}")
    if snap.heartbeat == "missed":
        return Indicator("critical", "triangle", "NO HEARTBEAT")
    if snap.status is ServiceStatus.DEGRADED:
        return Indicator("warning", "triangle", "DEGRADED")
    if snap.status is ServiceStatus.UNKNOWN:
        return Indicator("normal", "ring", "UNKNOWN")
    return Indicator("normal", "circle", "HEALTHY")


def breaker_indicator(snap: ServiceSnapshot) -> Indicator:
    b = snap.breaker
    if b.state is BreakerState.FORCED_OPEN:
        return Indicator("suppressed", "lock", "FORCED OPEN")
    if b.state is BreakerState.FORCED_CLOSED:
        return Indicator("suppressed", "lock", "FORCED CLOSED")
    if b.state is BreakerState.OPEN:
        word = "OPEN" if b.reopen_in_s is None else f"OPEN {b.reopen_in_s:.0f}s"
        return Indicator("critical", "circle", word)
    if b.state is BreakerState.HALF_OPEN:
        return Indicator("warning", "triangle",
                         f"HALF-OPEN {b.half_open_successes}/{b.success_threshold}")
    return Indicator("normal", "ring", "CLOSED")


STATUS_ORDER = {"critical": 0, "warning": 1, "suppressed": 2, "info": 3, "normal": 4}
