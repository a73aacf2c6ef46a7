"""Throughput of the Modbus and MQTT check types (`bench/throughput.py --check modbus|mqtt`).

N targets checked every `--interval` by the real engine, against servers in another process:

- modbus: `--servers` pymodbus servers (gateways) on loopback, the N targets spread over them (unit 1,
  one register each), so each server's one shared connection carries N/servers requests per interval;
- mqtt:   mosquitto (Debian package) with a publisher process sending every one of N topics once per
  interval; each target watches one topic with max_age_seconds = 3 × interval.

Printed per check type, beside the HTTP check at the same N and interval (the sim in its own process):
checks/s, the share of the asked checks done ("on time": ≥ 95 % is the bar), process CPU and CPU
microseconds per check, loop lag, and the share of checks that were not healthy. No assertions; the
figures go to docs/benchmarks.md ("Check types").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
for _p in (str(REPO), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import psutil  # noqa: E402

from common import SimProcess, busy_seconds, machine, run_loop, table  # noqa: E402


# ---------------------------------------------------------------- servers (child processes)

async def _serve_modbus(servers: int) -> None:
    import logging

    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    ports = []
    running = []
    for _ in range(servers):
        device = SimDevice(1, simdata=[SimData(0, count=2000, values=42, datatype=DataType.REGISTERS)])
        server = ModbusTcpServer([device], address=("127.0.0.1", 0))
        await server.serve_forever(background=True)
        running.append(server)
        listener: Any = server.transport
        ports.append(int(listener.sockets[0].getsockname()[1]))
    print("READY " + json.dumps(ports), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in running:
        await server.shutdown()


async def _publish(port: int, topics: int, interval: float) -> None:
    import aiomqtt

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    import logging

    quiet = logging.getLogger("bench.publisher")
    quiet.setLevel(logging.ERROR)  # aiomqtt warns about every batch of qos-0 publishes in flight
    async with aiomqtt.Client("127.0.0.1", port, logger=quiet) as client:
        print("READY", flush=True)
        nxt = loop.time()
        while not stop.is_set():
            # aiomqtt waits for each publish to be written: one at a time, a busy machine cannot
            # send 1,000 a second and the targets go stale for the publisher's sake, not the engine's.
            for first in range(0, topics, 100):
                await asyncio.gather(*(client.publish(f"bench/t{i}", b"42", qos=0)
                                       for i in range(first, min(topics, first + 100))))
            nxt += interval
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, nxt - loop.time()))
            except TimeoutError:
                pass


class Child:
    """A child process that prints READY [json] when it serves."""

    def __init__(self, cmd: list[str]) -> None:
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.ps = psutil.Process(self.proc.pid)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            self.stop()
            raise RuntimeError(f"{cmd[0]} did not start: {line!r}")
        self.data = json.loads(line[5:]) if line[5:].strip() else None

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Mosquitto:
    def __init__(self, tmp: Path) -> None:
        import socket

        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(binary):
            raise RuntimeError("mosquitto not installed (Debian package mosquitto)")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        conf = tmp / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        "max_queued_messages 100000\n", encoding="utf-8")
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen")

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# ---------------------------------------------------------------- the engine (child process)

def config_text(kind: str, n: int, interval: float, target: Any) -> str:
    head = (f"[fault_detection]\ncheck_interval_seconds = {interval!r}\ntimeout_seconds = 2.0\n"
            "[api]\nenabled = false\n")
    lines = [head]
    for i in range(n):
        if kind == "modbus":
            ports = target
            check = (f'{{ type = "modbus", host = "127.0.0.1", port = {ports[i % len(ports)]}, unit = 1, '
                     f'address = {i // len(ports)}, min = 0, max = 100 }}')
        else:
            check = (f'{{ type = "mqtt", broker = "mqtt://127.0.0.1:{target}", topic = "bench/t{i}", '
                     f"max_age_seconds = {3 * interval!r}, equals = 42 }}")
        lines.append(f'[[services]]\nid = "t{i:05d}"\ncheck = {check}\n')
    return "\n".join(lines)


async def _engine(kind: str, n: int, interval: float, seconds: float, warmup: float, target: Any) -> dict[str, Any]:
    from common import CpuMeter, LagProbe

    from core.config import parse_config
    from core.assembly import open_engine
    from core.events import ServiceStatus

    config = parse_config(config_text(kind, n, interval, target), label="bench")
    with tempfile.TemporaryDirectory(prefix="fw-bench-") as tmp:
        engine = open_engine(config, state_dir=tmp)
        await engine.start()
        try:
            lag = LagProbe()
            lag.start()
            await asyncio.sleep(warmup)
            cpu = CpuMeter()
            c0, t0 = engine.stats().checks_total, time.monotonic()
            cpu.start()
            lag.reset()
            print("MEASURE-START", flush=True)
            await asyncio.sleep(seconds)
            c1, t1 = engine.stats().checks_total, time.monotonic()
            cpu_pct = cpu.percent()
            p50, p99, mx = lag.quantiles()
            await lag.stop()
            bad = sum(1 for s in engine.snapshots().values() if s.status is not ServiceStatus.HEALTHY)
        finally:
            await engine.stop()
    return {"checks": c1 - c0, "cps": (c1 - c0) / (t1 - t0), "cpu": cpu_pct, "lag_p50": p50, "lag_p99": p99,
            "lag_max": mx, "not_healthy": bad}


def run_engine(kind: str, n: int, interval: float, seconds: float, warmup: float, target: Any,
               server_cpu: Any) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--devices", str(n),
           "--interval", str(interval), "--seconds", str(seconds), "--warmup", str(warmup),
           "--target", json.dumps(target)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert proc.stdout is not None
    result: dict[str, Any] = {"check": kind}
    s0 = b0 = t0 = 0.0
    for line in proc.stdout:
        if line.startswith("MEASURE-START"):
            s0, b0, t0 = server_cpu(), busy_seconds(), time.monotonic()
        elif line.startswith("RESULT "):
            wall = max(1e-9, time.monotonic() - t0)
            result.update(json.loads(line[7:]))
            result["server_cpu"] = 100.0 * (server_cpu() - s0) / wall
            result["others_cpu"] = max(0.0, 100.0 * (busy_seconds() - b0) / wall - result["server_cpu"] - result["cpu"])
        else:
            print(line, end="", flush=True)
    if proc.wait() != 0 or "cps" not in result:
        result["failed"] = f"worker exited {proc.returncode}"
    return result


def http_baseline(n: int, interval: float, seconds: float, warmup: float) -> dict[str, Any]:
    """The HTTP check at the same N and interval: throughput.py's own engine worker."""
    from throughput import run_worker

    with SimProcess(n) as sim:
        r = run_worker(sim, "engine", n, interval, seconds, warmup)
    r["check"] = "http"
    r["not_healthy"] = r.get("errors")
    r["server_cpu"] = r.get("sim_cpu")
    return r


