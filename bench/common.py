"""Shared helpers for the benchmarks: the simulated fleet in its own process, CPU and loop-lag meters.

The sim runs in a separate process so its CPU is not charged to the client being measured (and, on a
2-core machine, so server and client each get a core). Two ways to start it:

- `SimProcess(devices=N)`: `python -m core.sim --devices N --all-healthy` (the project's own CLI);
- `SimProcess(devices=N, factory="soak:soak_fleet")`: `python bench/common.py serve ...`, which serves
  the specs returned by a `module:function(n, seed)` from bench/ (for fleets the CLI cannot describe).

Either way `url` is the server's base URL once `start()` returned, and the fleet's specs are rebuilt
in the client process from the same deterministic recipe (`make_fleet` / the factory).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import math
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for _p in (str(REPO), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import psutil  # noqa: E402

from core.sim.devices import DeviceSpec, make_fleet  # noqa: E402

_URL_RE = re.compile(r"at (http://[^/\s]+)/dev/")


# ---------------------------------------------------------------- the sim in a subprocess

def healthy_fleet(n: int, seed: int = 0) -> list[DeviceSpec]:
    """The fleet `python -m core.sim --devices n --all-healthy` serves (same ids, same order)."""
    return make_fleet(n, seed=seed, mix={"healthy": 1.0})


def load_factory(name: str) -> Callable[[int, int], list[DeviceSpec]]:
    module, _, func = name.partition(":")
    return getattr(importlib.import_module(module), func)  # type: ignore[no-any-return]


class SimProcess:
    """The simulated fleet in a child process.

    Attributes:
        url: http://127.0.0.1:PORT once started.
        proc: the child process.
    """

    def __init__(self, devices: int, factory: str | None = None, seed: int = 0) -> None:
        self.devices = devices
        self.factory = factory
        self.seed = seed
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self._ps: psutil.Process | None = None

    def specs(self) -> list[DeviceSpec]:
        if self.factory is None:
            return healthy_fleet(self.devices, self.seed)
        return load_factory(self.factory)(self.devices, self.seed)

    def start(self, timeout_s: float = 30.0) -> None:
        if self.factory is None:
            cmd = [sys.executable, "-m", "core.sim", "--devices", str(self.devices), "--all-healthy",
                   "--seed", str(self.seed), "--port", "0"]
        else:
            cmd = [sys.executable, str(BENCH / "common.py"), "serve", "--factory", self.factory,
                   "--devices", str(self.devices), "--seed", str(self.seed)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=None, text=True, env=env)
        self._ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + timeout_s
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = _URL_RE.search(line)
            if m:
                self.url = m.group(1)
                return
        self.stop()
        raise RuntimeError(f"sim did not start: {' '.join(cmd)}")

    def cpu_seconds(self) -> float:
        assert self._ps is not None
        t = self._ps.cpu_times()
        return float(t.user + t.system)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> SimProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FleetView:
    """Stands in for a SimServer where `fleet_config_toml` needs one (url, base_url, devices[].spec)."""

    @dataclass(frozen=True)
    class _Dev:
        spec: DeviceSpec

    def __init__(self, url: str, specs: Iterable[DeviceSpec]) -> None:
        self.url = url.rstrip("/")
        self.devices = [self._Dev(s) for s in specs]

    def base_url(self, device_id: str) -> str:
        return f"{self.url}/dev/{device_id}"


async def _serve(factory: str, devices: int, seed: int) -> None:
    from core.sim.server import SimServer

    specs = load_factory(factory)(devices, seed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with SimServer(specs) as server:
        print(f"sim: {len(specs)} devices at {server.url}/dev/<id>", flush=True)
        await stop.wait()


# ---------------------------------------------------------------- meters

class CpuMeter:
    """CPU time of a process over a window, as % of one core (200 % = both cores of a 2-core box)."""

    def __init__(self, pid: int | None = None) -> None:
        self._ps = psutil.Process(pid)
        self._cpu0 = 0.0
        self._t0 = 0.0

    def _cpu(self) -> float:
        t = self._ps.cpu_times()
        return float(t.user + t.system)

    def start(self) -> None:
        self._cpu0, self._t0 = self._cpu(), time.monotonic()

    def percent(self) -> float:
        wall = time.monotonic() - self._t0
        return 100.0 * (self._cpu() - self._cpu0) / wall if wall > 0 else 0.0


class LagProbe:
    """How late a 10 ms asyncio timer fires on the running loop (the loop's responsiveness)."""

    def __init__(self, period_s: float = 0.01) -> None:
        self.period_s = period_s
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="bench:lag-probe")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(self.period_s)
            self.samples.append(max(0.0, (loop.time() - t - self.period_s) * 1000.0))

    def reset(self) -> None:
        self.samples = []

    def quantiles(self) -> tuple[float, float, float]:
        """p50, p99, max in ms."""
        s = sorted(self.samples)
        if not s:
            return 0.0, 0.0, 0.0
        return s[len(s) // 2], s[min(len(s) - 1, int(len(s) * 0.99))], s[-1]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (all cores, all processes)."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
                 + getattr(t, "steal", 0.0))


def rss_mb(pid: int | None = None) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 1e6


def num_fds(pid: int | None = None) -> int:
    return int(psutil.Process(pid).num_fds())


def socket_fds() -> int | None:
    """Open fds of this process that are sockets (Linux /proc; None elsewhere)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    n = 0
    for name in names:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                n += 1
    return n


def file_size(path: str | os.PathLike[str], suffixes: Sequence[str] = ("", "-wal", "-shm")) -> int:
    total = 0
    for suffix in suffixes:
        with contextlib.suppress(OSError):
            total += os.path.getsize(f"{os.fspath(path)}{suffix}")
    return total


def machine() -> str:
    import platform
    freq = psutil.cpu_freq()
    mhz = f", {freq.max or freq.current:.0f} MHz" if freq else ""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"{model or platform.processor() or platform.machine()}{mhz}; {psutil.cpu_count()} logical CPUs; "
            f"{psutil.virtual_memory().total / 2**30:.1f} GiB; Python {platform.python_version()}; "
            f"{platform.system()} {platform.release()}")


def run_loop(main: Any, loop: str = "asyncio") -> Any:
    """asyncio.run(main), or on a uvloop loop (`loop="uvloop"`)."""
    if loop == "uvloop":
        import uvloop
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)


def have_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A compact left/right-aligned text table (numbers right-aligned)."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [all(isinstance(r[i], (int, float)) or r[i] in (None, "") for r in rows) for i in range(len(headers))]
    def line(vals: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(vals, widths, numeric)).rstrip()
    out = [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="bench helpers; `serve` runs a fleet from a factory")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--factory", required=True, help="module:function(n, seed) -> list[DeviceSpec]")
    s.add_argument("--devices", type=int, default=100)
    s.add_argument("--seed", type=int, default=0)
    ns = p.parse_args(argv)
    if ns.cmd == "serve":
        asyncio.run(_serve(ns.factory, ns.devices, ns.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
