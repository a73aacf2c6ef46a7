"""Circuit breaker invariants under random operation sequences (Hypothesis state machine)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from core.breaker import CircuitBreaker, CircuitOpen, Permit
from core.clock import FakeClock
from core.config import CircuitBreakerConfig
from core.events import BreakerEvent, BreakerState

S = BreakerState

ALLOWED_EDGES = {
    (S.CLOSED, S.OPEN),
    (S.OPEN, S.HALF_OPEN),
    (S.HALF_OPEN, S.CLOSED),
    (S.HALF_OPEN, S.OPEN),
    (S.FORCED_OPEN, S.FORCED_CLOSED),
    (S.FORCED_CLOSED, S.FORCED_OPEN),
}
ALLOWED_EDGES |= {(s, S.FORCED_OPEN) for s in S if s is not S.FORCED_OPEN}
ALLOWED_EDGES |= {(s, S.FORCED_CLOSED) for s in S if s is not S.FORCED_CLOSED}
RESET_EDGES = {(s, S.CLOSED) for s in S if s is not S.CLOSED}
OPERATOR_OPS = {"force_open", "force_close", "reset"}


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.events: list[BreakerEvent] = []
        self.permits: list[Permit] = []
        self.breaker: CircuitBreaker

    @initialize(
        window=st.sampled_from(["consecutive", "count", "time"]),
        failure_threshold=st.integers(1, 4),
        success_threshold=st.integers(1, 3),
        half_open_max_calls=st.integers(1, 3),
        timeout=st.sampled_from([1.0, 5.0, 60.0]),
        minimum_calls=st.integers(1, 5),
        window_size=st.integers(1, 8),
        rate=st.sampled_from([0.0, 25.0, 50.0, 100.0]),
        initial=st.sampled_from(list(S)),
    )
    def setup(self, window: str, failure_threshold: int, success_threshold: int, half_open_max_calls: int,
              timeout: float, minimum_calls: int, window_size: int, rate: float, initial: S) -> None:
        self.config = CircuitBreakerConfig(
            failure_threshold=failure_threshold, success_threshold=success_threshold,
            timeout_seconds=timeout, half_open_max_calls=half_open_max_calls,
            window=window,  # type: ignore[arg-type]
            window_size=window_size, minimum_calls=minimum_calls, failure_rate_threshold=rate,
            slow_call_rate_threshold=rate, slow_call_duration_ms=100.0)
        self.initial = initial
        self.breaker = CircuitBreaker("svc", self.config, self.clock, listener=self.events.append,
                                      initial=initial)

    def _apply(self, op: str, action: object) -> None:
        """Run one operation and check the rules that depend on what it was."""
        before_state = self.breaker._state  # no poll: the op itself may be the one that polls
        before_events = len(self.events)
        assert callable(action)
        action()
        new = self.events[before_events:]
        if before_state.forced and op not in OPERATOR_OPS:
            assert new == [], f"{op} moved forced state {before_state}: {new}"
            assert self.breaker.state is before_state
        for event in new:
            edge = (event.from_state, event.to_state)
            if op == "reset":
                assert edge in RESET_EDGES, edge
            elif op in ("force_open", "force_close"):
                assert event.to_state is (S.FORCED_OPEN if op == "force_open" else S.FORCED_CLOSED)
                assert edge in ALLOWED_EDGES, edge
            else:
                assert edge in ALLOWED_EDGES and not event.to_state.forced, edge

    # ------------------------------------------------------------ operations

    @rule()
    def acquire(self) -> None:
        def go() -> None:
            try:
                self.permits.append(self.breaker.acquire())
            except CircuitOpen as exc:
                assert exc.state in (S.OPEN, S.FORCED_OPEN, S.HALF_OPEN)
        self._apply("acquire", go)

    @rule(data=st.data(), slow=st.booleans())
    def success(self, data: st.DataObject, slow: bool) -> None:
        permit = self._pick(data)
        self._apply("success", lambda: self.breaker.record_success(permit, 0.5 if slow else 0.01))

    @rule(data=st.data())
    def failure(self, data: st.DataObject) -> None:
        permit = self._pick(data)
        self._apply("failure", lambda: self.breaker.record_failure(permit, None, "boom"))

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        if self.permits:
            permit = self.permits.pop(data.draw(st.integers(0, len(self.permits) - 1)))
            self._apply("release", lambda: self.breaker.release(permit))

    @rule(seconds=st.sampled_from([0.1, 0.9, 1.0, 4.0, 30.0, 60.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance_sync(seconds)

    @rule()
    def poll(self) -> None:
        self._apply("poll", self.breaker.poll)

    @rule()
    def force_open(self) -> None:
        self._apply("force_open", self.breaker.force_open)

    @rule()
    def force_close(self) -> None:
        self._apply("force_close", self.breaker.force_close)

    @rule()
    def reset(self) -> None:
        self._apply("reset", self.breaker.reset)

    def _pick(self, data: st.DataObject) -> Permit | None:
        """A permit still in flight (used once), or None for a caller that bypasses acquire()."""
        if self.permits and data.draw(st.booleans()):
            return self.permits.pop(data.draw(st.integers(0, len(self.permits) - 1)))
        return None

    # ------------------------------------------------------------ invariants

    @invariant()
    def half_open_budget(self) -> None:
        b = self.breaker
        assert 0 <= b.half_open_in_flight <= self.config.half_open_max_calls
        if b._state is not S.HALF_OPEN:
            assert b.half_open_in_flight == 0

    @invariant()
    def events_chain(self) -> None:
        previous = self.initial
        for event in self.events:
            assert event.from_state is previous, (event, previous)
            assert event.from_state is not event.to_state
            previous = event.to_state
        assert self.breaker._state is previous

    @invariant()
    def state_matches_last_event(self) -> None:
        # Reading `state` never moves the breaker; `poll()` applies a due transition and reports it.
        self.breaker.poll()
        state = self.breaker.state
        expected = self.events[-1].to_state if self.events else self.initial
        assert state is expected

    @invariant()
    def open_only_until_timeout(self) -> None:
        b = self.breaker
        b.poll()  # the engine polls a breaker whose transition is due; reading alone does not move it
        if b.state is S.OPEN:
            due = b.next_transition_at()
            assert due is not None and self.clock.monotonic() < due
        else:
            assert b.next_transition_at() is None

    @invariant()
    def consecutive_rule(self) -> None:
        b = self.breaker
        if self.config.window == "consecutive" and b.state is S.CLOSED:
            assert b.consecutive_failures < self.config.failure_threshold


TestBreakerMachine = BreakerMachine.TestCase
TestBreakerMachine.settings = settings(
    max_examples=200, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
