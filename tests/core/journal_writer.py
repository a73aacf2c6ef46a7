"""Helper for test_journal_crash.py: append events forever, printing each seq once it is committed.

Run as `python journal_writer.py JOURNAL_PATH`. The parent SIGKILLs this process at a random moment;
every seq printed here was reported as written and must be in the journal afterwards. Latency samples
are recorded and flushed along the way so a kill can also land inside a flush transaction.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, so the repo root is not on sys.path unless put there.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.clock import SystemClock  # noqa: E402
from core.config import JournalConfig  # noqa: E402
from core.events import ProbeEvent, ServiceStatus  # noqa: E402
from core.journal import Journal  # noqa: E402


def main(path: Path) -> None:
    clock = SystemClock()
    journal = Journal.open(path, JournalConfig(), clock)
    print(f"ready {journal.last_seq()}", flush=True)
    n = 0
    while True:
        n += 1
        event = ProbeEvent(service=f"svc-{n % 7}", mono=clock.monotonic(), wall=clock.wall(),
                           status=ServiceStatus.UNHEALTHY, latency_ms=None, error="refused",
                           consecutive_failures=n)
        batch = [event] if n % 5 else [event, event, event]
        for stored in journal.append_many(batch):
            print(stored.seq, flush=True)
        journal.record_latency(event.service, event.wall, float(n % 100), n % 3 != 0)
        if n % 50 == 0:
            journal.flush()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
