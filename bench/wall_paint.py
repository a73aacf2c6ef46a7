"""Cost of one wall repaint (offscreen, 1920x1080) at 22, 300, 1,000 and 2,000 devices.

The wall repaints on every snapshot refresh (10 Hz), so a repaint must stay well under 100 ms.
Prints the median and worst of 20 `grab()`s per size after a warm-up; the fleets are the screenshot
fleets of docs/wall_screenshots.py (9 devices in trouble). No assertions.
Run: `QT_QPA_PLATFORM=offscreen .venv/bin/python bench/wall_paint.py`
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "docs")]

from PySide6.QtWidgets import QApplication  # noqa: E402

from gui.wall import WallView  # noqa: E402
from wall_screenshots import fleet  # noqa: E402

ROUNDS = 20


def main() -> None:
    app = QApplication.instance() or QApplication([])
    print(f"{'devices':>8} {'mode':>9} {'median ms':>10} {'worst ms':>9}")
    for n, racks in ((22, 3), (300, 12), (1000, 25), (2000, 40)):
        wall = WallView()
        wall.resize(1920, 1080)
        wall.update_snapshots(fleet(n, racks))
        wall.grab()  # layout + warm-up
        times = []
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            wall.grab()
            times.append((time.perf_counter() - t0) * 1000)
        print(f"{n:>8} {wall.layout_info().mode:>9} {statistics.median(times):>10.1f} {max(times):>9.1f}")
    del app


if __name__ == "__main__":
    main()
