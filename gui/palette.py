"""The console's visual vocabulary: one small palette, every state coded twice (colour + shape/word).

Report by exception (ISA-101 high-performance HMI): normal is neutral grey; red = critical/unhealthy/
open; amber = warning/degraded/half-open; magenta = suppressed by an operator (forced, maintenance,
paused, silenced); blue = informational (recovery in progress). No green for "fine".
This module is pure data plus tiny lookups; it imports nothing from Qt so it is testable anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass



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


STATUS_ORDER = {"critical": 0, "warning": 1, "suppressed": 2, "info": 3, "normal": 4}

