"""Helper for test_journal_disk.py: a journal driven line by line from stdin, optionally as another user.

Run as `python journal_driver.py JOURNAL_PATH [UID]`. With UID, the process drops to that user
after its imports (root ignores file permissions, so a permission test needs a plain user; the
interpreter itself may live where that user cannot read). Commands, one per line; each answers
one JSON line on stdout:

    append SERVICE   → {"seq": n}
    state KEY VALUE  → {}                 (save_state)
    flush            → {"written": n}     (after 60 s of fake time, so any retry is due)
    health           → the JournalHealth as a dict
    events           → {"seqs": [...]}    (stored and held)
    quit             → {} and the journal is closed
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.clock import FakeClock  # noqa: E402
from core.config import JournalConfig  # noqa: E402
from core.events import ProbeEvent, ServiceStatus  # noqa: E402
from core.journal import Journal  # noqa: E402


def main(path: Path, uid: int | None) -> None:
    if uid is not None:
        os.setgid(uid)
        os.setuid(uid)
    clock = FakeClock(start=0.0)
    journal = Journal.open(path, JournalConfig(), clock, recover=True)
    print(json.dumps({"ready": journal.last_seq()}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        command = words[0]
        answer: dict[str, object] = {}
        if command == "append":
            event = ProbeEvent(service=words[1], mono=clock.monotonic(), wall=clock.wall(),
                               status=ServiceStatus.UNHEALTHY, latency_ms=None, error="refused",
                               consecutive_failures=3)
            answer = {"seq": journal.append(event).seq}
        elif command == "state":
            journal.save_state(words[1], words[2])
        elif command == "flush":
            clock.advance_sync(60.0)
            answer = {"written": journal.flush()}
        elif command == "health":
            answer = dataclasses.asdict(journal.health())
        elif command == "events":
            answer = {"seqs": [e.seq for e in journal.events(limit=None)]}
        elif command == "quit":
            journal.close()
            print("{}", flush=True)
            return
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None)
