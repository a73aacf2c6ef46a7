"""Screenshots of the wall at 22, 300 and 2,000 devices (offscreen): docs/wall-22.png, wall-300.png, wall-2000.png.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/wall_screenshots.py

The fleets are built from the GUI tests' fake engine snapshots (tests/gui/fake_engine.py), with a
realistic share of trouble: a few failed devices with open breakers and restarts under way, a few
degraded ones, one in maintenance, one forced open; from 300 devices on, a dead switch with six
devices blocked behind it (one alarm, six grey squares). Grabbed at 1920x1080 (a wall screen).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "gui")]

from PySide6.QtWidgets import QApplication  # noqa: E402

from core.events import BreakerState, HeartbeatStatus, RecoveryState, ServiceStatus  # noqa: E402
from core.snapshot import RecoveryView, ServiceSnapshot  # noqa: E402
from fake_engine import START_WALL, make_breaker, make_snapshot  # noqa: E402
from gui.wall import WallView  # noqa: E402

KINDS = ("PLC", "Drive", "Sensor", "Camera", "Scale", "Valve", "Pump", "HMI")


def fleet(n: int, racks: int) -> dict[str, ServiceSnapshot]:
    """`n` devices over `racks` racks; trouble at fixed, spread-out positions (deterministic)."""
    out: dict[str, ServiceSnapshot] = {}
    per_rack = -(-n // racks)
    for i in range(n):
        rack, slot = divmod(i, per_rack)
        sid = f"dev-{i:04d}"
        name = f"{KINDS[i % len(KINDS)]} {rack + 1:02d}-{slot + 1:02d}"
        out[sid] = make_snapshot(sid, name, f"rack-{rack + 1:02d}")
    trouble = {
        0.13: dict(status=ServiceStatus.UNHEALTHY, failed=True, consecutive_failures=5,
                   breaker=make_breaker(BreakerState.OPEN, reopen_in_s=41.0),
                   recovery=RecoveryView("r1", "restart", RecoveryState.WAITING, 2, 3, START_WALL + 8, "")),
        0.37: dict(status=ServiceStatus.UNHEALTHY, failed=True, consecutive_failures=7,
                   breaker=make_breaker(BreakerState.OPEN, reopen_in_s=12.0)),
        0.52: dict(status=ServiceStatus.DEGRADED, last_latency_ms=1480.0),
        0.61: dict(status=ServiceStatus.UNHEALTHY, consecutive_failures=1),
        0.74: dict(recovery=RecoveryView("r2", "restart", RecoveryState.VERIFYING, 1, 3, None, ""),
                   status=ServiceStatus.HEALTHY),
        0.83: dict(maintenance=True, maintenance_until_wall=START_WALL + 3600),
        0.88: dict(breaker=make_breaker(BreakerState.FORCED_OPEN)),
        0.93: dict(status=ServiceStatus.DEGRADED, breaker=make_breaker(BreakerState.HALF_OPEN,
                                                                        half_open_successes=1)),
        0.97: dict(heartbeat=HeartbeatStatus.MISSED),
    }
    ids = list(out)
    for share, changes in trouble.items():
        sid = ids[min(len(ids) - 1, int(share * len(ids)))]
        snap = out[sid]
        out[sid] = make_snapshot(sid, snap.name, snap.group, **changes)
    if n >= 100:
        # A dead switch and the six devices behind it: one alarm (the switch), six quiet grey squares.
        first = int(0.44 * n)
        switch = ids[first]
        out[switch] = make_snapshot(switch, "Switch 3", out[switch].group, status=ServiceStatus.UNHEALTHY,
                                    failed=True, consecutive_failures=4,
                                    breaker=make_breaker(BreakerState.OPEN, reopen_in_s=33.0))
        for sid in ids[first + 1:first + 7]:
            snap = out[sid]
            out[sid] = dataclasses.replace(
                make_snapshot(sid, snap.name, snap.group, status=ServiceStatus.UNHEALTHY, failed=True,
                              consecutive_failures=3, breaker=make_breaker(BreakerState.OPEN, reopen_in_s=20.0)),
                depends_on=(switch,), blocked_by=switch)
    return out


def main() -> None:
    app = QApplication.instance() or QApplication([])
    fleets = {"22": fleet(22, 3), "300": fleet(300, 12), "2000": fleet(2000, 40)}
    for label, snaps in fleets.items():
        wall = WallView(page_interval_s=0)
        wall.now = lambda: START_WALL
        wall.resize(1920, 1080)
        wall.update_snapshots(snaps)
        wall.set_alert_age(245)
        out = ROOT / "docs" / f"wall-{label}.png"
        wall.grab().save(str(out))
        info = wall.layout_info()
        print(f"{out.name}: {len(snaps)} devices, mode {info.mode}, name {info.font_px} px, "
              f"cells {info.cell_px} px, trouble {info.trouble_shown}/{info.trouble_total}")
    del app


if __name__ == "__main__":
    main()
