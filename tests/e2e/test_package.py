"""The frozen executable in dist/faultwatch/ (built by `make package`): it runs, and fails politely.

These run only when a bundle exists (`pytest -m package` after `make package`); otherwise they are
skipped with the reason, so `make test` on a fresh checkout stays green and fast. The bundle is not
rebuilt here: packaging/build.py builds it and runs the same kind of checks on its own.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from core import __version__

ROOT = Path(__file__).resolve().parents[2]
EXECUTABLE = ROOT / "dist" / "faultwatch" / ("faultwatch.exe" if os.name == "nt" else "faultwatch")
EXAMPLES = sorted((ROOT / "resources" / "examples").glob("*.toml"))

pytestmark = [
    pytest.mark.package,
    pytest.mark.skipif(not EXECUTABLE.is_file(),
                       reason=f"no bundle at {EXECUTABLE.relative_to(ROOT)}: run `make package` first"),
]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "FAULTWATCH_CONFIG")}
    env.update(QT_QPA_PLATFORM="offscreen", FAULTWATCH_STATE_DIR=str(tmp_path / "state"),
               FAULTWATCH_CONFIG_DIR=str(tmp_path / "config"), XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    return env


def _run(tmp_path: Path, *args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # cwd outside the repository: the bundle must find its resources in itself, not in ./resources.
    return subprocess.run([str(EXECUTABLE), *map(str, args)], env=_env(tmp_path), cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout)


def test_version(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"faultwatch {__version__}"


def test_self_test_completes_a_fault_cycle(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--self-test", timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASSED" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_check_config_refuses_a_bad_file_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[fault_detection]\ncheck_interval_seconds = "often"\n', encoding="utf-8")
    proc = _run(tmp_path, "--check-config", bad)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "check_interval_seconds" in lines[0]  # the message names the key path


@pytest.mark.skipif(not EXAMPLES, reason="no example configs in resources/examples/")
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_check_config_accepts_the_shipped_examples(tmp_path: Path, example: Path) -> None:
    proc = _run(tmp_path, "--check-config", example)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_bundle_carries_the_demo_scenario_and_icon() -> None:
    resources = EXECUTABLE.parent / "_internal" / "resources"
    assert (resources / "scenarios" / "demo.toml").is_file()
    assert (resources / "faultwatch.svg").is_file()
