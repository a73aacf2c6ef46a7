"""Time, injectable: every timing rule in Faultwatch asks a Clock, never the OS directly.

`SystemClock` is the real one. `FakeClock` is for tests: time stands still until the test calls
`advance()`, and `sleep()` wakes exactly when fake time reaches its deadline, so a rule about
"60 seconds open" is tested in microseconds and without flakiness. `step_wall()` moves the wall
clock alone, as an NTP correction does, to prove that no timing rule reads it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    """Monotonic time for durations, wall time for display and the journal."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for durations only)."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch (UTC), for timestamps people read."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that moves only when told to.

    Attributes:
        start_wall: the wall time that corresponds to monotonic 0.
    """

    def __init__(self, start: float = 1000.0, start_wall: float = 1_780_000_000.0) -> None:
        self._now = start
        self._wall_offset = start_wall - start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._counter), fut))
        await fut

    def advance_sync(self, seconds: float) -> None:
        """Move time forward without waking sleepers (for pure state-machine tests)."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._now += seconds

    def step_wall(self, seconds: float) -> None:
        """Step wall time alone, either way (an NTP correction, someone setting the clock).

        Monotonic time and sleepers are untouched, as on a real machine: timing rules built on
        monotonic time must not notice, and only timestamps people read move.
        """
        self._wall_offset += seconds

    async def advance(self, seconds: float, step: float | None = None) -> None:
        """Move time forward, waking every sleeper whose deadline passes, in deadline order.

        Between wake-ups the event loop runs, so woken tasks can schedule new sleeps that fall
        inside the same advance. `step` bounds how far time jumps at once (useful when code
        under test reads the clock between awaits).
        """
        if seconds < 0:
            raise ValueError("time does not go backwards")
        target = self._now + seconds
        while True:
            await _settle()
            next_deadline = self._sleepers[0][0] if self._sleepers else None
            if next_deadline is None or next_deadline > target:
                break
            if step is not None and next_deadline - self._now > step:
                self._now += step
                continue
            self._now = max(self._now, next_deadline)
            while self._sleepers and self._sleepers[0][0] <= self._now:
                _, _, fut = heapq.heappop(self._sleepers)
                if not fut.done():
                    fut.set_result(None)
        self._now = target
        await _settle()

    @property
    def pending_sleepers(self) -> int:
        return sum(1 for _, _, f in self._sleepers if not f.done())


async def _settle(rounds: int = 20) -> None:
    """Let ready tasks run; enough rounds for a chain of awaits to reach its next sleep."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def iso_utc(wall_seconds: float) -> str:
    """ISO-8601 UTC with milliseconds, the one timestamp format of events and exports."""
    return (
        datetime.fromtimestamp(wall_seconds, tz=timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
