"""Crash safety of the real process: SIGKILL at random moments loses nothing anyone was shown.

A `faultwatch --headless` process watches a simulated rack of flapping and flaky devices with fast
intervals, so it publishes events continuously (`--events PATH`, JSON lines). It is killed with
SIGKILL after a seeded random number of events. After each kill the journal must open as it is (no
recovery), and every event that reached the JSON-lines file must be in it with the same seq, kind
and service: the engine publishes an event only after the journal has committed it. Each new run on
the same state directory continues the seq numbering (never reusing a number it already showed).
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pytest

from core.clock import SystemClock
from core.config import JournalConfig
from core.journal import Journal
from core.paths import JOURNAL_FILENAME
from core.sim.devices import DeviceSpec

if TYPE_CHECKING:  # the fixtures' types; conftest modules are not imported by name
    from tests.e2e.conftest import FaultwatchProcess, SimThread

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

SEED = 20261124
RUNS = 6


def _rack() -> list[DeviceSpec]:
    return [
        DeviceSpec("flap-a", "flapping", {"period_s": 0.3}, reboot_s=0.05, sticky=True),
        DeviceSpec("flap-b", "flapping", {"period_s": 0.45}, reboot_s=0.05, sticky=True),
        DeviceSpec("flap-c", "flapping", {"period_s": 0.7}, group="rack-b", reboot_s=0.05, sticky=True),
        DeviceSpec("flaky-a", "flaky", {"p": 0.5, "seed": 1}, reboot_s=0.05, sticky=True),
        DeviceSpec("flaky-b", "flaky", {"p": 0.4, "seed": 2}, group="rack-b", reboot_s=0.05, sticky=True),
        DeviceSpec("steady", "healthy"),
    ]


def _config(sim: SimThread, devices: list[DeviceSpec]) -> str:
    out = ["""
[fault_detection]
check_interval_seconds = 0.05
timeout_seconds = 1
max_failures = 2
jitter_fraction = 0

[circuit_breaker]
failure_threshold = 4
timeout_seconds = 0.3
success_threshold = 1

[recovery]
restart_base_delay_seconds = 0.05
restart_max_delay_seconds = 0.2
verify_checks = 1
verify_timeout_seconds = 1
storm_max_restarts = 1000
storm_period_seconds = 1
group_storm_max_restarts = 1000

[rate_limit]
restarts_per_service_per_minute = 600
restarts_per_group_per_minute = 6000

[alerts]
unhealthy_for_seconds = 0

[api]
listen = "127.0.0.1:0"
"""]
    for d in devices:
        base = sim.base_url(d.id)
        out.append(f'[[services]]\nid = "{d.id}"\nendpoint = "{base}"\ngroup = "{d.group}"\n'
                   f'restart = {{ http = {{ url = "{base}/restart" }} }}\n')
    return "\n".join(out)


def _complete_records(path: Path) -> list[dict[str, object]]:
    """JSON lines that were written completely (a kill can land in the middle of a line)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    return [json.loads(line) for line in lines[:-1] if line]


def _line_count(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def _wait_lines(path: Path, n: int, proc: FaultwatchProcess, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _line_count(path) < n:
        assert proc.proc.poll() is None, "faultwatch exited early:\n" + "\n".join(proc.lines[-20:])
        assert time.monotonic() < deadline, f"fewer than {n} events within {timeout_s} s"
        time.sleep(0.01)


def _journal(state: Path) -> Journal:
    # No recover=True: a journal a kill left behind must open as it is, not be moved aside.
    return Journal.open(state / JOURNAL_FILENAME, JournalConfig(), SystemClock())


def test_sigkill_at_random_moments_loses_no_published_event(
        tmp_path: Path, faultwatch: Callable[..., FaultwatchProcess],
        sim_rack: Callable[[list[DeviceSpec]], SimThread]) -> None:
    rng = random.Random(SEED)
    devices = _rack()
    sim = sim_rack(devices)
    config = tmp_path / "rack.toml"
    config.write_text(_config(sim, devices), encoding="utf-8")
    state = tmp_path / "state"
    high_water = 0  # the highest seq any earlier run showed
    shown_total = 0

    for run in range(RUNS):
        events_path = tmp_path / f"events-{run}.jsonl"
        proc = faultwatch("--headless", "--config", str(config), "--events", str(events_path),
                          "--state-dir", str(state), "--duration", "60")
        proc.wait_for_line(r"running headless: 6 services")
        target = rng.randint(5, 80)
        _wait_lines(events_path, target, proc)
        time.sleep(rng.uniform(0.0, 0.05))  # land somewhere between two events, not right after one
        assert proc.kill() == -9, "the process must die by the kill, not exit by itself"

        shown = _complete_records(events_path)
        assert len(shown) >= target
        seqs = [int(r["seq"]) for r in shown]  # type: ignore[arg-type]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "seq must increase within a run"
        assert seqs[0] > high_water, f"run {run} reused seq {seqs[0]} (earlier runs reached {high_water})"

        journal = _journal(state)
        try:
            stored = {e.seq: e for e in journal.events(since_seq=high_water, limit=None)}
            last = journal.last_seq()
        finally:
            journal.close()
        for record in shown:
            seq = int(record["seq"])  # type: ignore[arg-type]
            assert seq in stored, f"run {run}: event {seq} was published but is not in the journal"
            assert stored[seq].KIND == record["kind"] and stored[seq].service == record["service"], (
                f"seq {seq}: journal has {stored[seq].KIND}/{stored[seq].service}, stream showed {record}")
        assert last >= seqs[-1]
        high_water = last
        shown_total += len(shown)

    # A last, clean run on the same state directory: it starts, continues the numbering, and stops
    # cleanly on SIGTERM with exit 0.
    events_path = tmp_path / "events-final.jsonl"
    proc = faultwatch("--headless", "--config", str(config), "--events", str(events_path),
                      "--state-dir", str(state), "--duration", "60")
    proc.wait_for_line(r"running headless")
    _wait_lines(events_path, 5, proc)
    assert proc.terminate() == 0
    proc.wait_for_line(r"stopped cleanly")
    final = _complete_records(events_path)
    assert final and int(final[0]["seq"]) > high_water  # type: ignore[arg-type]

    journal = _journal(state)
    try:
        history = journal.events(limit=None)
        assert history, "history must be readable after the restart"
        assert len(history) >= shown_total + len(final)
        assert journal.last_seq() >= int(final[-1]["seq"])  # type: ignore[arg-type]
        kinds = {e.KIND for e in history}
        assert "probe" in kinds
    finally:
        journal.close()
