"""Foundation rules: core never imports Qt, docs match declarations, the clock and event shapes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.clock import FakeClock, iso_utc
from core.config import render_docs
from core.events import (ActionEvent, BreakerEvent, BreakerState, ProbeEvent, RecoveryEvent, RecoveryOutcome,
                         ServiceStatus, event_from_record)

ROOT = Path(__file__).resolve().parents[2]


def test_importing_core_never_imports_qt() -> None:
    code = ("import sys, pkgutil, importlib, core\n"
            "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
            "    if not m.name.endswith('__main__'):\n"
            "        importlib.import_module(m.name)\n"
            "import gui.launcher\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'qasync', 'pyqtgraph') or m.startswith('gui.') and m != 'gui.launcher']\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_layering_core_never_imports_gui_or_qt_not_even_lazily() -> None:
    # import-linter reads every import statement, including those inside functions.
    out = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "BROKEN" not in out.stdout and "KEPT" in out.stdout


def test_config_docs_match_the_declarations() -> None:
    doc = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert doc == render_docs(), "docs/config.md drifted: run `python -m core.config --docs > docs/config.md`"


def test_every_seed_key_is_documented_with_its_seed_default() -> None:
    doc = render_docs()
    for line in ("| `check_interval_seconds` | number | 30 |", "| `timeout_seconds` | number | 5 |",
                 "| `slow_response_threshold_ms` | number | 1000 |", "| `max_failures` | integer | 3 |",
                 "| `failure_threshold` | integer | 5 |", "| `success_threshold` | integer | 3 |",
                 "| `timeout_seconds` | number | 60 |", "| `max_restart_attempts` | integer | 3 |",
                 '| `restart_backoff_strategy` | "fixed" \\| "linear" \\| "exponential" | "exponential" |',
                 "| `restart_base_delay_seconds` | number | 1 |", "| `restart_max_delay_seconds` | number | 60 |"):
        assert line in doc


async def test_fake_clock_wakes_sleepers_in_deadline_order() -> None:
    clock = FakeClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, s: float) -> None:
        await clock.sleep(s)
        woke.append((name, clock.monotonic()))

    tasks = [asyncio.create_task(sleeper("b", 2.0)), asyncio.create_task(sleeper("a", 1.0))]
    await clock.advance(0.5)
    assert woke == []
    await clock.advance(2.0)
    assert woke == [("a", 1001.0), ("b", 1002.0)]
    assert clock.monotonic() == 1002.5
    await asyncio.gather(*tasks)
    with pytest.raises(ValueError):
        await clock.advance(-1)


def test_wall_follows_monotonic_on_the_fake_clock() -> None:
    clock = FakeClock(start=10.0, start_wall=1_000_000.0)
    clock.advance_sync(5)
    assert clock.wall() == 1_000_005.0
    assert iso_utc(0.25) == "1970-01-01T00:00:00.250Z"


def test_event_records_have_the_documented_shape_and_round_trip() -> None:
    events = [
        ProbeEvent(service="s", mono=1, wall=2, seq=7, status=ServiceStatus.DEGRADED, latency_ms=312.5,
                   error="slow", consecutive_failures=0, endpoint="http://x"),
        BreakerEvent(service="s", mono=1, wall=2, seq=8, from_state=BreakerState.CLOSED,
                     to_state=BreakerState.OPEN, reason="5 consecutive failures"),
        RecoveryEvent(service="s", mono=1, wall=2, seq=9, recovery_id="s#1", strategy="restart", attempt=1,
                      max_attempts=3, outcome=RecoveryOutcome.STARTED, delay_s=1.0),
        ActionEvent(service="s", mono=1, wall=2, seq=10, command="force_open", origin="gui"),
    ]
    records = [e.to_record() for e in events]
    assert records[1]["from"] == "closed" and records[1]["to"] == "open"
    for rec in records:
        assert list(rec)[:4] == ["ts", "seq", "kind", "service"]
        json.dumps(rec)
    for e, rec in zip(events, records):
        assert event_from_record(rec, mono=1, wall=2) == e


def test_events_doc_names_every_wire_field() -> None:
    doc = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    from core.events import EVENT_TYPES
    for kind, cls in EVENT_TYPES.items():
        assert f"`{kind}`" in doc
        sample = {f: None for f in cls.__dataclass_fields__}
        for name, f in cls.__dataclass_fields__.items():
            if name in ("mono", "wall", "seq", "service") or name.isupper():
                continue
            assert f"`{f.metadata.get('wire', name)}`" in doc, f"docs/events.md lacks {kind}.{name}"
        del sample
