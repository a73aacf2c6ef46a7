"""Registry: the check types and restart actions the modules of core/checks/ declare.

A module declares `CHECK = CheckType(...)` and/or `RESTART = RestartType(...)` (or tuples of them as
`CHECKS` / `RESTARTS`); the registry imports every module of the package once. Modules keep their
protocol library imports inside the factories, so reading a config does not load pymodbus or pysnmp.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from functools import cache
from typing import Any, Iterable

import core.checks
from core.checks.base import CheckType, RestartType

_NOT_TYPES = {"base", "registry"}


@cache
def _modules() -> tuple[object, ...]:
    names = sorted(m.name for m in pkgutil.iter_modules(core.checks.__path__) if m.name not in _NOT_TYPES)
    return tuple(importlib.import_module(f"core.checks.{name}") for name in names)


@cache
def check_types() -> dict[str, CheckType]:
    """Check types by their `type` name, http first, then alphabetical."""
    found: dict[str, CheckType] = {}
    for module in _modules():
        for ct in (*getattr(module, "CHECKS", ()), *([module.CHECK] if hasattr(module, "CHECK") else [])):
            found[ct.name] = ct
    return dict(sorted(found.items(), key=lambda kv: (kv[0] != "http", kv[0])))


@cache
def restart_types() -> dict[str, RestartType]:
    """Restart actions offered by protocol modules, by their key (`snmp_set`, `modbus_write`)."""
    found: dict[str, RestartType] = {}
    for module in _modules():
        for rt in (*getattr(module, "RESTARTS", ()), *([module.RESTART] if hasattr(module, "RESTART") else [])):
            found[rt.name] = rt
    return dict(sorted(found.items()))


def preflight(services: Iterable[Any]) -> list[str]:
    """What keeps this machine from running the configured checks, one line per problem.

    A check module may offer `preflight(settings) -> str | None` (ping: can an ICMP socket be opened
    here?); `faultwatch --check-config` prints what they say. Services with the same problem share a line.
    """
    found: dict[str, list[str]] = {}
    for svc in services:
        module = sys.modules.get(type(svc.check).__module__)
        hook = getattr(module, "preflight", None)
        problem = hook(svc.check) if callable(hook) else None
        if problem:
            found.setdefault(problem, []).append(svc.id)
    out = []
    for problem, ids in found.items():
        shown = ", ".join(ids[:5]) + (f" +{len(ids) - 5} more" if len(ids) > 5 else "")
        out.append(f"{problem} (services: {shown})")
    return out
