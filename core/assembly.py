"""Assembly: the one place that makes a real engine's parts and hands them to it.

The engine takes its clock, journal, check factory and restart runner as given; this module makes the
production ones: the journal in the state directory, one aiohttp session (connection pool) for every
HTTP check, restart and webhook, and a check context that shares one connection per broker or device.
Tests build engines with fake parts instead (tests/core/engine_harness.py).
"""

from __future__ import annotations

from core import paths
from core.actions import ActionResult, run_action
from core.checks.base import Check, CheckContext
from core.checks.registry import check_types
from core.clock import Clock, SystemClock
from core.config import Config, RestartAction, ServiceConfig
from core.engine import Engine
from core.journal import Journal
from core.journal_guard import JournalAlerts
from core.probe import make_session


def open_engine(config: Config, *, state_dir: str | None = None, clock: Clock | None = None,
                journal: Journal | None = None) -> Engine:
    """An engine with real parts. Call on the loop it will run on (the HTTP session binds to it)."""
    clock = clock or SystemClock()
    owned_journal = journal is None
    if journal is None:
        journal = Journal.open(paths.journal_path(config.journal.path, state_dir), config.journal, clock,
                               recover=True)
    session = make_session()
    context = CheckContext(session)

    def make_check(svc: ServiceConfig) -> Check:
        return check_types()[svc.check_type].make(svc.check, context, svc)

    async def run_restart(action: RestartAction, timeout_s: float) -> ActionResult:
        return await run_action(action, context, timeout_s)

    async def close() -> None:
        await context.close()
        await session.close()
        if owned_journal:
            journal.close()

    engine = Engine(config, clock=clock, journal=journal, checks=make_check, restarts=run_restart,
                    session=session, on_close=close)
    # A journal that cannot write (full or read-only disk, a lock) keeps the engine running; this
    # turns its health into the journal_degraded alert (and a corrupt file moved aside into a notice).
    journal.set_health_listener(JournalAlerts(engine.alert_manager))
    return engine
