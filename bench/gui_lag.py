"""GUI responsiveness with a large fleet: the real window over the real engine, offscreen.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui_lag.py [--devices 1000] [--seconds 30]

Runs `EngineThread.for_demo(devices=N)` (a generated fleet checked every second, served by the
simulated rack on the engine's worker loop, so its CPU is part of this process) under the real
`MainWindow` on a qasync loop, with one service selected so the detail panel and the latency chart
are live. After a warm-up it measures:

- event-loop lag: how late a 10 ms asyncio timer on the GUI loop fires (p50 / p99 / max);
- the table-model update per bridge tick (`ServiceTableModel.update_snapshots`) and the whole poll
  (drain + diff + every slot the bridge's signals reach);
- the chart redraw (`LatencyChart.last_redraw_ms`, data prep + setData, per timer redraw) and, at the
  end, a few redraws with a synchronous paint;
- a full window repaint (`window.grab()`, a few samples at the end);
- engine checks/s (`engine.stats()`), the engine loop's own lag, and the process CPU (% of one core).

`--engines N` runs the fleet as N headless engine processes instead (`faultwatch --headless
--demo-devices devices/N`, each with its own simulated rack) and the console attaches to all of them
(core.multi.MultiEngine over core.attach.AttachThread): the console's process then only follows the
streams. `--child` runs the console's own engine as the app does by default (core.child.ChildEngine:
a supervised `faultwatch --headless` child, attached); without it and without `--engines`, the engine
runs on a worker thread of the console process (`faultwatch --engine thread`). The bench mirrors the
app otherwise too: the engine inside a MultiEngine, the GuiThreadCollector installed, and it prints
the CPU the rest of the machine used meanwhile (the conditions of the run).

Prints a compact table; asserts nothing (the targets: p99 lag under 16 ms at 1,000 local devices, under 50 ms at 5,000 over 5 engines). `--profile`
adds a cProfile of the GUI thread over the measured window.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import cProfile  # noqa: E402
import gc  # noqa: E402
import io  # noqa: E402
import logging  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CpuMeter, LagProbe, machine, table  # noqa: E402


def _timed(samples: list[float], fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            samples.append((time.perf_counter() - t) * 1000.0)
    return wrapper


def _q(samples: list[float]) -> tuple[float | None, float | None, float | None]:
    """median, p99, max (None when there are no samples)."""
    if not samples:
        return None, None, None
    s = sorted(samples)
    return statistics.median(s), s[min(len(s) - 1, int(len(s) * 0.99))], s[-1]


def _start_engines(n: int, devices: int, state_dir: str, synthetic: bool = False,
                   nice: int = 0) -> tuple[list[Any], list[str]]:
    """n headless demo engines (devices/n each) as child processes; returns (processes, URLs)."""
    import socket
    import subprocess
    import threading

    procs: list[Any] = []
    urls: list[str] = []
    repo = Path(__file__).resolve().parents[1]
    for i in range(n):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = dict(os.environ, FAULTWATCH_TOKEN="bench-token", PYTHONPATH=str(repo))
        if synthetic:
            cmd = [sys.executable, str(repo / "bench" / "stream_source.py"), "--devices", str(devices // n),
                   "--port", str(port), "--site", f"site-{i}"]
            marker = "stream source"
        else:
            cmd = [sys.executable, "-m", "core.cli", "--headless", "--demo-devices", str(devices // n), "--listen",
                   f"127.0.0.1:{port}", "--state-dir", str(Path(state_dir) / f"engine-{i}"), "--events", os.devnull]
            marker = "running headless"
        if nice:
            cmd = ["nice", "-n", str(nice), *cmd]
        proc = subprocess.Popen(cmd,
                                cwd=repo, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        ready = threading.Event()

        def read(stream: Any = proc.stderr, ready: threading.Event = ready, marker: str = marker) -> None:
            for line in stream:
                if marker in line:
                    ready.set()
            ready.set()
        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60) or proc.poll() is not None:
            raise RuntimeError(f"engine {i} did not start")
        procs.append(proc)
        urls.append(f"http://127.0.0.1:{port}")
    return procs, urls


async def run(devices: int, warmup_s: float, seconds: float, profile: bool, state_dir: str,
              engines: int = 0, synthetic: bool = False, child: bool = False,
              engine_nice: int | None = None) -> list[list[Any]]:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from core.runner import EngineThread
    from gui.main_window import MainWindow
    from gui.service_model import SERVICE_ID_ROLE

    app = QApplication.instance()
    children: list[Any] = []
    t0 = time.perf_counter()
    if engines:
        from core.multi import MultiEngine

        children, urls = await asyncio.get_running_loop().run_in_executor(
            None, _start_engines, engines, devices, state_dir, synthetic, engine_nice or 0)
        engine: Any = MultiEngine()
        for url in urls:
            engine.attach(url, "bench-token")
    elif child:
        from core.child import ChildEngine
        from core.multi import MultiEngine

        # As gui.app.run_gui does by default: the own engine in a supervised child process.
        engine = MultiEngine(ChildEngine(demo_devices=devices, state_dir=state_dir,
                                         **({} if engine_nice is None else {"nice": engine_nice})))
    else:
        from core.multi import MultiEngine

        # As gui.app.run_gui does with --engine thread: the own engine wrapped so attached engines can join it.
        engine = MultiEngine(EngineThread.for_demo(state_dir=state_dir, devices=devices))
    await asyncio.get_running_loop().run_in_executor(None, engine.start)
    start_s = time.perf_counter() - t0
    settings = QSettings(str(Path(state_dir) / "gui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(engine, settings, confirm=lambda _t, _x: True, tray=False, sound=False)
    window.resize(1440, 900)
    window.show()
    window.start()

    model_ms: list[float] = []
    poll_ms: list[float] = []
    chart_ms: list[float] = []
    window.model.update_snapshots = _timed(model_ms, window.model.update_snapshots)  # type: ignore[method-assign]
    window.bridge.poll = _timed(poll_ms, window.bridge.poll)  # type: ignore[method-assign]
    original_redraw = window.chart.redraw_now

    def redraw(paint: bool = False) -> float:
        ms = original_redraw(paint)
        chart_ms.append(window.chart.last_redraw_ms)
        return ms
    window.chart.redraw_now = redraw  # type: ignore[method-assign]

    probe = LagProbe(0.01)
    probe.start()
    # Wait for the table to fill, then select a device so detail panel and chart are live.
    deadline = time.monotonic() + 30
    while window.model.rowCount() < devices and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    rows = window.model.rowCount()
    first = window.proxy.index(0, 0).data(SERVICE_ID_ROLE)
    window.select_services([str(first)])
    await asyncio.sleep(warmup_s)

    gc_ms: list[float] = []
    gc_start = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_start[0] = time.perf_counter()
        elif info.get("generation") == 2:
            gc_ms.append((time.perf_counter() - gc_start[0]) * 1000.0)

    probe.reset()
    for samples in (model_ms, poll_ms, chart_ms):
        samples.clear()
    gc.callbacks.append(on_gc)
    cpu = CpuMeter()
    cpu.start()
    import psutil

    # Everything else on the machine (other engines, other people's jobs): the conditions of the run.
    pids = [c.pid for c in children] + ([engine.local.pid] if child and engine.local.pid else [])
    kids = [psutil.Process(pid) for pid in pids]
    kid_cpu0 = sum(sum(k.cpu_times()[:2]) for k in kids)
    psutil.cpu_percent(None)
    load0 = os.getloadavg()[0]
    checks0 = engine.stats().checks_total
    engine_lag: list[float] = []
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    t_start = time.monotonic()
    while time.monotonic() - t_start < seconds:
        await asyncio.sleep(1.0)
        engine_lag.append(engine.stats().loop_lag_ms)
    elapsed = time.monotonic() - t_start
    if profiler is not None:
        profiler.disable()
    gc.callbacks.remove(on_gc)
    cpu_pct = cpu.percent()
    machine_pct = psutil.cpu_percent(None) * (psutil.cpu_count() or 1)
    kids_pct = 100.0 * (sum(sum(k.cpu_times()[:2]) for k in kids) - kid_cpu0) / elapsed if kids else 0.0
    others_pct = max(0.0, machine_pct - cpu_pct - kids_pct)
    load1 = os.getloadavg()[0]
    checks = engine.stats().checks_total - checks0
    lag = probe.quantiles()
    lag_samples = len(probe.samples)
    await probe.stop()

    # Synchronous paints at the end (outside the measured window: they block the loop on purpose).
    painted: list[float] = []
    for _ in range(5):
        painted.append(window.chart.redraw_now(paint=True))
        await asyncio.sleep(0.05)
    grabs: list[float] = []
    for _ in range(5):
        t = time.perf_counter()
        window.grab()
        grabs.append((time.perf_counter() - t) * 1000.0)
        await asyncio.sleep(0.05)
    chart_points = len(window.chart.curve_data()[0])

    window.close()
    window.shutdown()
    await asyncio.get_running_loop().run_in_executor(None, engine.stop)
    for child in children:
        child.terminate()
        child.wait(30)
    del app

    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
        print(out.getvalue())

    def row(name: str, samples: list[float], note: str = "") -> list[Any]:
        med, p99, mx = _q(samples)
        return [name, med, p99, mx, len(samples), note]

    return [
        ["engine start (s)", start_s, None, None, 1, f"{devices} devices, table rows {rows}"],
        ["GUI loop lag (ms)", lag[0], lag[1], lag[2], lag_samples, "target p99 < 16 ms (1,000 local), < 50 ms (5,000 over 5)"],
        row("bridge poll, all slots (ms)", poll_ms, "every 150 ms"),
        row("table model update (ms)", model_ms, "update_snapshots per tick"),
        row("chart redraw (ms)", chart_ms, f"timer redraws, {chart_points} points"),
        row("chart redraw + paint (ms)", painted, "redraw_now(paint=True)"),
        row("window repaint (ms)", grabs, "window.grab()"),
        row("engine loop lag p99 (ms)", engine_lag, "engine.stats(), 1 s samples"),
        row("full GC pause (ms)", gc_ms, "generation 2, any thread"),
        ["engine checks/s", checks / elapsed, None, None, 1, f"{checks} checks in {elapsed:.0f} s"],
        ["checks on time (%)", 100.0 * checks / (elapsed * devices), None, None, 1,
         f"of {devices} devices at 1 s"],
        ["process CPU (% of a core)", cpu_pct, None, None, 1,
         f"console only; {len(pids)} engine processes apart" if pids else "GUI + engine + simulated rack"],
        ["engine processes CPU (%)", kids_pct, None, None, 1, f"{len(pids)} children"],
        ["rest of the machine CPU (%)", others_pct, None, None, 1,
         f"of {100 * (psutil.cpu_count() or 1)} %; load avg {load0:.1f} → {load1:.1f}"],
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=30.0, help="measured window (after the warm-up)")
    p.add_argument("--warmup", type=float, default=10.0)
    p.add_argument("--engines", type=int, default=0, metavar="N",
                   help="run the fleet in N engine processes and attach to them (0: worker thread)")
    p.add_argument("--synthetic", action="store_true",
                   help="with --engines: stand-in engines (bench/stream_source.py) that send what a busy engine "
                        "sends, without checking anything (the console's cost alone)")
    p.add_argument("--child", action="store_true",
                   help="the console's own engine as the app runs it by default (core.child.ChildEngine, "
                        "a supervised child process); without it and without --engines, a worker thread")
    p.add_argument("--engine-nice", type=int, metavar="N",
                   help="niceness added to the engine processes (--engines: default 0, as if they ran on their "
                        "own machines; --child: default core.child.ENGINE_NICE, as the app runs it)")
    p.add_argument("--no-gc-policy", action="store_true",
                   help="leave Python's automatic garbage collection on (the app installs GuiThreadCollector)")
    p.add_argument("--profile", action="store_true", help="cProfile the GUI thread over the measured window")
    ns = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)  # closing the window must not end the loop before we report
    with tempfile.TemporaryDirectory(prefix="gui-lag-") as state:
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        collector = None
        if not ns.no_gc_policy:
            from gui.gc_policy import GuiThreadCollector

            collector = GuiThreadCollector()  # as gui.app.run_window installs it
        with loop:
            rows = loop.run_until_complete(run(ns.devices, ns.warmup, ns.seconds, ns.profile, state, ns.engines,
                                                   ns.synthetic, ns.child, ns.engine_nice))
        if collector is not None:
            collector.stop()
    print(f"# bench/gui_lag.py — {machine()}")
    where = (f"{ns.engines} attached {'stand-in (synthetic) ' if ns.synthetic else ''}engine processes"
             if ns.engines else "engine in a child process (ChildEngine)" if ns.child else "engine on a worker thread")
    if ns.engines or ns.child:
        from core.child import ENGINE_NICE

        nice = ns.engine_nice if ns.engine_nice is not None else (ENGINE_NICE if ns.child else 0)
        where += f", engines at nice +{nice}"
    print(f"# {where}; {'automatic gc' if ns.no_gc_policy else 'GuiThreadCollector as in the app'}")
    print(f"# platform {os.environ.get('QT_QPA_PLATFORM')}, {ns.devices} devices at 1 s, warm-up {ns.warmup:.0f} s, "
          f"measured {ns.seconds:.0f} s")
    print(table(["measure", "p50", "p99", "max", "n", "note"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
