"""docs/screenshot-control.png: the window grouped by dependency, with the Maintenance panel, on Xvfb.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshot_control.py [WAIT_S]

A control-room line on the simulator (core/sim): switch-3 is down and the ten PLCs behind it with it,
a packing station sits in a scheduled maintenance window opened ten minutes ago, and two more windows
are coming (a weekly firmware window for the line, a nightly cron window for the utilities). The real
`faultwatch --config` process runs on the X display; xdotool turns on View → Group by dependency
(Ctrl+Shift+G) and selects the switch like a user (as docs/screenshots.py does), then the window is
grabbed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "docs")]

from core.sim.devices import DeviceSpec  # noqa: E402
from core.sim.server import SimServer  # noqa: E402
from screenshots import grab, select_device, window_geometry, window_id, xdotool  # noqa: E402

# Sticky: a restart does not mend them (the switch's fault is a dead port; the PLCs are fine but unreachable).
DEVICES = [DeviceSpec("switch-3", "down", group="line-1", name="Switch 3", sticky=True)]
DEVICES += [DeviceSpec(f"plc-{i:02d}", "down", group="line-1", name=f"PLC {i:02d}", sticky=True)
            for i in range(1, 11)]
DEVICES += [DeviceSpec("printer", group="packing", name="Label printer"),
            DeviceSpec("scale", group="packing", name="Checkweigher"),
            DeviceSpec("camera", "slow", {"delay_ms": 900.0}, group="packing", name="Vision camera"),
            DeviceSpec("ups", group="utilities", name="UPS"),
            DeviceSpec("chiller", group="utilities", name="Chiller"),
            DeviceSpec("compressor", group="utilities", name="Compressor")]


def config(server: SimServer, now: datetime) -> str:
    lines = ["[fault_detection]", "check_interval_seconds = 1", "timeout_seconds = 1.0",
             "slow_response_threshold_ms = 600", "max_failures = 2",
             "[circuit_breaker]", "failure_threshold = 2", "timeout_seconds = 20",
             "[recovery]", "restart_base_delay_seconds = 5",
             "[alerts]", "unhealthy_for_seconds = 3", "[api]", 'listen = "127.0.0.1:0"', ""]
    for spec in DEVICES:
        base = server.base_url(spec.id)
        lines += ["[[services]]", f'id = "{spec.id}"', f'name = "{spec.display_name}"', f'endpoint = "{base}"',
                  f'group = "{spec.group}"', f'restart = {{ http = {{ method = "POST", url = "{base}/restart" }} }}']
        if spec.id.startswith("plc-"):
            lines.append('depends_on = ["switch-3"]')
        lines.append("")
    opened = now - timedelta(minutes=10)
    firmware = now + timedelta(hours=2, minutes=15)
    lines += ["[[maintenance]]", 'name = "packing calibration"', 'groups = ["packing"]',
              f'start = "{opened:%Y-%m-%d %H:%M}"', "duration_minutes = 45", 'time_zone = "UTC"', "",
              "[[maintenance]]", 'name = "line-1 firmware"', 'services = ["switch-3"]', 'groups = ["line-1"]',
              f'start = "{firmware:%H:%M}"', 'repeat = "weekly"', f'days = ["{firmware.strftime("%a").lower()}"]',
              "duration_minutes = 90", 'time_zone = "UTC"', "",
              "[[maintenance]]", 'name = "utilities night check"', 'groups = ["utilities"]', 'repeat = "cron"',
              'cron = "30 3 * * *"', "duration_minutes = 20", 'time_zone = "UTC"', ""]
    return "\n".join(lines)


class SimThread:
    """The simulated devices on their own loop, for as long as the shot takes."""

    def __init__(self) -> None:
        self.server = SimServer(DEVICES)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> SimServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def main(wait_s: float) -> None:
    out = ROOT / "docs" / "screenshot-control.png"
    with SimThread() as server, tempfile.TemporaryDirectory() as state:
        path = Path(state) / "line.toml"
        path.write_text(config(server, datetime.now(timezone.utc)), encoding="utf-8")
        env = dict(os.environ, FAULTWATCH_STATE_DIR=state, XDG_CONFIG_HOME=state, TZ="UTC")
        env.pop("QT_QPA_PLATFORM", None)
        proc = subprocess.Popen([sys.executable, "-m", "gui.launcher", "--config", str(path)], cwd=ROOT, env=env)
        try:
            time.sleep(wait_s)
            xdotool("windowfocus", "--sync", window_id())
            xdotool("key", "ctrl+shift+g")  # View → Group by dependency
            time.sleep(0.5)
            select_device("Switch 3")
            time.sleep(3.0)
            grab(out, window_geometry())
        finally:
            proc.terminate()
            proc.wait(20)
    print(f"saved {out}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 25.0)
