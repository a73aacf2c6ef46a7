"""The circuit breaker: when calls to one service may run, and how results move that decision.

One `CircuitBreaker` guards one service. Closed, it admits every call and counts failures (either
consecutive ones, the seed design's rule, or a failure/slow-call rate over a sliding window of the
last N calls or N seconds). Open, it rejects calls until `timeout_seconds` of *monotonic* time have
passed (the seed measured this with `Instant::now().elapsed()`, which is always ~0, so its breaker
never reopened on time). Half-open, it admits a bounded number of trial calls: enough successes close
it, any failure opens it again. Operators can force it open or closed; forced states only change by
`force_*()` or `reset()`.

Every transition is reported to the listener as a `BreakerEvent`. The breaker is not thread-safe: it
belongs to one asyncio loop, like the rest of the core.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

from core.clock import Clock
from core.config import CircuitBreakerConfig
from core.events import BreakerEvent, BreakerState
from core.snapshot import BreakerView
from core.logs import BREAKER as log


T = TypeVar("T")

_CLOSED = BreakerState.CLOSED
_OPEN = BreakerState.OPEN
_HALF_OPEN = BreakerState.HALF_OPEN
_FORCED_OPEN = BreakerState.FORCED_OPEN
_FORCED_CLOSED = BreakerState.FORCED_CLOSED


class CircuitOpen(Exception):
    """A call was refused by the breaker.

    Attributes:
        service: the guarded service.
        state: the breaker state that refused the call (open, forced_open, or half_open with its
            trial budget in use).
        retry_after_s: seconds until the breaker admits a trial, when that is known; None for forced
            open (only an operator ends it) and a busy half-open (it depends on the trials in flight).
    """

    def __init__(self, service: str, state: BreakerState, retry_after_s: float | None = None,
                 detail: str = "") -> None:
        self.service = service
        self.state = state
        self.retry_after_s = retry_after_s
        message = f"circuit for {service} is {state}"
        if retry_after_s is not None:
            message += f"; retry in {retry_after_s:.1f} s"
        if detail:
            message += f"; {detail}"
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to run one call, tied to the breaker state generation it was issued in.

    Results carrying a permit from an older generation (the call started before a transition) are
    ignored, so a slow call from before the breaker opened cannot close or reopen it later.
    """

    generation: int
    trial: bool


class _CountWindow:
    """The outcomes of the last `size` calls, with running totals."""

    __slots__ = ("_size", "_items", "failures", "slow")

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: deque[tuple[bool, bool]] = deque()
        self.failures = 0
        self.slow = 0

    def add(self, failed: bool, slow: bool, now: float) -> None:
        if len(self._items) >= self._size:
            old_failed, old_slow = self._items.popleft()
            self.failures -= old_failed
            self.slow -= old_slow
        self._items.append((failed, slow))
        self.failures += failed
        self.slow += slow

    def calls(self, now: float) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
        self.failures = self.slow = 0


class _TimeWindow:
    """The outcomes of the calls in the last `size` seconds, with running totals."""

    __slots__ = ("_size", "_items", "failures", "slow")

    def __init__(self, size: float) -> None:
        self._size = size
        self._items: deque[tuple[float, bool, bool]] = deque()
        self.failures = 0
        self.slow = 0

    def _evict(self, now: float) -> None:
        horizon = now - self._size
        items = self._items
        while items and items[0][0] <= horizon:
            _, old_failed, old_slow = items.popleft()
            self.failures -= old_failed
            self.slow -= old_slow

    def add(self, failed: bool, slow: bool, now: float) -> None:
        self._evict(now)
        self._items.append((now, failed, slow))
        self.failures += failed
        self.slow += slow

    def calls(self, now: float) -> int:
        self._evict(now)
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
        self.failures = self.slow = 0


def _make_window(config: CircuitBreakerConfig) -> _CountWindow | _TimeWindow | None:
    if config.window == "count":
        return _CountWindow(config.window_size)
    if config.window == "time":
        return _TimeWindow(float(config.window_size))
    return None


