"""Health-check throughput: the Faultwatch engine against a plain aiohttp loop (and httpx, for reference).

N simulated devices are served by `python -m core.sim` in a separate process; each client variant runs
in its own fresh worker process (so CPU, memory and pools never carry over), checks every device once
per `--interval`, and is measured for `--seconds` after a warm-up. For each N it prints:

- engine          the real core.engine.Engine (fleet config from fleet_config_toml, journal in a temp
                  dir, no API listener); checks counted by engine.stats().checks_total
- engine+uvloop   the same on a uvloop loop (if uvloop is installed; the engine does not depend on it)
- aiohttp         N coroutines, one shared ClientSession (pool 512, like core.probe.make_session),
                  GET .../health and read the body, every interval; nothing else
- httpx           httpx.AsyncClient, default (httpcore) transport, pool 512
- httpx+aiohttp   httpx.AsyncClient over httpx_aiohttp.AiohttpTransport, pool 512

with checks/s, process CPU (% of one core), checks per CPU-second, loop lag (how late a 10 ms timer
fires: p50/p99/max), the engine's own loop_lag_ms p99 and the sim's CPU. Then the saturation runs
(default 1,000 devices at 0.1 s: 10,000 checks/s asked for) give the most each can do, and the
engine/aiohttp ratios. No assertions; see bench/README.md and docs/benchmarks.md for the figures.

    .venv/bin/python bench/throughput.py                  # sweep 100, 1000, 2000 + saturation
    .venv/bin/python bench/throughput.py --devices 1000   # one size
    .venv/bin/python bench/throughput.py --profile --devices 1000 --interval 0.1 --seconds 5
    .venv/bin/python bench/throughput.py --check tcp --check ping   # other check types vs http
    .venv/bin/python bench/throughput.py --check modbus --check mqtt   # (bench/check_types.py)

`--check tcp|ping` runs only the check-type comparison: the engine with N services of that type (tcp:
a connect to the sim's port; ping: one echo to 127.0.0.x, a different loopback address per target)
next to the engine's http check of the same fleet, with the share of checks on time (done / asked)
and the CPU per check.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (REPO, CpuMeter, FleetView, LagProbe, SimProcess, busy_seconds, have_uvloop,  # noqa: E402
                    healthy_fleet, machine, run_loop, table)

POOL = 512  # same as core.probe.make_session's default connector limit
_NO_LAG_ENV = "FW_BENCH_NO_LAG_PROBE"  # set by --no-lag-probe; the workers inherit it
VARIANTS = ("engine", "engine+uvloop", "aiohttp", "httpx", "httpx+aiohttp")


# ---------------------------------------------------------------- workers (run in a child process)

def _emit(tag: str, data: Any = None) -> None:
    print(tag if data is None else f"{tag} {json.dumps(data)}", flush=True)


async def _measure(seconds: float, warmup: float, count: Callable[[], int], profile: bool = False,
                   on_start: Callable[[], None] | None = None) -> dict[str, Any]:
    """Warm up, then count checks and CPU over `seconds`."""
    # The probe is a 10 ms timer: 100 wake-ups a second, about 0.2 ms of CPU per check at 50 checks/s
    # (1,000 devices x 20 s), charged to every variant. --no-lag-probe measures the client alone.
    lag = LagProbe()
    if not os.environ.get(_NO_LAG_ENV):
        lag.start()
    await asyncio.sleep(warmup)
    cpu = CpuMeter()
    prof = cProfile.Profile() if profile else None
    c0, t0 = count(), time.monotonic()
    cpu.start()
    lag.reset()
    if on_start is not None:
        on_start()
    _emit("MEASURE-START")
    if prof is not None:
        prof.enable()
    await asyncio.sleep(seconds)
    if prof is not None:
        prof.disable()
    c1, t1 = count(), time.monotonic()
    cpu_pct = cpu.percent()
    p50, p99, mx = lag.quantiles()
    await lag.stop()
    if prof is not None:
        _print_profile(prof)
    return {"checks": c1 - c0, "seconds": t1 - t0, "cps": (c1 - c0) / (t1 - t0), "cpu": cpu_pct,
            "lag_p50": p50, "lag_p99": p99, "lag_max": mx}


def _print_profile(prof: cProfile.Profile, top: int = 30) -> None:
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        st = pstats.Stats(prof, stream=out).strip_dirs().sort_stats(key)
        st.print_stats(top)
        text = out.getvalue()
        # Keep from the header line on (drop pstats' preamble noise).
        start = text.find("   ncalls")
        print(f"--- cProfile, top {top} by {key} ---")
        print(text[start:] if start >= 0 else text, flush=True)


async def _engine_worker(ns: argparse.Namespace) -> dict[str, Any]:
    from core.config import parse_config
    from core.assembly import open_engine
    from core.engine import Engine
    from core.events import ServiceStatus
    from core.sim.demo import fleet_config_toml

    specs = healthy_fleet(ns.devices)
    if ns.check_type != "http":
        text = _check_fleet_toml(ns.check_type, ns.url, ns.devices, ns.interval)
    else:
        text = fleet_config_toml(FleetView(ns.url, specs), interval_s=ns.interval)  # type: ignore[arg-type]
    if ns.checks_per_second:
        # A top-level table after the [[services]] array is valid TOML.
        text += f"\n[rate_limit]\nchecks_per_second = {ns.checks_per_second!r}\n"
    config = parse_config(text, label="bench")
    with tempfile.TemporaryDirectory(prefix="fw-bench-") as tmp:
        engine = open_engine(config, state_dir=tmp)
        await engine.start()
        try:
            ev0 = [0]

            def on_start() -> None:
                ev0[0] = engine.stats().events_total
                # The engine's own lag window (a private deque): clear it so it covers this window only.
                clear = getattr(getattr(engine, "_lags", None), "clear", None)
                if callable(clear):
                    clear()
            result = await _measure(ns.seconds, ns.warmup, lambda: engine.stats().checks_total, ns.profile,
                                    on_start)
            st = engine.stats()
            result["engine_lag_p99"] = st.loop_lag_ms
            result["events"] = st.events_total - ev0[0]
            result["errors"] = sum(1 for s in engine.snapshots().values() if s.status is not ServiceStatus.HEALTHY)
            result["errors_note"] = "services not healthy at the end"
        finally:
            await engine.stop()
    return result


def _check_fleet_toml(kind: str, url: str, n: int, interval: float) -> str:
    """N services checked by `kind` (tcp: the sim's port; ping: 127.0.0.x, one loopback address each)."""
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    lines = ["[fault_detection]", f"check_interval_seconds = {interval!r}", "timeout_seconds = 2.0",
             "", "[api]", "enabled = false", ""]
    for i in range(n):
        if kind == "tcp":
            check = f'{{ type = "tcp", host = "127.0.0.1", port = {port} }}'
        else:
            check = f'{{ type = "ping", host = "127.0.{(i + 1) // 250}.{(i + 1) % 250 + 1}" }}'
        lines += ["[[services]]", f'id = "{kind}-{i:05d}"', f"check = {check}", ""]
    return "\n".join(lines)


async def _fleet_loop(urls: list[str], interval: float, get: Callable[[str], Awaitable[bool]],
                      counts: list[int]) -> None:
    """One coroutine per device: GET every `interval` (drift-free; no sleep when behind)."""
    loop = asyncio.get_running_loop()

    async def device(url: str, rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(0, interval))
        nxt = loop.time()
        while True:
            try:
                ok = await get(url)
            except Exception:  # noqa: BLE001 - an error is a result here, not a crash
                ok = False
            counts[0] += 1
            if not ok:
                counts[1] += 1
            nxt += interval
            delay = nxt - loop.time()
            if delay < 0:
                nxt, delay = loop.time(), 0.0
            await asyncio.sleep(delay)

    rng = random.Random(1)
    await asyncio.gather(*(device(u, random.Random(rng.random())) for u in urls))


async def _client_worker(ns: argparse.Namespace) -> dict[str, Any]:
    urls = [f"{ns.url}/dev/{s.id}/health" for s in healthy_fleet(ns.devices)]
    counts = [0, 0]  # checks, failed checks
    closers: list[Callable[[], Awaitable[None]]] = []
    get: Callable[[str], Awaitable[bool]]
    if ns.worker == "aiohttp":
        import aiohttp
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL))
        closers.append(session.close)

        async def get(url: str) -> bool:
            async with session.get(url) as resp:
                await resp.read()
                return resp.status == 200
    else:
        import httpx
        limits = httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL)
        if ns.worker == "httpx":
            client = httpx.AsyncClient(limits=limits, timeout=10.0)
        else:
            from httpx_aiohttp import AiohttpTransport
            client = httpx.AsyncClient(transport=AiohttpTransport(limits=limits), timeout=10.0)
        closers.append(client.aclose)

        async def get(url: str) -> bool:
            resp = await client.get(url)
            return resp.status_code == 200

    task = asyncio.ensure_future(_fleet_loop(urls, ns.interval, get, counts))
    try:
        e0 = [0]

        def on_start() -> None:
            e0[0] = counts[1]
        result = await _measure(ns.seconds, ns.warmup, lambda: counts[0], ns.profile, on_start)
        result["errors"] = counts[1] - e0[0]
        result["errors_note"] = "failed checks"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for close in closers:
            await close()
    return result


