"""Crash safety: a journal writer SIGKILLed at random moments loses nothing it reported as written."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.clock import SystemClock
from core.config import JournalConfig
from core.journal import Journal

WRITER = Path(__file__).with_name("journal_writer.py")
RUNS = 5


def run_and_kill(db: Path, kill_after: float) -> tuple[int, list[int]]:
    """Start the writer, wait until it is ready, let it run `kill_after` s, SIGKILL it.

    Returns (the last seq it found at start, every seq it printed as committed).
    """
    proc = subprocess.Popen([sys.executable, str(WRITER), str(db)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            ready.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        # The clock for the kill starts once the writer has opened the journal, so every run
        # kills it mid-append rather than mid-import.
        assert ready.wait(10.0), f"writer never became ready: {proc.stderr.read() if proc.stderr else ''}"
        time.sleep(kill_after)
        proc.kill()  # SIGKILL on POSIX: no cleanup, no atexit, no close()
    finally:
        proc.wait(10.0)
        reader.join(10.0)
    assert proc.returncode != 0
    first, *rest = lines
    start_seq = int(first.split()[1])
    # A kill can cut the last line short; only complete lines were reported.
    seqs = [int(line) for line in rest if line.endswith("\n")]
    return start_seq, seqs


@pytest.mark.slow
def test_killed_writer_loses_nothing_it_reported(tmp_path: Path) -> None:
    db = tmp_path / "faultwatch.db"
    rng = random.Random(20261124)
    reported: list[int] = []
    for run in range(RUNS):
        start_seq, seqs = run_and_kill(db, rng.uniform(0.2, 1.0))
        assert seqs, f"run {run}: nothing written"
        # Numbering continues from what survived: no seq is ever handed out twice.
        assert seqs[0] == start_seq + 1
        assert not set(seqs) & set(reported)
        assert seqs == sorted(seqs)
        reported.extend(seqs)

        with Journal.open(db, JournalConfig(), SystemClock()) as journal:
            stored = [e.seq for e in journal.events(limit=None)]
            assert set(reported) <= set(stored), f"run {run}: reported seqs missing after the kill"
            # Each append commits on its own: what is there is a gap-free prefix.
            assert stored == list(range(1, journal.last_seq() + 1))
            assert journal.stats().samples >= 0
