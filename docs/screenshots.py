"""Take screenshots of the real window on a virtual screen (Xvfb): how docs/*.png are made.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots.py

Starts `faultwatch --demo` (and `--wall`) as a real process on the X display, waits until devices
have failed and recovered a little, and saves the whole screen with a second Qt process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def grab(path: Path) -> None:
    code = ("import sys\nfrom PySide6.QtWidgets import QApplication\napp = QApplication([])\n"
            "app.primaryScreen().grabWindow(0).save(sys.argv[1])\n")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)


def shoot(args: list[str], out: Path, wait_s: float) -> None:
    with tempfile.TemporaryDirectory() as state:
        env = dict(os.environ, FAULTWATCH_STATE_DIR=state, XDG_CONFIG_HOME=state)
        env.pop("QT_QPA_PLATFORM", None)
        proc = subprocess.Popen([sys.executable, "-m", "core.cli", "--demo", *args], cwd=ROOT, env=env)
        try:
            time.sleep(wait_s)
            grab(out)
        finally:
            proc.terminate()
            proc.wait(20)
    print(f"saved {out}")


if __name__ == "__main__":
    wait = float(sys.argv[1]) if len(sys.argv) > 1 else 35.0
    shoot([], ROOT / "docs" / "screenshot-main.png", wait)
    shoot(["--wall"], ROOT / "docs" / "screenshot-wall.png", wait)