def row(r: dict[str, Any], n: int, interval: float) -> list[Any]:
    if "failed" in r:
        return [r["check"], r["failed"]] + [None] * 7
    asked = n / interval
    us_per_check = 1e6 * (r["cpu"] / 100.0) / r["cps"] if r["cps"] else float("nan")
    return [r["check"], r["cps"], 100.0 * r["cps"] / asked, r["cpu"], us_per_check,
            f"{r['lag_p50']:.1f} / {r['lag_p99']:.1f} / {r['lag_max']:.0f}", r.get("not_healthy"),
            r.get("server_cpu"), r.get("others_cpu")]


HEADERS = ["check", "checks/s", "on time %", "CPU %", "CPU µs/check", "lag p50/p99/max ms", "not healthy",
           "server CPU %", "others CPU %"]


def compare(kinds: list[str], n: int, interval: float, seconds: float, servers: int,
            with_http: bool = True, warmup: float | None = None) -> list[dict[str, Any]]:
    # Long enough for every target's first checks and every MQTT subscription.
    warmup = warmup if warmup is not None else interval * 3 + 2.0
    print(f"# check types, {time.strftime('%Y-%m-%d %H:%M')}, {machine()}", flush=True)
    print(f"# {n} targets at {interval:g} s (asked {n / interval:,.0f} checks/s), {seconds:g} s measured after "
          f"{warmup:g} s warm-up; servers and engine in separate processes", flush=True)
    results = []
    if with_http:
        results.append(http_baseline(n, interval, seconds, warmup))
    for kind in kinds:
        if kind == "modbus":
            child = Child([sys.executable, str(Path(__file__).resolve()), "--serve-modbus", str(servers)])
            try:
                results.append(run_engine("modbus", n, interval, seconds, warmup, child.data, child.cpu_seconds))
            finally:
                child.stop()
            results[-1]["check"] = f"modbus ({servers} servers)"
        elif kind == "mqtt":
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    broker = Mosquitto(Path(tmp))
                except RuntimeError as exc:
                    results.append({"check": "mqtt", "failed": str(exc)})
                    continue
                pub = Child([sys.executable, str(Path(__file__).resolve()), "--publish", str(broker.port),
                             str(n), str(interval)])
                try:
                    results.append(run_engine("mqtt", n, interval, seconds, warmup, broker.port,
                                              lambda: broker.cpu_seconds() + pub.cpu_seconds()))
                finally:
                    pub.stop()
                    broker.stop()
            results[-1]["check"] = "mqtt (mosquitto + publisher)"
    print(table(HEADERS, [row(r, n, interval) for r in results]), flush=True)
    http = next((r for r in results if r["check"] == "http" and "cps" in r), None)
    for r in results:
        if http is not None and r is not http and "cps" in r and r["cps"]:
            mine = r["cpu"] / r["cps"]
            base = http["cpu"] / http["cps"] if http["cps"] else 0.0
            if base > 0:
                print(f"{r['check']}: CPU per check {mine / base:.2f} × the HTTP check's", flush=True)
            else:
                # A short run (the smoke test measures half a second) can read no CPU time at all.
                print(f"{r['check']}: CPU per check not comparable (the HTTP run used no measurable CPU)",
                      flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="append", choices=("modbus", "mqtt"), help="check type (repeatable)")
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=None, help="seconds before measuring (default 3 intervals + 2)")
    p.add_argument("--servers", type=int, default=100, help="Modbus servers (PLCs) the targets are spread over")
    p.add_argument("--no-http", action="store_true", help="skip the HTTP baseline")
    p.add_argument("--worker", choices=("modbus", "mqtt"), help=argparse.SUPPRESS)
    p.add_argument("--target", help=argparse.SUPPRESS)
    p.add_argument("--serve-modbus", type=int, help=argparse.SUPPRESS)
    p.add_argument("--publish", nargs=3, help=argparse.SUPPRESS)
    ns = p.parse_args(argv)
    if ns.serve_modbus:
        asyncio.run(_serve_modbus(ns.serve_modbus))
        return 0
    if ns.publish:
        asyncio.run(_publish(int(ns.publish[0]), int(ns.publish[1]), float(ns.publish[2])))
        return 0
    if ns.worker:
        result = run_loop(_engine(ns.worker, ns.devices, ns.interval, ns.seconds, ns.warmup, json.loads(ns.target)))
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    compare(ns.check or ["modbus", "mqtt"], ns.devices, ns.interval, ns.seconds, ns.servers, not ns.no_http,
            ns.warmup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
