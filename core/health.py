"""Process health as `GET /healthz` reports it: the engine is running and its journal takes writes.

This is what a container HEALTHCHECK, a systemd watchdog or a load balancer asks. It is deliberately
not about the services being watched (a fleet full of dead devices is a healthy engine doing its job);
it answers "is this process doing its own work": the engine has started and not stopped, and a real
write transaction on the journal commits.

The journal probe is a real write, so its answer is cached for `min_interval_s`: an unauthenticated
caller polling in a loop costs at most one small transaction a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from core.clock import Clock
from core.logs import ENGINE as log

# The journal state key the probe writes (its value: the wall time of the last probe).
HEALTH_STATE_KEY = "healthz:last_probe"


@dataclass(frozen=True, slots=True)
class Health:
    """One answer. `checks` pairs a part's name with "ok" or a short, secret-free word for a client.

    Attributes:
        ok: every check passed.
        checks: (name, "ok" | problem) per part, in a fixed order.
    """

    ok: bool
    checks: tuple[tuple[str, str], ...]


class HealthProbe:
    """Callable giving the current `Health`; cheap to call often.

    Args:
        running: True while the engine runs (started, not stopping).
        write_journal: commits one small write to the journal; raises on failure.
        clock: for the cache interval (monotonic).
        min_interval_s: how long an answer is reused before the journal is written again.
    """

    def __init__(self, running: Callable[[], bool], write_journal: Callable[[], None], clock: Clock,
                 min_interval_s: float = 1.0) -> None:
        self._running = running
        self._write_journal = write_journal
        self._clock = clock
        self._min_interval_s = min_interval_s
        self._last: Health | None = None
        self._last_at = 0.0
        self._last_problem: str | None = None

    def __call__(self) -> Health:
        now = self._clock.monotonic()
        if self._last is not None and now - self._last_at < self._min_interval_s:
            return self._last
        engine = "ok" if self._running() else "stopped"
        journal = "ok"
        problem: str | None = None
        if engine == "ok":
            try:
                self._write_journal()
            except Exception as exc:  # noqa: BLE001 - any failure to commit means "not writable"
                journal = "not writable"
                problem = " ".join(str(exc).split()) or type(exc).__name__
        else:
            journal = "closed"
        if problem != self._last_problem:
            # Detail for the operator's log only (it may name paths); once per change, not per probe.
            if problem is not None:
                log.warning("healthz: journal write failed: %s", problem)
            else:
                log.info("healthz: journal writable again")
            self._last_problem = problem
        health = Health(ok=engine == "ok" and journal == "ok", checks=(("engine", engine), ("journal", journal)))
        self._last, self._last_at = health, now
        return health
