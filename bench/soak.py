"""Soak: a time-compressed day of a 200-device fleet, watching the engine process for leaks.

The fleet (served by a SimServer in a separate process) is mostly healthy, with flaky and flapping
devices, a few slow ones, a few that are permanently broken in every way the sim knows (error500,
garbage, reset, hanging, huge, redirect_loop), and a "chaos" rack whose devices this script breaks
(down / reset / hanging / error500) every few seconds through the sim's control API, so the engine
keeps detecting, opening breakers, restarting (an HTTP POST to the device's /restart) and verifying.

Compression: every device is checked every `--interval` s (default 0.1 s) instead of the default
30 s, i.e. 300x: 5 minutes of wall time is ~3,000 checks per device, about one day's worth at 30 s
(2,880). Timers are compressed alike: breaker open timeout 1 s, restart delays 0.1-1 s, verify
timeout 3 s, alert after 1 s unhealthy, raw-sample retention 36 s (so the journal prunes, which the
engine does every 60 s of its clock), event retention 86 s.

Every `--every` seconds it prints elapsed, RSS, open fds, asyncio tasks, journal size (db + WAL),
checks and events so far; at the end the growth of RSS and fds from the end of warm-up (the first
20 %) to the end, and a PASS/FAIL verdict against < 5 % (printed, never asserted).

    .venv/bin/python bench/soak.py                  # 5 minutes
    .venv/bin/python bench/soak.py --minutes 30
    .venv/bin/python bench/soak.py --minutes 0.1 --every 2 --devices 20    # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (CpuMeter, FleetView, SimProcess, file_size, machine, num_fds, rss_mb, run_loop,  # noqa: E402
                    socket_fds, table)

from core.sim.devices import DeviceSpec  # noqa: E402

LIMIT_PCT = 5.0
CHAOS_BEHAVIOURS = ("down", "reset", "hanging", "error500")


# ---------------------------------------------------------------- the fleet (also built in the sim process)

def soak_fleet(n: int = 200, seed: int = 0) -> list[DeviceSpec]:
    """n devices: ~10 % chaos rack, ~8 % flaky, ~5 % flapping (sticky), ~2.5 % slow, 6 permanently
    broken ones (when n >= 40), the rest healthy. Deterministic for (n, seed)."""
    rng = random.Random(seed)
    specs: list[DeviceSpec] = []
    counts = {
        "chaos": max(1, n // 10), "flaky": max(1, n * 8 // 100), "flapping": max(1, n // 20),
        "slow": max(1, n // 40), "broken": 6 if n >= 40 else 0,
    }
    broken = ["error500", "garbage", "reset", "hanging", "huge", "redirect_loop"]
    i = 0

    def add(group: str, behaviour: str, params: dict[str, Any] | None = None, **kw: Any) -> None:
        nonlocal i
        i += 1
        specs.append(DeviceSpec(id=f"{group}-{i:03d}", behaviour=behaviour, params=params or {}, group=group,
                                reboot_s=kw.pop("reboot_s", 0.3), **kw))

    for _ in range(counts["chaos"]):
        add("chaos", "healthy")
    for _ in range(counts["flaky"]):
        add("flaky", "flaky", {"p": rng.choice([0.05, 0.1, 0.2, 0.4]), "seed": seed})
    for _ in range(counts["flapping"]):
        # sticky: a restart does not cure it; it keeps flapping (and keeps being restarted).
        add("flap", "flapping", {"period_s": float(rng.randrange(2, 9))}, sticky=True)
    for _ in range(counts["slow"]):
        add("slow", "slow", {"delay_ms": float(rng.randrange(40, 160, 20))})
    for b in broken[:counts["broken"]]:
        params: dict[str, Any] = {"size_bytes": 1_000_000} if b == "huge" else {}
        add("broken", b, params, sticky=True)
    while len(specs) < n:
        add(f"rack-{len(specs) // 40 + 1:02d}", "healthy")
    return specs[:n]


def soak_config(url: str, specs: list[DeviceSpec], interval: float, journal_path: str) -> str:
    from core.sim.demo import fleet_config_toml

    services = fleet_config_toml(FleetView(url, specs), interval_s=interval)  # type: ignore[arg-type]
    services = services[services.index("[[services]]"):]
    return f"""# Faultwatch soak config (bench/soak.py): timers compressed ~300x
[fault_detection]
check_interval_seconds = {interval!r}
timeout_seconds = 0.5
slow_response_threshold_ms = 100.0
max_failures = 3

[circuit_breaker]
failure_threshold = 3
success_threshold = 2
timeout_seconds = 1.0

[recovery]
restart_base_delay_seconds = 0.1
restart_max_delay_seconds = 1.0
restart_timeout_seconds = 1.0
verify_checks = 2
verify_timeout_seconds = 3.0
reset_after_stable_seconds = 5.0
storm_max_restarts = 30
storm_period_seconds = 10.0
group_storm_max_restarts = 300

[rate_limit]
restarts_per_service_per_minute = 120.0
restarts_per_group_per_minute = 1200.0

[alerts]
unhealthy_for_seconds = 1.0
group_window_seconds = 2.0

