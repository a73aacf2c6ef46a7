"""The GUI thread's own cost per bridge poll, in CPU time: load on the machine does not inflate it.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui_poll_cpu.py [--services 5000] [--ticks 60] [--wall]

One process, no sockets, no engine: an in-memory engine (tests/gui/fake_engine.py) whose services
change as a real fleet's do (a quarter of them per 0.25 s tick: a new check, a new latency; one in a
hundred of those also flips between healthy, degraded and failed), under the real MainWindow (offscreen,
shown, one service selected so the detail panel and chart are live; `--wall` in wall mode, `--tray`
with the tray notifier). Per tick it measures `time.thread_time()` around the bridge poll plus the
paint events it causes (`processEvents`), i.e. what the GUI thread spends on one batch of changes.
Elapsed-time lag figures on a shared machine swing with other people's jobs; this one hardly does,
so it is the before/after figure for changes on the GUI side.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import gc  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from common import machine, table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--services", type=int, default=5000)
    p.add_argument("--ticks", type=int, default=60)
    p.add_argument("--changed", type=float, default=0.25, help="share of services changed per tick")
    p.add_argument("--wall", action="store_true", help="the window in wall mode")
    p.add_argument("--tray", action="store_true", help="with the tray notifier")
    p.add_argument("--profile", action="store_true", help="print a cProfile of the measured ticks")
    ns = p.parse_args(argv)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from core.events import ServiceStatus
    from gui.main_window import MainWindow
    from tests.gui.fake_engine import FakeEngine, make_snapshot

    app = QApplication.instance() or QApplication(sys.argv[:1])
    rng = random.Random(7)
    n = ns.services
    racks = max(1, n // 40)
    snaps = {f"dev-{i:05d}": make_snapshot(f"dev-{i:05d}", f"Device {i}", f"site-{i % 5}/rack-{i % racks:03d}")
             for i in range(n)}
    engine = FakeEngine(snaps)
    with tempfile.TemporaryDirectory(prefix="gui-poll-cpu-") as state:
        settings = QSettings(str(Path(state) / "gui.ini"), QSettings.Format.IniFormat)
        window = MainWindow(engine, settings, confirm=lambda _t, _x: True, tray=ns.tray, sound=False)
        window.resize(1440, 900)
        window.show()
        window.bridge.poll()
        app.processEvents()
        window.select_services([next(iter(snaps))])
        if ns.wall:
            window.toggle_wall_mode()
        app.processEvents()
        gc.collect()
        gc.disable()  # the app collects on its own timer; a collection inside one tick is noise here
        ids = list(snaps)
        statuses = (ServiceStatus.HEALTHY, ServiceStatus.DEGRADED, ServiceStatus.UNHEALTHY)
        cpu_ms: list[float] = []
        import cProfile
        import pstats
        profiler = cProfile.Profile() if ns.profile else None
        changed_n = int(n * ns.changed)
        for tick in range(ns.ticks):
            current = engine.snapshots()
            for sid in rng.sample(ids, changed_n):
                s = current[sid]
                kw: dict[str, object] = dict(checks_total=s.checks_total + 1, last_latency_ms=rng.uniform(5, 80),
                                             last_check_wall=s.last_check_wall + 1 if s.last_check_wall else 1.0)
                if rng.random() < 0.01:
                    status = rng.choice(statuses)
                    kw.update(status=status, failed=status is ServiceStatus.UNHEALTHY,
                              consecutive_failures=3 if status is ServiceStatus.UNHEALTHY else 0)
                engine.set_snapshot(dataclasses.replace(s, **kw))
            if profiler is not None and tick == 3:
                profiler.enable()
            t0 = time.thread_time()
            window.bridge.poll()
            app.processEvents()
            if tick >= 3:  # the first ticks fill caches
                cpu_ms.append((time.thread_time() - t0) * 1000.0)
        gc.enable()
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        window.close()
        window.shutdown()
    s = sorted(cpu_ms)
    print(f"# bench/gui_poll_cpu.py — {machine()}")
    print(f"# {n} services, {changed_n} changed per tick, {'wall mode' if ns.wall else 'table'}"
          f"{', tray' if ns.tray else ''}; GUI thread CPU per poll + paint")
    print(table(["measure", "p50", "p90", "max", "n"],
                [["GUI thread CPU per tick (ms)", statistics.median(s), s[int(len(s) * 0.9)], s[-1], len(s)]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