def worker_main(ns: argparse.Namespace) -> int:
    kind = ns.worker
    coro = _engine_worker(ns) if kind == "engine" else _client_worker(ns)
    result = run_loop(coro, ns.loop)
    result.update(variant=kind + ("+uvloop" if ns.loop == "uvloop" else ""), devices=ns.devices,
                  interval=ns.interval)
    _emit("RESULT", result)
    return 0


# ---------------------------------------------------------------- orchestration (parent process)

def run_worker(sim: SimProcess, variant: str, devices: int, interval: float, seconds: float,
               warmup: float, profile: bool = False, check_type: str = "http") -> dict[str, Any]:
    """One measurement in a fresh process. Variant: client[+uvloop][ nolimit] ("nolimit": the engine's
    check rate limit, 5,000/s by default, raised out of the way)."""
    name, _, flag = variant.partition(" ")
    kind, _, loop = name.partition("+")
    if kind == "httpx" and loop == "aiohttp":
        kind, loop = "httpx+aiohttp", ""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--url", sim.url,
           "--devices", str(devices), "--interval", str(interval), "--seconds", str(seconds),
           "--warmup", str(warmup), "--loop", loop or "asyncio"]
    if profile:
        cmd.append("--profile")
    if flag == "nolimit":
        cmd += ["--checks-per-second", "1000000"]
    if check_type != "http":
        cmd += ["--check-type", check_type]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert proc.stdout is not None
    result: dict[str, Any] = {"variant": variant, "devices": devices, "interval": interval}
    sim_cpu0 = t0 = sys0 = 0.0
    for line in proc.stdout:
        if line.startswith("MEASURE-START"):
            sim_cpu0, sys0, t0 = sim.cpu_seconds(), busy_seconds(), time.monotonic()
        elif line.startswith("RESULT "):
            wall = max(1e-9, time.monotonic() - t0)
            sim_cpu = 100.0 * (sim.cpu_seconds() - sim_cpu0) / wall
            busy = 100.0 * (busy_seconds() - sys0) / wall
            result = json.loads(line[7:])
            result["variant"] = variant
            result["sim_cpu"] = sim_cpu
            # Everything else the machine did meanwhile (other jobs on a shared box): a noise gauge.
            result["others_cpu"] = max(0.0, busy - sim_cpu - result["cpu"])
        else:
            print(line, end="", flush=True)
    rc = proc.wait()
    if rc != 0 or "cps" not in result:
        result["failed"] = f"worker exited {rc}"
    return result


