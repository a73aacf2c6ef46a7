"""Backoff: how long to wait before restart attempt N, and when the attempt count starts over.

`backoff_delay()` and `delay_for()` are pure (randomness only through the `rng` passed in).
`AttemptTracker` counts attempts and forgets them after a stable healthy period, like Kubernetes'
CrashLoopBackOff: a service that crashed three times last week should not wait the maximum delay today.
"""

from __future__ import annotations

import random

from core.clock import Clock
from core.config import RecoveryConfig

STRATEGIES = ("fixed", "linear", "exponential")
JITTERS = ("none", "full", "equal")

# 2.0 ** 1024 overflows a float; past this exponent every positive base is far above any cap anyway.
_MAX_EXPONENT = 1023


def backoff_delay(strategy: str, attempt: int, base: float, max_delay: float, jitter: str = "none",
                  rng: random.Random | None = None) -> float:
    """Seconds to wait before `attempt` (1-based), capped at `max_delay`, then jittered.

    fixed: base · linear: base × attempt · exponential: base × 2^(attempt-1).
    Jitter "full" draws from [0, d], "equal" from [d/2, d]; both stay within the cap.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown backoff strategy {strategy!r} (expected one of {', '.join(STRATEGIES)})")
    if jitter not in JITTERS:
        raise ValueError(f"unknown jitter {jitter!r} (expected one of {', '.join(JITTERS)})")
    if attempt < 1:
        raise ValueError(f"attempt is 1-based, got {attempt}")
    if base < 0 or max_delay < 0:
        raise ValueError(f"delays must not be negative (base {base}, max {max_delay})")

    if base == 0:
        delay = 0.0
    elif strategy == "fixed":
        delay = base
    elif strategy == "linear":
        # Compare before multiplying: int × float raises OverflowError for huge attempts.
        delay = max_delay if attempt >= max_delay / base else base * attempt
    else:
        exponent = attempt - 1
        delay = max_delay if exponent > _MAX_EXPONENT else base * 2.0 ** exponent
    delay = min(delay, max_delay)

    if jitter == "none":
        return delay
    uniform = rng.uniform if rng is not None else random.uniform
    if jitter == "full":
        return uniform(0.0, delay)
    return delay / 2 + uniform(0.0, delay / 2)


def delay_for(config: RecoveryConfig, attempt: int, rng: random.Random | None = None) -> float:
    """`backoff_delay()` with the `[recovery]` settings."""
    return backoff_delay(config.restart_backoff_strategy, attempt, config.restart_base_delay_seconds,
                         config.restart_max_delay_seconds, config.restart_jitter, rng)


class AttemptTracker:
    """Restart attempts for one failure episode, forgotten after a stable healthy period.

    The stable period starts at the first healthy check after the last failure (`note_unhealthy()`
    or `next_attempt()`) and must last `reset_after_stable_s` of monotonic time without a failure.

    Attributes:
        last_reset_reason: why the count last went back to 0, or None if it never did.
    """

    def __init__(self, clock: Clock, reset_after_stable_s: float) -> None:
        if reset_after_stable_s < 0:
            raise ValueError(f"reset_after_stable_s must not be negative, got {reset_after_stable_s}")
        self._clock = clock
        self._reset_after = reset_after_stable_s
        self._attempts = 0
        self._healthy_since: float | None = None
        self.last_reset_reason: str | None = None

    @property
    def attempts(self) -> int:
        return self._attempts

    def set_stable_period(self, reset_after_stable_s: float) -> None:
        """A reload changed `reset_after_stable_seconds`: the running episode follows the new value."""
        if reset_after_stable_s < 0:
            raise ValueError(f"reset_after_stable_s must not be negative, got {reset_after_stable_s}")
        self._reset_after = reset_after_stable_s

    def next_attempt(self) -> int:
        """Count one more attempt and return its number (1 for the first)."""
        # An attempt means the service is failing, so any healthy streak is over.
        self._healthy_since = None
        self._attempts += 1
        return self._attempts

    def note_healthy(self) -> str | None:
        """Record a healthy check; returns the reason if this one completed a stable period."""
        now = self._clock.monotonic()
        if self._healthy_since is None:
            self._healthy_since = now
        if self._attempts == 0 or now - self._healthy_since < self._reset_after:
            return None
        reason = f"backoff reset after {self._reset_after:g} s healthy"
        self._attempts = 0
        self.last_reset_reason = reason
        return reason

    def note_unhealthy(self) -> None:
        self._healthy_since = None

    def reset(self, reason: str) -> None:
        """Forget all attempts now (operator reset, config reload)."""
        self._attempts = 0
        self._healthy_since = None
        self.last_reset_reason = reason


__all__ = ["AttemptTracker", "JITTERS", "STRATEGIES", "backoff_delay", "delay_for"]
