"""CPU cost of re-sorting the service table grouped by dependency, against the flat (rack) order.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/group_by_dependency.py [--switches 50] [--behind 19]

A fleet of switches with devices behind each (50 × 20 = 1,000 rows by default), in the real window
on the GUI tests' in-memory engine. The window re-sorts at most every 2 s (gui/main_window.py
RESORT_INTERVAL_S); the figure is CPU time per re-sort (process time, not wall time: the machine may
be shared).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "gui")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--switches", type=int, default=50)
    p.add_argument("--behind", type=int, default=19, help="devices behind each switch")
    p.add_argument("--repeat", type=int, default=20)
    ns = p.parse_args()

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from fake_engine import FakeEngine, make_snapshot
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    snaps = {}
    for s in range(ns.switches):
        snaps[f"sw-{s}"] = make_snapshot(f"sw-{s}", f"Switch {s}", f"rack-{s % 10}")
        for c in range(ns.behind):
            sid = f"d-{s}-{c}"
            snaps[sid] = make_snapshot(sid, f"Device {s}-{c}", f"rack-{s % 10}", depends_on=(f"sw-{s}",))
    engine = FakeEngine(snaps)
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "bench.ini"), QSettings.Format.IniFormat)
        window = MainWindow(engine, settings, now=engine.now, tray=False, sound=False)
        window.bridge.poll()
        print(f"## {window.proxy.rowCount()} rows, {ns.switches} switches with {ns.behind} devices behind each")
        for grouped in (False, True):
            if grouped:
                window.named_actions["action_group_by_dependency"].trigger()
            start = time.process_time()
            for _ in range(ns.repeat):
                window.proxy.resort()
            ms = 1000 * (time.process_time() - start) / ns.repeat
            print(f"{'by dependency' if grouped else 'flat (by rack)'}: {ms:.1f} ms CPU per re-sort")
        window.shutdown()
    del app


if __name__ == "__main__":
    main()
