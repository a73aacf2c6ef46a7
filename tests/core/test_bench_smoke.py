"""The benchmark scripts still run: tiny fleets for a few seconds, checking only that they print their
figure lines. Never a timing assertion (CI machines are noisy; the figures live in docs/benchmarks.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"


def _run(*args: str, timeout: float = 110) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


@pytest.mark.slow
def test_throughput_bench_runs() -> None:
    out = _run(str(BENCH / "throughput.py"), "--devices", "20", "--seconds", "2", "--warmup", "1.5",
               "--no-saturation", "--no-uvloop")
    assert "## 20 devices at 1 s" in out
    for client in ("engine", "aiohttp", "httpx", "httpx+aiohttp"):
        assert any(line.startswith(client + " ") for line in out.splitlines()), out
    assert "engine/aiohttp checks/s ratio" in out
    assert "failed" not in out, out


@pytest.mark.slow
def test_soak_bench_runs() -> None:
    out = _run(str(BENCH / "soak.py"), "--minutes", "0.07", "--every", "2", "--devices", "20",
               "--interval", "0.2", "--chaos-every", "1")
    assert "elapsed s" in out and "RSS MB" in out
    assert "<- end of warm-up" in out
    assert "# soak summary: 20 devices" in out
    assert "VERDICT (medians) RSS growth" in out


@pytest.mark.slow
def test_throughput_check_types_bench_runs() -> None:
    out = _run(str(BENCH / "throughput.py"), "--check", "tcp", "--check", "ping", "--devices", "20",
               "--seconds", "2", "--warmup", "1.5")
    assert "## 20 devices at 1 s" in out
    for kind in ("http", "tcp", "ping"):
        assert any(line.startswith(kind + " ") for line in out.splitlines()), out
    assert "on time %" in out and "CPU ms/check" in out
    assert "failed" not in out and "worker exited" not in out, out


@pytest.mark.slow
def test_report_bench_runs() -> None:
    out = _run(str(BENCH / "report_bench.py"), "--devices", "20", "--days", "2", "--repeat", "1")
    assert "generated 20 devices × 2 days" in out
    assert "| 30 d | 20 |" not in out and "| 2 d | 20 |" in out
    assert "fleet over the whole span: availability" in out and "in 2 gaps" in out


def test_journal_degraded_bench_runs() -> None:
    out = _run(str(BENCH / "journal_degraded.py"), "--events", "50", "--held", "100", "2500")
    for line in ("append, healthy", "append, degraded", "a retry while still locked",
                 "write-back of 100 held events", "write-back of 2,500 held events"):
        assert line in out, out


def test_group_by_dependency_bench_runs() -> None:
    out = _run(str(BENCH / "group_by_dependency.py"), "--switches", "3", "--behind", "4", "--repeat", "2")
    assert "## 15 rows" in out and "by dependency:" in out and "flat (by rack):" in out
