"""Take screenshots of the real window on a virtual screen (Xvfb): how docs/*.png are made.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots.py [WAIT_S]

Starts `faultwatch --demo` (and `--wall`) as a real process on the X display, waits until devices
have failed and recovered a little, and saves the window (the whole screen for the wall) with a
second Qt process. The detail shot drives the window like a user, with xdotool (Debian package
`xdotool`): Ctrl+F, type a device name, click into the table, Down and Space select the one row
left, clear the filter again; the selection stays and the detail panel and chart show that device.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
DETAIL_DEVICE = "Label printer line 2"  # fails ~20 s into the demo scenario and is being restarted at ~30 s


def xdotool(*args: str) -> str:
    return subprocess.run(["xdotool", *args], check=True, capture_output=True, text=True).stdout


def window_id(timeout_s: float = 20.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        ids = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "^Faultwatch"],
                             capture_output=True, text=True).stdout.split()
        if ids or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if not ids:
        raise RuntimeError("no Faultwatch window on the display")
    return ids[-1]


def window_geometry() -> tuple[int, int, int, int]:
    """(x, y, width, height) of the Faultwatch window."""
    values = dict(line.split("=", 1) for line in xdotool("getwindowgeometry", "--shell", window_id()).split())
    return int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])


def grab(path: Path, rect: tuple[int, int, int, int] | None = None) -> None:
    code = ("import sys\nfrom PySide6.QtWidgets import QApplication\napp = QApplication([])\n"
            "r = [int(v) for v in sys.argv[2:]] or [0, 0, -1, -1]\n"
            "app.primaryScreen().grabWindow(0, *r).save(sys.argv[1])\n")
    subprocess.run([sys.executable, "-c", code, str(path), *(str(v) for v in rect or ())], check=True)


def select_device(name: str) -> None:
    """Select `name` in the service table the way a user would."""
    x, y, w, h = window_geometry()
    xdotool("windowfocus", "--sync", window_id())  # no window manager: nobody else gives it the keyboard
    xdotool("key", "ctrl+f")
    xdotool("type", "--delay", "20", name)
    time.sleep(0.5)
    # Below the one row the filter leaves, still inside the table: focuses the table, selects nothing.
    xdotool("mousemove", str(x + 300), str(y + int(h * 0.45)), "click", "1")
    xdotool("key", "Down", "space")  # the first (only) row becomes current; Space selects it
    time.sleep(0.3)
    xdotool("key", "ctrl+f", "ctrl+a", "BackSpace")  # show every row again; the selection stays
    xdotool("mousemove", str(x + w - 5), str(y + h - 5))  # no hover highlight or tooltip in the shot


def shoot(args: list[str], out: Path, wait_s: float, *, whole_screen: bool = False,
          interact: Callable[[], None] | None = None, settle_s: float = 3.0) -> None:
    with tempfile.TemporaryDirectory() as state:
        env = dict(os.environ, FAULTWATCH_STATE_DIR=state, XDG_CONFIG_HOME=state)
        env.pop("QT_QPA_PLATFORM", None)
        proc = subprocess.Popen([sys.executable, "-m", "gui.launcher", "--demo", *args], cwd=ROOT, env=env)
        try:
            time.sleep(wait_s)
            if interact is not None:
                interact()
                time.sleep(settle_s)  # the chart loads the history and draws a few live points
            grab(out, None if whole_screen else window_geometry())
        finally:
            proc.terminate()
            proc.wait(20)
    print(f"saved {out}")


if __name__ == "__main__":
    wait = float(sys.argv[1]) if len(sys.argv) > 1 else 35.0
    docs = ROOT / "docs"
    shoot([], docs / "screenshot-main.png", wait)
    shoot(["--wall"], docs / "screenshot-wall.png", wait, whole_screen=True)
    shoot([], docs / "screenshot-detail.png", max(0.0, wait - 3.0), interact=lambda: select_device(DETAIL_DEVICE))
