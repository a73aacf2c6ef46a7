"""Per-call cost of the circuit breaker in its closed state, against a bare `await op()`.

Prints the median over 5 rounds of 100,000 calls each, in microseconds per call. No assertions: the
figures go into NOTES.md next to the other libraries' (circuitbreaker 1.27 µs, purgatory 2.20 µs ...).
Run: `.venv/bin/python bench/breaker_cost.py`
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.breaker import CircuitBreaker  # noqa: E402
from core.clock import SystemClock  # noqa: E402
from core.config import CircuitBreakerConfig  # noqa: E402

CALLS = 100_000
ROUNDS = 5


async def op() -> int:
    return 1


async def bare(n: int) -> None:
    for _ in range(n):
        await op()


def via_call(breaker: CircuitBreaker) -> Callable[[int], Awaitable[None]]:
    async def run(n: int) -> None:
        call = breaker.call
        for _ in range(n):
            await call(op)
    return run


def via_permit(breaker: CircuitBreaker) -> Callable[[int], Awaitable[None]]:
    async def run(n: int) -> None:
        acquire, success = breaker.acquire, breaker.record_success
        for _ in range(n):
            permit = acquire()
            await op()
            success(permit)
    return run


async def median_us(run: Callable[[int], Awaitable[None]]) -> float:
    await run(1000)  # warm-up
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        await run(CALLS)
        samples.append((time.perf_counter() - start) / CALLS * 1e6)
    return statistics.median(samples)


async def main() -> None:
    clock = SystemClock()
    consecutive = CircuitBreaker("bench", CircuitBreakerConfig(), clock)
    counted = CircuitBreaker("bench", CircuitBreakerConfig(window="count", window_size=100), clock)
    rows = [
        ("bare await op()", bare),
        ("breaker.call(op), consecutive", via_call(consecutive)),
        ("acquire + await op() + record_success, consecutive", via_permit(consecutive)),
        ("breaker.call(op), count window of 100", via_call(counted)),
        ("acquire + await op() + record_success, count window", via_permit(counted)),
    ]
    results = [(name, await median_us(run)) for name, run in rows]
    base = results[0][1]
    print(f"closed state, median of {ROUNDS} x {CALLS:,} calls, Python {sys.version.split()[0]}")
    for name, us in results:
        extra = "" if name.startswith("bare") else f"  (+{us - base:.2f} µs over bare)"
        print(f"  {name:<52} {us:6.2f} µs/call{extra}")
    print("  reference (NOTES.md): circuitbreaker 1.27 µs/call, purgatory 2.20, aiobreaker 2.49, pybreaker 2.72")


if __name__ == "__main__":
    asyncio.run(main())
