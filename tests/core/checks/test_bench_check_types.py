"""bench/throughput.py --check modbus|mqtt still runs (a tiny fleet for seconds; no timing asserted)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_check_types_bench_runs() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "throughput.py"), "--check", "modbus", "--check",
                           "mqtt", "--devices", "10", "--interval", "0.25", "--seconds", "0.5", "--warmup", "0.5"],
                          cwd=REPO, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split("  ")[0] for line in proc.stdout.splitlines()}
    assert {"http", "modbus (100 servers)", "mqtt (mosquitto + publisher)"} <= rows, proc.stdout
    assert "modbus (100 servers): CPU per check" in proc.stdout
    if shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists():
        assert "mqtt (mosquitto + publisher): CPU per check" in proc.stdout, proc.stdout