def _describe_exception(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class CircuitBreaker:
    """A circuit breaker for one service (see the module docstring for the rules).

    Attributes:
        service: the guarded service's id.
        config: the settings in force (replace with `set_config()`).
    """

    def __init__(self, service: str, config: CircuitBreakerConfig, clock: Clock,
                 listener: Callable[[BreakerEvent], None] | None = None,
                 initial: BreakerState = BreakerState.CLOSED) -> None:
        self.service = service
        self.config = config
        self._clock = clock
        self._listener = listener
        self._state = initial
        self._generation = 0
        self._opened_at = clock.monotonic()
        self._consecutive_failures = 0
        self._half_open_successes = 0
        self._half_open_in_flight = 0
        self._window = _make_window(config)
        # Cached so the closed-state fast path allocates nothing: `_admit` is the permit handed out
        # while every call is admitted, `_fast` is that same permit when a success needs nothing
        # but a counter reset (closed, consecutive mode).
        self._admit: Permit | None = None
        self._fast: Permit | None = None
        self._refresh_permits()

    # ------------------------------------------------------------------ reading

    @property
    def state(self) -> BreakerState:
        """The state as of the last transition. Reading never moves the breaker: time-based moves
        (OPEN → HALF_OPEN) happen in `poll()`, which the engine calls when one is due, and in
        `acquire()`; so building a snapshot can never journal or publish an event."""
        return self._state

    @property
    def generation(self) -> int:
        """Bumped by every transition; permits from older generations no longer move the state."""
        return self._generation

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive_failures

    @property
    def half_open_successes(self) -> int:
        return self._half_open_successes

    @property
    def half_open_in_flight(self) -> int:
        return self._half_open_in_flight

    def next_transition_at(self) -> float | None:
        """Monotonic time at which OPEN becomes HALF_OPEN, or None when not open.

        It may lie in the past until someone calls `poll()` (or `acquire()`).
        """
        if self._state is _OPEN:
            return self._opened_at + self.config.timeout_seconds
        return None

    def view(self) -> BreakerView:
        state = self._state
        reopen_in_s: float | None = None
        if state is _OPEN:
            reopen_in_s = max(0.0, self._opened_at + self.config.timeout_seconds - self._clock.monotonic())
        cfg = self.config
        return BreakerView(
            state=state,
            consecutive_failures=self._consecutive_failures,
            half_open_in_flight=self._half_open_in_flight,
            half_open_max_calls=cfg.half_open_max_calls,
            half_open_successes=self._half_open_successes,
            success_threshold=cfg.success_threshold,
            failure_threshold=cfg.failure_threshold,
            reopen_in_s=reopen_in_s,
        )

    # ------------------------------------------------------------------ time

    def poll(self) -> None:
        """Apply the time-based transition (OPEN → HALF_OPEN) if it is due."""
        if self._state is _OPEN:
            timeout = self.config.timeout_seconds
            if self._clock.monotonic() >= self._opened_at + timeout:
                self._transition(_HALF_OPEN, f"open timeout {timeout:g}s elapsed")

    # ------------------------------------------------------------------ calls

    def acquire(self) -> Permit:
        """Leave to run one call, or CircuitOpen."""
        admit = self._admit
        if admit is not None:
            return admit
        self.poll()
        state = self._state
        if state is _HALF_OPEN:
            limit = self.config.half_open_max_calls
            if self._half_open_in_flight < limit:
                self._half_open_in_flight += 1
                return Permit(self._generation, True)
            raise CircuitOpen(self.service, state, None,
                              f"{self._half_open_in_flight} of {limit} trial calls in flight")
        if state is _OPEN:
            remaining = self._opened_at + self.config.timeout_seconds - self._clock.monotonic()
            raise CircuitOpen(self.service, state, max(0.0, remaining))
        if state is _FORCED_OPEN:
            raise CircuitOpen(self.service, state, None, "an operator must close or reset it")
        return Permit(self._generation, False)  # pragma: no cover - closed states return `_admit`

    def release(self, permit: Permit) -> None:
        """Give a permit back without counting a result (the call was cancelled, or never ran)."""
        if permit.trial and permit.generation == self._generation and self._half_open_in_flight > 0:
            self._half_open_in_flight -= 1

    def record_success(self, permit: Permit | None = None, duration_s: float | None = None) -> None:
        if permit is not None and permit is self._fast:
            self._consecutive_failures = 0
            return
        self._record(False, permit, duration_s, "")

    def record_failure(self, permit: Permit | None = None, duration_s: float | None = None,
                       reason: str = "") -> None:
        self._record(True, permit, duration_s, reason)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run `fn()` under the breaker: an exception is a failure (and is re-raised); a cancellation
        gives the permit back without counting; CircuitOpen when the call may not run."""
        permit = self.acquire()
        if permit is self._fast:
            # Consecutive mode ignores durations, so the clock is not read at all.
            try:
                result = await fn()
            except Exception as exc:
                self.record_failure(permit, None, _describe_exception(exc))
                raise
            self.record_success(permit)
            return result
        timed = self._window is not None
        clock = self._clock
        started = clock.monotonic() if timed else 0.0
        try:
            result = await fn()
        except Exception as exc:
            duration = clock.monotonic() - started if timed else None
            self.record_failure(permit, duration, _describe_exception(exc))
            raise
        except BaseException:
            # CancelledError (and KeyboardInterrupt, SystemExit) say nothing about the service.
            self.release(permit)
            raise
        self.record_success(permit, clock.monotonic() - started if timed else None)
        return result

    # ------------------------------------------------------------------ operator

    def force_open(self, reason: str = "forced by operator") -> None:
        if self._state is not _FORCED_OPEN:
            self._transition(_FORCED_OPEN, reason)

    def force_close(self, reason: str = "forced by operator") -> None:
        if self._state is not _FORCED_CLOSED:
            self._transition(_FORCED_CLOSED, reason)

    def reset(self, reason: str = "reset by operator") -> None:
        """Back to CLOSED with every counter cleared. Already closed: counters cleared, no event."""
        if self._state is _CLOSED:
            self._consecutive_failures = 0
            if self._window is not None:
                self._window.clear()
            return
        self._transition(_CLOSED, reason)

    def set_config(self, config: CircuitBreakerConfig) -> None:
        """Live reload: the state stays; new thresholds apply from the next result or poll."""
        old = self.config
        self.config = config
        if (old.window, old.window_size) != (config.window, config.window_size):
            # Rates over a window of another shape would judge calls the new config never saw.
            self._window = _make_window(config)
        self._refresh_permits()

    # ------------------------------------------------------------------ internals

    def _refresh_permits(self) -> None:
        state = self._state
        if state is _CLOSED or state is _FORCED_CLOSED:
            self._admit = Permit(self._generation, False)
        else:
            self._admit = None
        self._fast = self._admit if state is _CLOSED and self._window is None else None

    def _record(self, failed: bool, permit: Permit | None, duration_s: float | None, reason: str) -> None:
        if permit is not None:
            if permit.generation != self._generation:
                return
            if permit.trial and self._half_open_in_flight > 0:
                self._half_open_in_flight -= 1
        state = self._state
        if state is _OPEN:
            # A result from a caller that bypassed acquire(): it may still trigger the due half-open,
            # but it is not a trial and must not count as one.
            self.poll()
            return
        if state is _CLOSED:
            self._record_closed(failed, duration_s, reason)
        elif state is _HALF_OPEN:
            if failed:
                self._consecutive_failures += 1
                self._transition(_OPEN, f"failure in half-open: {reason or 'call failed'}")
            else:
                self._consecutive_failures = 0
                self._half_open_successes += 1
                needed = self.config.success_threshold
                if self._half_open_successes >= needed:
                    self._transition(_CLOSED, f"{needed} successes in half-open")
        # Forced states ignore results: only an operator moves them.

    def _record_closed(self, failed: bool, duration_s: float | None, reason: str) -> None:
        cfg = self.config
        if failed:
            self._consecutive_failures += 1
        else:
            self._consecutive_failures = 0
        window = self._window
        if window is None:
            if failed and self._consecutive_failures >= cfg.failure_threshold:
                why = f"{self._consecutive_failures} consecutive failures"
                self._transition(_OPEN, f"{why} (last: {reason})" if reason else why)
            return
        now = self._clock.monotonic()
        slow = duration_s is not None and duration_s * 1000.0 > cfg.slow_call_duration_ms
        window.add(failed, slow, now)
        calls = window.calls(now)
        if calls < cfg.minimum_calls:
            return
        # A rate needs at least one bad call: a 0 % threshold must not open a healthy breaker.
        failure_rate = 100.0 * window.failures / calls
        if window.failures and failure_rate >= cfg.failure_rate_threshold:
            self._transition(_OPEN, f"failure rate {failure_rate:.4g}% ≥ {cfg.failure_rate_threshold:g}% "
                                    f"over {calls} calls")
            return
        slow_rate = 100.0 * window.slow / calls
        if window.slow and slow_rate >= cfg.slow_call_rate_threshold:
            self._transition(_OPEN, f"slow-call rate {slow_rate:.4g}% ≥ {cfg.slow_call_rate_threshold:g}% "
                                    f"over {calls} calls (slower than {cfg.slow_call_duration_ms:g} ms)")

    def _transition(self, to: BreakerState, reason: str) -> None:
        from_state = self._state
        now = self._clock.monotonic()
        self._state = to
        self._generation += 1
        self._half_open_in_flight = 0
        self._half_open_successes = 0
        if to is _OPEN:
            self._opened_at = now
        if to is _CLOSED:
            self._consecutive_failures = 0
        if self._window is not None:
            # Every state starts judging from fresh calls, as in Resilience4j.
            self._window.clear()
        self._refresh_permits()
        log.info("breaker %s: %s -> %s (%s)", self.service, from_state, to, reason)
        listener = self._listener
        if listener is None:
            return
        event = BreakerEvent(service=self.service, mono=now, wall=self._clock.wall(),
                             from_state=from_state, to_state=to, reason=reason)
        try:
            listener(event)
        except Exception:
            # A broken listener (GUI bridge, journal) must not leave the breaker half-transitioned.
            log.exception("breaker %s: listener failed on %s -> %s", self.service, from_state, to)

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.service} {self._state} gen={self._generation}>"


__all__ = ["CircuitBreaker", "CircuitOpen", "Permit"]
