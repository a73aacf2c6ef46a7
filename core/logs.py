"""Log categories: every logger Faultwatch writes to, declared once.

A category is a named logger under `core.` (`core.check`, `core.breaker`, ...), so a person can turn
on debug output for just the parts they are chasing (`faultwatch --debug check,breaker`) and an
end-to-end test can wait on one category's lines. Modules take their logger from here rather than
naming one themselves, so two modules never disagree about which category they belong to.
"""

from __future__ import annotations

import logging

_CATEGORIES: dict[str, str] = {
    "engine": "the engine's life: start, stop, reloads, ticks",
    "check": "device checks and the verdicts drawn from them",
    "breaker": "circuit breaker transitions",
    "recovery": "restarts, failover, failback, the storm guard and restart actions",
    "heartbeat": "heartbeats pushed by devices",
    "anomaly": "response-time anomalies",
    "alerts": "alert rules and alert delivery",
    "journal": "the SQLite journal",
    "api": "the HTTP listener: heartbeats, metrics, the control API",
    "runner": "the engine's worker thread in the GUI process",
    "headless": "headless mode's event stream",
    "config": "loading and reloading configuration",
    "sim": "the simulated demo rack",
}


def category(name: str) -> logging.Logger:
    """The logger of a declared category; an undeclared name is a programming error."""
    if name not in _CATEGORIES:
        raise KeyError(f"undeclared log category {name!r}")
    return logging.getLogger(f"core.{name}")


def categories() -> dict[str, str]:
    return dict(_CATEGORIES)


def enable_debug(spec: str) -> list[str]:
    """`--debug check,breaker` (or `all`): those categories log at DEBUG. Returns the names enabled.

    Raises ValueError (one line) for a name that is not a category.
    """
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if names == ["all"]:
        names = list(_CATEGORIES)
    unknown = [n for n in names if n not in _CATEGORIES]
    if unknown:
        raise ValueError(f"unknown log categor{'y' if len(unknown) == 1 else 'ies'} "
                         f"{', '.join(unknown)}; choose from {', '.join(_CATEGORIES)} or all")
    for n in names:
        category(n).setLevel(logging.DEBUG)
    return names


ENGINE = category("engine")
CHECK = category("check")
BREAKER = category("breaker")
RECOVERY = category("recovery")
HEARTBEAT = category("heartbeat")
ANOMALY = category("anomaly")
ALERTS = category("alerts")
JOURNAL = category("journal")
API = category("api")
RUNNER = category("runner")
HEADLESS = category("headless")
CONFIG = category("config")
SIM = category("sim")