[journal]
path = {journal_path!r}
raw_retention_hours = 0.01
rollup_retention_days = 0.002
event_retention_days = 0.001

[api]
enabled = false

{services}"""


# ---------------------------------------------------------------- the soak

class _CountingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: collections.Counter[str] = collections.Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.counts[f"{record.levelname} {record.name}: {record.getMessage()[:100]}"] += 1
        else:  # warnings (alerts firing, mostly) are expected here: counted per logger only
            self.counts[f"{record.levelname} {record.name} (all messages)"] += 1


async def _chaos(url: str, victims: list[str], every: float, stats: dict[str, int]) -> None:
    """Break 1-2 chaos devices every `every` s (they come back healthy when restarted)."""
    import aiohttp

    rng = random.Random(7)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while True:
            await asyncio.sleep(every)
            for dev in rng.sample(victims, min(len(victims), rng.choice([1, 2]))):
                behaviour = rng.choice(CHAOS_BEHAVIOURS)
                try:
                    async with session.post(f"{url}/sim/devices/{dev}", json={"behaviour": behaviour}) as resp:
                        await resp.read()
                        stats["injected" if resp.status == 200 else "inject_failed"] += 1
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    stats["inject_failed"] += 1


async def _fine_samples(t0: float, out: list[tuple[float, float, int, int | None]]) -> None:
    while True:
        out.append((time.monotonic() - t0, rss_mb(), num_fds(), socket_fds()))
        await asyncio.sleep(1.0)


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return float("nan") if not n else (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2)


async def _sim_restarts(url: str) -> int:
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.get(f"{url}/sim/devices") as resp:
            data = await resp.json()
    return sum(int(d.get("restarts", 0)) for d in data["devices"])


async def soak(ns: argparse.Namespace, sim: SimProcess) -> dict[str, Any]:
    from core.config import parse_config
    from core.assembly import open_engine
    from core.engine import Engine

    specs = sim.specs()
    total_s = ns.minutes * 60.0
    warm_s = 0.2 * total_s
    handler = _CountingHandler()
    logging.getLogger().addHandler(handler)
    with tempfile.TemporaryDirectory(prefix="fw-soak-") as tmp:
        jpath = str(Path(tmp) / "soak.db")
        config = parse_config(soak_config(sim.url, specs, ns.interval, jpath), label="soak")
        engine = open_engine(config, state_dir=tmp)
        await engine.start()
        chaos_stats: collections.Counter[str] = collections.Counter()
        victims = [s.id for s in specs if s.group == "chaos"]
        chaos = asyncio.ensure_future(_chaos(sim.url, victims, ns.chaos_every, chaos_stats)) if victims else None
        cpu = CpuMeter()
        cpu.start()
        t0 = time.monotonic()
        samples: list[dict[str, Any]] = []
        last_checks, last_t = 0, t0
        headers = ["elapsed s", "RSS MB", "fds", "sockets", "tasks", "journal MB", "checks", "checks/s", "events",
                   "alerts", "restarts", "lag p99 ms"]
        print(table(headers, []), flush=True)
        marks = sorted({*(k * ns.every for k in range(1, int(total_s // ns.every) + 1)), warm_s, total_s})
        marks = [m for m in marks if 0 < m <= total_s]
        fine: list[tuple[float, float, int, int | None]] = []  # (elapsed, rss, fds, sockets) every second
        sampler = asyncio.ensure_future(_fine_samples(t0, fine))
        try:
            for mark in marks:
                await asyncio.sleep(max(0.0, t0 + mark - time.monotonic()))
                now = time.monotonic()
                st = engine.stats()
                restarts = sum(s.recovery.restarts_total for s in engine.services.values())
                s = {"elapsed": now - t0, "rss": rss_mb(), "fds": num_fds(), "sockets": socket_fds(),
                     "tasks": len(asyncio.all_tasks()),
                     "journal": file_size(engine.journal.path) / 1e6, "checks": st.checks_total,
                     "cps": (st.checks_total - last_checks) / max(1e-9, now - last_t), "events": st.events_total,
                     "alerts": len(engine.alerts()), "restarts": restarts, "lag": st.loop_lag_ms,
                     "warm_mark": abs(mark - warm_s) < 1e-9}
                last_checks, last_t = st.checks_total, now
                samples.append(s)
                line = table(headers, [[round(s["elapsed"]), s["rss"], s["fds"], s["sockets"], s["tasks"], s["journal"],
                                        s["checks"], s["cps"], s["events"], s["alerts"], s["restarts"], s["lag"]]])
                print(line.splitlines()[-1] + ("   <- end of warm-up" if s["warm_mark"] else ""), flush=True)
        finally:
            cpu_pct = cpu.percent()
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
            if chaos is not None:
                chaos.cancel()
                await asyncio.gather(chaos, return_exceptions=True)
            jstats = engine.journal.stats()
            await engine.stop()
        sim_restarts = await _sim_restarts(sim.url)
    logging.getLogger().removeHandler(handler)
    return {"samples": samples, "fine": fine, "total_s": total_s, "cpu": cpu_pct, "journal": jstats, "chaos": dict(chaos_stats),
            "sim_restarts": sim_restarts, "log": handler.counts, "devices": len(specs)}


def _growth(a: float, b: float) -> float:
    return 100.0 * (b - a) / a if a else float("nan")


def report(res: dict[str, Any], ns: argparse.Namespace) -> None:
    samples = res["samples"]
    if not samples:
        print("no samples")
        return
    base = next((s for s in samples if s["warm_mark"]), samples[0])
    end = samples[-1]
    # Verdict on medians of the per-second samples, in the 20 % of the run right after warm-up against
    # the last 20 %: the fd count follows the connection pool (idle keep-alive connections come and
    # go with load peaks), so two single samples could differ by 2x without any leak.
    total = res["total_s"]
    fine = res["fine"]
    w0 = [x for x in fine if 0.2 * total <= x[0] <= 0.4 * total] or fine[:1]
    w1 = [x for x in fine if x[0] >= 0.8 * total] or fine[-1:]
    rss0, rss1 = _median([x[1] for x in w0]), _median([x[1] for x in w1])
    fd0, fd1 = _median([x[2] for x in w0]), _median([x[2] for x in w1])
    rss_g, fd_g = _growth(rss0, rss1), _growth(fd0, fd1)
    other0 = _median([x[2] - x[3] for x in w0 if x[3] is not None])
    other1 = _median([x[2] - x[3] for x in w1 if x[3] is not None])
    j = res["journal"]
    secs = end["elapsed"]
    print(f"\n# soak summary: {res['devices']} devices, interval {ns.interval:g} s, {secs:.0f} s wall "
          f"(~{secs * 30.0 / ns.interval / 3600:.1f} h at a 30 s interval), engine process CPU {res['cpu']:.0f} %")
    print(f"checks {end['checks']:,} ({end['checks'] / secs:,.0f}/s, {end['checks'] / max(1, res['devices']):,.0f} "
          f"per device); events {end['events']:,}; engine restarts {end['restarts']:,} (sim saw {res['sim_restarts']:,}); "
          f"chaos injections {res['chaos'].get('injected', 0)} (failed {res['chaos'].get('inject_failed', 0)})")
    print(f"journal at the end: {j.events:,} events, {j.samples:,} samples, {j.rollups:,} rollup rows, "
          f"{j.file_bytes / 1e6:.1f} MB (db + WAL)")
    print(f"RSS  single samples: {base['rss']:.1f} MB at {base['elapsed']:.0f} s (end of warm-up) -> "
          f"{end['rss']:.1f} MB at {end['elapsed']:.0f} s: {_growth(base['rss'], end['rss']):+.1f} %; "
          f"medians (20-40 % vs last 20 %, 1 s samples) {rss0:.1f} -> {rss1:.1f} MB: {rss_g:+.1f} %; "
          f"max {max(x[1] for x in fine):.1f} MB")
    print(f"fds  single samples: {base['fds']} -> {end['fds']}: {_growth(base['fds'], end['fds']):+.1f} %; "
          f"medians {fd0:g} -> {fd1:g}: {fd_g:+.1f} %; min {min(x[2] for x in fine)}, max {max(x[2] for x in fine)}; "
          f"non-socket fds (files, epoll, pipes) {other0:g} -> {other1:g}")
    print(f"tasks {base['tasks']} -> {end['tasks']}; journal {base['journal']:.1f} -> {end['journal']:.1f} MB "
          f"(max {max(s['journal'] for s in samples):.1f})")
    if res["log"]:
        print("logged warnings (per logger) and errors (per message, first 100 chars):")
        for msg, n in res["log"].most_common(10):
            print(f"  {n:6d}  {msg}")
    ok_rss, ok_fd = rss_g < LIMIT_PCT, fd_g < LIMIT_PCT
    print(f"VERDICT (medians) RSS growth {rss_g:+.1f} % {'PASS' if ok_rss else 'FAIL'} (< {LIMIT_PCT:g} %); "
          f"fd growth {fd_g:+.1f} % {'PASS' if ok_fd else 'FAIL'} (< {LIMIT_PCT:g} %); "
          f"overall {'PASS' if ok_rss and ok_fd else 'FAIL'}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0, help="wall time of the soak (fractions allowed)")
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--interval", type=float, default=0.1, help="check interval of every device")
    p.add_argument("--every", type=float, default=10.0, help="seconds between two printed samples")
    p.add_argument("--chaos-every", type=float, default=3.0, help="seconds between two chaos injections")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--loop", default="asyncio", choices=("asyncio", "uvloop"))
    ns = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    logging.getLogger().handlers[0].setLevel(logging.CRITICAL)  # counted and summarised instead
    print(f"# soak, {time.strftime('%Y-%m-%d %H:%M')}, {machine()}", flush=True)
    print(f"# {ns.devices} devices at {ns.interval:g} s, {ns.minutes:g} min; sim in its own process; "
          f"warm-up = first 20 %", flush=True)
    with SimProcess(ns.devices, factory="soak:soak_fleet", seed=ns.seed) as sim:
        res = run_loop(soak(ns, sim), ns.loop)
    report(res, ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