def best_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Of repeated runs, the one the rest of the machine disturbed least."""
    ok = [r for r in runs if "cps" in r]
    return min(ok, key=lambda r: r.get("others_cpu", 0.0)) if ok else runs[-1]


def row(r: dict[str, Any]) -> list[Any]:
    if "failed" in r:
        return [r["variant"], r["failed"], None, None, None, None, None, None, None]
    per_cpu = r["cps"] / (r["cpu"] / 100.0) if r["cpu"] > 0 else float("nan")
    return [r["variant"], r["cps"], r["cpu"], per_cpu,
            f"{r['lag_p50']:.1f} / {r['lag_p99']:.1f} / {r['lag_max']:.0f}",
            r.get("engine_lag_p99"), r.get("errors"), r.get("sim_cpu"), r.get("others_cpu")]


HEADERS = ["client", "checks/s", "CPU %", "checks/CPU-s", "lag p50/p99/max ms", "engine lag p99",
           "errors", "sim CPU %", "others CPU %"]


def ratio_lines(results: dict[str, dict[str, Any]], label: str) -> list[str]:
    """engine/aiohttp ratios (a uvloop engine is compared with uvloop aiohttp when that was run)."""
    out = []
    for eng in ("engine", "engine+uvloop", "engine nolimit", "engine+uvloop nolimit"):
        base = "aiohttp+uvloop" if "uvloop" in eng and "aiohttp+uvloop" in results else "aiohttp"
        e, a = results.get(eng), results.get(base)
        if not a or not e or "cps" not in a or "cps" not in e:
            continue
        thr = e["cps"] / a["cps"] if a["cps"] else float("nan")
        eff = (e["cps"] / e["cpu"]) / (a["cps"] / a["cpu"]) if e["cpu"] and a["cpu"] and a["cps"] else float("nan")
        out.append(f"{label}: {eng}/{base} checks/s ratio {thr:.2f}; checks per CPU-second ratio {eff:.2f}")
    return out


CHECK_HEADERS = ["check", "devices", "asked/s", "checks/s", "on time %", "CPU %", "CPU ms/check",
                 "vs http", "lag p99 ms", "unhealthy", "others CPU %"]


def check_types_main(ns: argparse.Namespace) -> int:
    """The engine's tcp / ping checks next to its http check, same fleet size and interval."""
    sizes = ns.devices or [1000]
    warmup = ns.warmup if ns.warmup is not None else ns.interval + 2.0
    print(f"# check types bench, {time.strftime('%Y-%m-%d %H:%M')}, {machine()}", flush=True)
    print(f"# interval {ns.interval:g} s, {ns.seconds:g} s measured after {warmup:g} s warm-up; engine in its "
          f"own process; on time = checks done / checks asked", flush=True)
    all_results: list[dict[str, Any]] = []
    with SimProcess(max(sizes)) as sim:
        for n in sizes:
            asked = n / ns.interval
            rows: list[list[Any]] = []
            loops = ["engine"] + (["engine+uvloop"] if have_uvloop() and not ns.no_uvloop else [])
            for variant in loops:
                http_cost = None  # each loop's rows are compared with that loop's http row
                for kind in ["http", *ns.check]:
                    label = kind + variant.removeprefix("engine")
                    runs = [run_worker(sim, variant, n, ns.interval, ns.seconds, warmup, check_type=kind)
                            for _ in range(ns.repeat)]
                    all_results.extend(dict(r, check=kind) for r in runs)
                    r = best_of(runs)
                    if "cps" not in r:
                        rows.append([label, n, asked, r.get("failed"), None, None, None, None, None, None, None])
                        continue
                    cost = 10.0 * r["cpu"] / r["cps"] if r["cps"] else float("nan")  # ms of CPU per check
                    if kind == "http":
                        http_cost = cost
                    rows.append([label, n, asked, r["cps"], 100.0 * r["cps"] / asked, r["cpu"], cost,
                                 cost / http_cost if http_cost else None, r["lag_p99"], r.get("errors"),
                                 r.get("others_cpu")])
            print(f"\n## {n} devices at {ns.interval:g} s", flush=True)
            print(table(CHECK_HEADERS, rows), flush=True)
    if ns.json:
        ns.json.write_text(json.dumps(all_results, indent=1), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, action="append",
                   help="fleet size (repeatable); default: a sweep of 100, 1000, 2000")
    p.add_argument("--seconds", type=float, default=10.0, help="measured time per run (after warm-up)")
    p.add_argument("--interval", type=float, default=1.0, help="check interval of every device")
    p.add_argument("--warmup", type=float, default=None, help="seconds before measuring (default interval + 2)")
    p.add_argument("--repeat", type=int, default=1,
                   help="runs per row; the one least disturbed by other processes is shown (others CPU %%)")
    p.add_argument("--no-httpx", action="store_true", help="skip the httpx reference runs")
    p.add_argument("--no-uvloop", action="store_true", help="skip the uvloop runs")
    p.add_argument("--no-saturation", action="store_true", help="skip the saturation runs")
    p.add_argument("--sat-devices", type=int, default=1000, help="fleet size of the saturation runs")
    p.add_argument("--sat-interval", type=float, default=0.1, help="check interval of the saturation runs")
    p.add_argument("--profile", action="store_true",
                   help="only profile the engine (cProfile over the measured window) at --devices/--interval")
    p.add_argument("--no-lag-probe", action="store_true",
                   help="no 10 ms lag timer in the measured process (its 100 wake-ups/s weigh at sparse intervals)")
    p.add_argument("--json", type=Path, help="also write every result here")
    p.add_argument("--check", action="append", choices=("tcp", "ping", "modbus", "mqtt"),
                   help="compare the engine's tcp / ping / modbus / mqtt checks with its http check (repeatable); "
                        "default sizes: 1000 devices (modbus and mqtt: bench/check_types.py)")
    # Internal: one measurement in this process.
    p.add_argument("--worker", choices=("engine", "aiohttp", "httpx", "httpx+aiohttp"), help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--loop", default="asyncio", choices=("asyncio", "uvloop"), help=argparse.SUPPRESS)
    p.add_argument("--checks-per-second", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--check-type", default="http", choices=("http", "tcp", "ping"), help=argparse.SUPPRESS)
    ns = p.parse_args(argv)
    if ns.no_lag_probe:
        os.environ[_NO_LAG_ENV] = "1"

    if ns.worker:
        ns.devices = ns.devices[0] if ns.devices else 100
        ns.warmup = ns.warmup if ns.warmup is not None else ns.interval + 2.0
        return worker_main(ns)

    if ns.check:
        # modbus and mqtt need their own servers (PLCs, a broker): bench/check_types.py.
        industrial = [c for c in ns.check if c in ("modbus", "mqtt")]
        ns.check = [c for c in ns.check if c not in industrial]
        if ns.check:
            check_types_main(ns)
        if industrial:
            from check_types import compare

            compare(industrial, (ns.devices or [1000])[0], ns.interval, ns.seconds, servers=100, warmup=ns.warmup)
        return 0
    sizes = ns.devices or [100, 1000, 2000]
    warmup = ns.warmup if ns.warmup is not None else ns.interval + 2.0
    uv = have_uvloop() and not ns.no_uvloop
    print(f"# throughput bench, {time.strftime('%Y-%m-%d %H:%M')}, {machine()}", flush=True)
    print(f"# interval {ns.interval:g} s, {ns.seconds:g} s measured after {warmup:g} s warm-up; "
          f"sim in its own process; each client in its own process; uvloop {'yes' if uv else 'not installed/skipped'}",
          flush=True)
    all_results: list[dict[str, Any]] = []
    sim_size = max(sizes + ([] if ns.no_saturation or ns.profile else [ns.sat_devices]))
    with SimProcess(sim_size) as sim:
        if ns.profile:
            for n in sizes:
                sat_warm = ns.warmup if ns.warmup is not None else ns.interval + 2.0
                r = run_worker(sim, "engine", n, ns.interval, ns.seconds, sat_warm, profile=True)
                print(table(HEADERS, [row(r)]), flush=True)
            return 0
        for n in sizes:
            variants = ["engine"] + (["engine+uvloop"] if uv else []) + ["aiohttp"]
            if not ns.no_httpx:
                variants += ["httpx", "httpx+aiohttp"]
            results: dict[str, dict[str, Any]] = {}
            for v in variants:
                runs = [run_worker(sim, v, n, ns.interval, ns.seconds, warmup) for _ in range(ns.repeat)]
                all_results.extend(runs)
                results[v] = best_of(runs)
            print(f"\n## {n} devices at {ns.interval:g} s (asked: {n / ns.interval:,.0f} checks/s)", flush=True)
            print(table(HEADERS, [row(results[v]) for v in variants]), flush=True)
            for line in ratio_lines(results, f"{n} devices"):
                print(line, flush=True)
        if not ns.no_saturation:
            n, iv = ns.sat_devices, ns.sat_interval
            variants = (["engine", "engine nolimit"] + (["engine+uvloop nolimit"] if uv else []) + ["aiohttp"]
                        + (["aiohttp+uvloop"] if uv else []))
            results = {}
            for v in variants:
                runs = [run_worker(sim, v, n, iv, ns.seconds, iv + 2.0) for _ in range(ns.repeat)]
                all_results.extend(runs)
                results[v] = best_of(runs)
            print(f"\n## saturation: {n} devices at {iv:g} s (asked: {n / iv:,.0f} checks/s)", flush=True)
            print(table(HEADERS, [row(results[v]) for v in variants]), flush=True)
            for line in ratio_lines(results, "saturation"):
                print(line, flush=True)
    if ns.json:
        ns.json.write_text(json.dumps(all_results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
