"""How long does a report take on a month of a big fleet? (issue 14: 30 days × 1,000 devices, < 5 s)

Generates a journal the shape a real one has after 30 days at default settings: per-minute rollups
for every device and minute (43.2 M rows for 1,000 devices), raw samples for the last 6 hours at a
30 s interval, and events for outages (about one per device a day: failed checks, breaker, restarts,
alerts), two engine restarts (20 minutes with nothing journaled, then every device re-announced),
a maintenance window for one rack, and a few reboots. Events go through the real Journal class; the
bulk rows are generated inside SQLite (a recursive CTE), which is what makes 43 M rows take a minute
instead of half an hour.

Then times the report (core.report.load_report) for the last hour, 24 hours, 7 days and 30 days,
and the HTML and PDF renderings of the 30-day one, and prints a table (docs/benchmarks.md).

    .venv/bin/python bench/report_bench.py                   # 1,000 devices, 30 days (~2 min to generate)
    .venv/bin/python bench/report_bench.py --devices 100 --days 3 --keep /tmp/j.db
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.clock import FakeClock  # noqa: E402
from core.config import JournalConfig  # noqa: E402
from core.events import (ActionEvent, AlertEvent, BreakerEvent, BreakerState, Event, ProbeEvent,  # noqa: E402
                         RebootEvent, RecoveryEvent, RecoveryOutcome, RecoveryStrategyName, ServiceStatus)
from core.journal import Journal  # noqa: E402
from core.report import ReportRequest, ServiceInfo, load_report  # noqa: E402
from core.report_render import render_csv, render_html, render_json  # noqa: E402

INTERVAL = 30.0
MAX_FAILURES = 3


def _outage_events(svc: str, group: str, t: float, duration: float, n: int) -> list[Event]:
    rid = f"{svc}#{n}"
    ev: list[Event] = []
    for cf in (1, 2, 3):
        at = t + (cf - 1) * INTERVAL
        ev.append(ProbeEvent(service=svc, mono=at, wall=at, status=ServiceStatus.UNHEALTHY, latency_ms=None,
                             error="HTTP 503", consecutive_failures=cf, endpoint=f"http://{svc}"))
    verdict = t + 2 * INTERVAL
    ev.append(AlertEvent(service=svc, mono=verdict, wall=verdict, alert_id=f"unhealthy:{svc}", severity="critical",
                         rule="unhealthy", state="firing", message=f"{svc} failed", group=group))
    ev.append(RecoveryEvent(service=svc, mono=verdict + 1, wall=verdict + 1, recovery_id=rid, strategy=RecoveryStrategyName.RESTART,
                            attempt=1, max_attempts=3, outcome=RecoveryOutcome.STARTED, delay_s=1.0,
                            failure_type="service_unavailable"))
    ev.append(BreakerEvent(service=svc, mono=t + 4 * INTERVAL, wall=t + 4 * INTERVAL, from_state=BreakerState.CLOSED,
                           to_state=BreakerState.OPEN, reason="5 consecutive failures (last: HTTP 503)"))
    end = t + duration
    ev.append(BreakerEvent(service=svc, mono=end - 1, wall=end - 1, from_state=BreakerState.OPEN,
                           to_state=BreakerState.HALF_OPEN, reason="open timeout 60s elapsed"))
    ev.append(ProbeEvent(service=svc, mono=end, wall=end, status=ServiceStatus.HEALTHY, latency_ms=12.0, error=None,
                         consecutive_failures=0, endpoint=f"http://{svc}"))
    ev.append(BreakerEvent(service=svc, mono=end + 60, wall=end + 60, from_state=BreakerState.HALF_OPEN,
                           to_state=BreakerState.CLOSED, reason="2 successes in half-open"))
    ev.append(RecoveryEvent(service=svc, mono=end + 60, wall=end + 60, recovery_id=rid, strategy=RecoveryStrategyName.RESTART,
                            attempt=1, max_attempts=3, outcome=RecoveryOutcome.SUCCEEDED,
                            failure_type="service_unavailable", detail="healthy after restart (HTTP 200)"))
    ev.append(AlertEvent(service=svc, mono=end, wall=end, alert_id=f"unhealthy:{svc}", severity="critical",
                         rule="unhealthy", state="resolved", message=f"{svc} healthy again", group=group))
    return ev


def generate(path: Path, devices: int, days: float, end: float, seed: int = 14) -> dict[str, ServiceInfo]:
    rng = random.Random(seed)
    start = end - days * 86_400
    names = [f"dev-{i:04d}" for i in range(devices)]
    infos = {n: ServiceInfo(f"rack-{i // 50:02d}", MAX_FAILURES) for i, n in enumerate(names)}
    # Two engine restarts, 20 minutes each, at a third and two thirds of the span.
    gaps = [(start + days * 86_400 * k / 3, start + days * 86_400 * k / 3 + 1200) for k in (1, 2)]

    def in_gap(t: float) -> bool:
        return any(a - 3600 <= t <= b + 60 for a, b in gaps)  # keep outages clear of the restarts

    events: list[Event] = []
    for n in names:
        events.append(ProbeEvent(service=n, mono=start, wall=start + rng.uniform(0, INTERVAL),
                                 status=ServiceStatus.HEALTHY, latency_ms=12.0, error=None, consecutive_failures=0))
    for i, n in enumerate(names):
        t = start + rng.expovariate(1 / 86_400)
        k = 0
        while t < end - 7200:
            if not in_gap(t):
                k += 1
                events.extend(_outage_events(n, infos[n].group, t, rng.uniform(120, 1800), k))
                if rng.random() < 0.05:
                    events.append(_reboot(n, t + 30))
            t += 3600 + rng.expovariate(1 / 86_400)
    for a, b in gaps:
        for n in names:
            at = b + rng.uniform(0, INTERVAL)
            events.append(ProbeEvent(service=n, mono=at, wall=at, status=ServiceStatus.HEALTHY, latency_ms=12.0,
                                     error=None, consecutive_failures=0))
    mid = start + days * 86_400 / 2
    events.append(ActionEvent(service="rack-03", mono=mid, wall=mid, command="maintenance_on", origin="gui"))
    events.append(ActionEvent(service="rack-03", mono=mid + 7200, wall=mid + 7200, command="maintenance_off",
                              origin="gui"))
    events.sort(key=lambda e: e.wall)

    clock = FakeClock(start=0.0, start_wall=end)
    with Journal.open(path, JournalConfig(), clock) as journal:
        for i in range(0, len(events), 20_000):
            journal.append_many(events[i:i + 20_000])
        journal.record_latency(names[0], end, 1.0, True)  # creates the services table rows' shape
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    conn.executemany("INSERT OR IGNORE INTO services (name) VALUES (?)", [(n,) for n in names])
    first_min, last_min = int(start // 60), int(end // 60)
    gap_mins = [(int(a // 60) + 1, int(b // 60)) for a, b in gaps]
    where_gap = " AND ".join(f"NOT (m BETWEEN {a} AND {b - 1})" for a, b in gap_mins) or "1"
    conn.execute(
        "WITH RECURSIVE mins(m) AS (SELECT ? UNION ALL SELECT m + 1 FROM mins WHERE m + 1 < ?) "
        "INSERT OR REPLACE INTO rollups (sid, minute, count, failures, timed, min_us, max_us, sum_us) "
        f"SELECT s.sid, m, 2, 0, 2, 11000, 13000, 24000 FROM services s, mins WHERE {where_gap} "
        "ORDER BY s.sid, m", (first_min, last_min))
    raw_from = max(start, end - 6 * 3600)
    conn.execute(
        "WITH RECURSIVE ts(t) AS (SELECT ? UNION ALL SELECT t + ? FROM ts WHERE t + ? < ?) "
        "INSERT OR REPLACE INTO samples (sid, wall_ms, latency_us, ok) "
        "SELECT s.sid, t + (s.sid * 37) % 30000, 12000, 1 FROM services s, ts ORDER BY s.sid, t",
        (int(raw_from * 1000), int(INTERVAL * 1000), int(INTERVAL * 1000), int(end * 1000)))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return infos


def _reboot(svc: str, at: float) -> Event:
    return RebootEvent(service=svc, mono=at, wall=at, reason="uptime went back")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--keep", metavar="PATH", help="write the journal here and keep it (reused if it exists)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per period; the least disturbed is shown")
    ap.add_argument("--pdf", action="store_true", help="also time the PDF of the 24 h report (needs PySide6)")
    args = ap.parse_args()
    end = float(int(time.time()) // 60 * 60)
    tmp = None
    if args.keep:
        path = Path(args.keep)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="report-bench-")
        path = Path(tmp.name) / "faultwatch.db"
    infos = {f"dev-{i:04d}": ServiceInfo(f"rack-{i // 50:02d}", MAX_FAILURES) for i in range(args.devices)}
    if not path.exists():
        t0 = time.perf_counter()
        infos = generate(path, args.devices, args.days, end)
        print(f"generated {args.devices} devices × {args.days:g} days in {time.perf_counter() - t0:.1f} s")
    else:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        end = float(conn.execute("SELECT max(minute) FROM rollups").fetchone()[0] + 1) * 60
        conn.close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    counts = conn.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM rollups),"
                          " (SELECT count(*) FROM samples)").fetchone()
    conn.close()
    size = sum(os.path.getsize(f"{path}{s}") for s in ("", "-wal") if os.path.exists(f"{path}{s}"))
    print(f"journal: {counts[0]:,} events, {counts[1]:,} rollup rows, {counts[2]:,} raw samples, "
          f"{size / 1e9:.2f} GB")
    print()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"| period | devices | outages | compute, wall (best of {args.repeat}) | CPU | JSON | CSV | HTML |")
    print("|---|---|---|---|---|---|---|---|")
    last = None
    day = None
    for label, seconds in (("1 h", 3600.0), ("24 h", 86_400.0), ("7 d", 7 * 86_400.0),
                           (f"{args.days:g} d", args.days * 86_400.0)):
        request = ReportRequest(since=end - seconds, until=end, services=infos, gap_s=max(300.0, 3 * INTERVAL))
        times = []
        cpu = []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            report = load_report(path, request)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        renders = []
        for fn in (render_json, render_csv, render_html):
            t0 = time.perf_counter()
            fn(report)
            renders.append(time.perf_counter() - t0)
        times.sort()
        cpu.sort()
        print(f"| {label} | {len(report.services):,} | {len(report.outages):,} | {times[0]:.2f} s | {cpu[0]:.2f} s | "
              f"{renders[0]:.2f} s | {renders[1]:.2f} s | {renders[2]:.2f} s |")
        last = report
        if label == "24 h":
            day = report
    assert last is not None and day is not None
    f = last.fleet
    print()
    print(f"fleet over the whole span: availability {f.availability_pct:.3f} %, {f.outages:,} outages, "
          f"TTD {f.ttd_s:.1f} s, TTR {f.ttr_s:.1f} s, MTBF {f.mtbf_s / 3600:.1f} h, "
          f"engine not running {sum(b - a for a, b in last.gaps):.0f} s in {len(last.gaps)} gaps")
    if args.pdf:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from gui.report_pdf import write_pdf
        out = path.with_suffix(".pdf")
        t0 = time.perf_counter()
        write_pdf(day, out)
        pages = out.read_bytes().count(b"/Type /Page\n") or out.read_bytes().count(b"/Type/Page")
        print(f"PDF of the 24 h report ({len(day.outages):,} outages): {time.perf_counter() - t0:.2f} s, "
              f"{out.stat().st_size / 1e6:.1f} MB, {pages} pages")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
