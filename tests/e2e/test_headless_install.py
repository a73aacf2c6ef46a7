"""An installation without the `gui` extra: the headless engine runs without Qt, a window is one line.

Simulated in a subprocess by making the GUI's packages unimportable (a None entry in sys.modules is
what Python itself uses for "known missing"), so this runs in the shared development venv.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GUI_PACKAGES = ("PySide6", "shiboken6", "qasync", "pyqtgraph", "numpy")

pytestmark = pytest.mark.slow


def _run(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAULTWATCH_", "QT_"))}
    env.update(FAULTWATCH_STATE_DIR=str(tmp_path / "state"), FAULTWATCH_CONFIG_DIR=str(tmp_path / "config"),
               PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)


def test_headless_demo_never_imports_the_gui_packages(tmp_path: Path) -> None:
    proc = _run(tmp_path, f"""
import sys
from gui.launcher import main
code = main(["--headless", "--demo", "--duration", "1"])
print(sorted(m for m in sys.modules if m.split(".")[0] in {GUI_PACKAGES!r}))
sys.exit(code)
""")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_window_without_the_gui_extra_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = _run(tmp_path, f"""
import sys
for name in {GUI_PACKAGES!r}:
    sys.modules[name] = None  # as if never installed
from gui.launcher import main
sys.exit(main(["--demo"]))
""".replace("import sys\n", "import os, sys\nos.environ['QT_QPA_PLATFORM'] = 'offscreen'\n", 1))
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "install faultwatch[gui]" in lines[0] and "--headless" in lines[0]
