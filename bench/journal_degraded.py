"""What a misbehaving disk costs the engine's loop: append healthy vs degraded, and the write-back.

Every journal call runs on the engine's loop thread, so its duration is loop lag. This measures,
on the real SQLite file in a temporary directory (or --dir):

* append() of one event while healthy (a commit each) and while degraded (held in memory);
* the write-back of N held events once the disk is back: chunks of 2,000, one per flush (tick),
  so the longest single stall is what matters;
* the first append that meets another process's lock (bounded by the busy timeout).

Prints a table; the figures go into docs/benchmarks.md. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.clock import FakeClock  # noqa: E402
from core.config import JournalConfig  # noqa: E402
from core.events import ProbeEvent, ServiceStatus  # noqa: E402
from core.journal import Journal  # noqa: E402


def event(clock: FakeClock, n: int) -> ProbeEvent:
    return ProbeEvent(service=f"svc-{n % 100}", mono=clock.monotonic(), wall=clock.wall(),
                      status=ServiceStatus.UNHEALTHY, latency_ms=None,
                      error="connection refused by 10.0.0.1:502", consecutive_failures=n % 7)


def per_call_us(fn: object, n: int) -> tuple[float, float]:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)  # type: ignore[operator]
        times.append((time.perf_counter() - t0) * 1e6)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="appends timed in each mode")
    parser.add_argument("--held", type=int, nargs="+", default=[1000, 20000],
                        help="held events written back by one retry")
    parser.add_argument("--dir", type=Path, default=None, help="directory for the journal (default: a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        clock = FakeClock(start=0.0)
        path = Path(tmp) / "faultwatch.db"
        journal = Journal.open(path, JournalConfig(), clock, recover=True)
        rows: list[tuple[str, str]] = []

        p50, p99 = per_call_us(lambda i: journal.append(event(clock, i)), args.events)
        rows.append(("append, healthy (one commit each)", f"p50 {p50:.0f} µs, p99 {p99:.0f} µs"))

        locker = sqlite3.connect(path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        t0 = time.perf_counter()
        journal.append(event(clock, 0))
        rows.append(("first append meeting another process's lock", f"{(time.perf_counter() - t0) * 1e3:.0f} ms"))
        assert not journal.health().ok

        p50, p99 = per_call_us(lambda i: journal.append(event(clock, i)), args.events)
        rows.append(("append, degraded (held in memory)", f"p50 {p50:.0f} µs, p99 {p99:.0f} µs"))

        t0 = time.perf_counter()
        clock.advance_sync(60.0)
        journal.flush()  # retry while still locked: must not wait for the lock
        rows.append(("a retry while still locked", f"{(time.perf_counter() - t0) * 1e3:.1f} ms"))

        for target in sorted(args.held):
            while journal.health().pending_events < target:
                journal.append(event(clock, 0))
            locker.execute("COMMIT")
            locker.close()
            held = journal.health().pending_events
            clock.advance_sync(60.0)
            stalls = []
            while not journal.health().ok:  # one flush per engine tick, each writes one chunk
                t0 = time.perf_counter()
                journal.flush()
                stalls.append((time.perf_counter() - t0) * 1e3)
            total = sum(stalls)
            rows.append((f"write-back of {held:,} held events", f"{len(stalls)} flushes, longest {max(stalls):.0f} ms, "
                         f"total {total:.0f} ms ({total * 1e3 / held:.1f} µs/event)"))
            # Locked again for the next size (the first append after this waits the busy timeout).
            locker = sqlite3.connect(path, isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")
        locker.execute("COMMIT")
        locker.close()
        journal.close()

    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  figure")
    for what, figure in rows:
        print(f"{what:<{width}}  {figure}")


if __name__ == "__main__":
    main()
