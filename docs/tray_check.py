"""Check the tray on a real X display: icon in a real tray host, the notice balloon, a real click on it.

    apt-get install -y xvfb xdotool trayer
    .venv/bin/python docs/tray_check.py

Starts Xvfb and `trayer` (a freedesktop system-tray host), opens the console on the GUI tests' fake
engine with its tray icon, raises one critical alert while the window is minimised, saves the screen
(to $TMPDIR/faultwatch-tray-screen.png; docs/tray-notice.png is a crop of it), clicks the notice with xdotool and prints what happened as
JSON: whether the tray was available, the icon visible, the notice shown, and the device selected.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DISPLAY = ":77"


def child() -> None:
    sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "gui")]
    import qasync
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication, QSystemTrayIcon

    from core.events import ServiceStatus
    from fake_engine import FakeEngine
    from gui.main_window import MainWindow

    app = QApplication([])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    engine = FakeEngine()
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    w = MainWindow(engine, settings, now=engine.now, tray=True, sound=False)
    w.resize(1200, 800)
    w.show()
    out: dict[str, object] = {}
    done = asyncio.Event()

    def raise_alert() -> None:
        assert w.tray is not None
        out["tray_available"] = QSystemTrayIcon.isSystemTrayAvailable()
        out["icon_visible"] = w.tray.icon.isVisible()
        sid = sorted(engine.snapshots())[5]
        out["device"] = sid
        engine.update(sid, status=ServiceStatus.UNHEALTHY, failed=True)
        engine.add_alert(f"unhealthy:{sid}", sid, message="unhealthy for 30 s")
        w.showMinimized()
        w.bridge.poll()
        out["icon"] = [w.tray.indicator.role, w.tray.indicator.shape]
        out["tooltip"] = w.tray.icon.toolTip()
        out["notice"] = list(w.tray.last_notice or ())
        QTimer.singleShot(1500, click_notice)

    def click_notice() -> None:
        grab = "import sys\nfrom PySide6.QtWidgets import QApplication\napp = QApplication([])\n" \
               "app.primaryScreen().grabWindow(0).save(sys.argv[1])\n"
        subprocess.run([sys.executable, "-c", grab, str(Path(tempfile.gettempdir()) / "faultwatch-tray-screen.png")], check=True)
        balloons = [t for t in app.topLevelWidgets() if t.isVisible() and t.metaObject().className() == "QBalloonTip"]
        out["notice_shown"] = bool(balloons)
        if balloons:
            g = balloons[0].geometry()
            subprocess.run(["xdotool", "mousemove", str(g.center().x()), str(g.center().y()), "click", "1"], check=True)
        QTimer.singleShot(1000, report)

    def report() -> None:
        out["window_minimized_after_click"] = w.isMinimized()
        out["selected_after_click"] = w.selected_ids()
        print(json.dumps(out))
        w.shutdown()
        done.set()

    QTimer.singleShot(1500, raise_alert)
    with loop:
        loop.run_until_complete(done.wait())


def main() -> None:
    env = dict(os.environ, DISPLAY=DISPLAY, QT_QPA_PLATFORM="xcb")
    xvfb = subprocess.Popen(["Xvfb", DISPLAY, "-screen", "0", "1600x1000x24"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    tray = subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--widthtype", "request",
                             "--height", "40", "--transparent", "false"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    try:
        subprocess.run([sys.executable, __file__, "--child"], env=env, check=True, timeout=60)
    finally:
        tray.terminate()
        xvfb.terminate()
        tray.wait()
        xvfb.wait()


if __name__ == "__main__":
    child() if sys.argv[1:] == ["--child"] else main()
