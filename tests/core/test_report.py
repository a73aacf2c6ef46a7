"""Reports from a journal with known outages (tests/core/report_journal.py): every figure, exactly."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from core.clock import FakeClock, iso_utc
from core.config import JournalConfig
from core.events import ActionEvent, ProbeEvent, ServiceStatus
from core.journal import Journal
from core.report import (JournalReader, Outage, ReportError, ReportRequest, ServiceInfo,
                         load_report)
from tests.core.report_journal import GAP, PERIOD, T0, write_scenario

INFO = {"a": ServiceInfo("rack1", 3), "b": ServiceInfo("rack1", 3), "c": ServiceInfo("rack2", 3)}


@pytest.fixture(scope="module")
def journal_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "faultwatch.db"
    write_scenario(path)
    return path


def report(path: Path, since: float = PERIOD[0], until: float = PERIOD[1], **kw: object):  # type: ignore[no-untyped-def]
    return load_report(path, ReportRequest(since=since, until=until, services=INFO, **kw))  # type: ignore[arg-type]


def test_engine_gap_is_found_from_the_journal_and_not_counted(journal_path: Path) -> None:
    rep = report(journal_path)
    assert rep.gaps == ((T0 + GAP[0], T0 + GAP[1]),)
    # 3600 s minus the 610 s the engine was down: every service was monitored 2,990 s.
    assert [s.figures.monitored_s for s in rep.services] == [2990.0, 2990.0, 2990.0]


def test_engine_gap_found_from_rollups_alone_once_raw_samples_are_pruned(tmp_path: Path) -> None:
    path = tmp_path / "faultwatch.db"
    write_scenario(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM samples")  # what prune() leaves after raw_retention_hours
    rep = report(path)
    # Minute resolution now: the last sample (1790) is known only as "in the minute 1740-1800".
    assert rep.gaps == ((T0 + 1800, T0 + GAP[1]),)
    a = rep.services[0].figures
    assert a.healthy_s == 2730.0 and a.monitored_s == 3000.0
    # Without raw samples the last good check is unknown: TTD is measured from the first failed check.
    assert a.ttd_s == 20.0


def test_service_a_every_figure(journal_path: Path) -> None:
    a = report(journal_path).services[0]
    f = a.figures
    assert (a.id, a.group) == ("a", "rack1")
    # healthy 0-600, 700-1000, 1010-1200, 1260-1790, 2400-3500; a blip (1000-1010, one failed check)
    # and a slow spell (1200-1260) are degraded; outages 600-700 and 3500-3600 (open at the end).
    assert f.healthy_s == 2720.0 and f.degraded_s == 70.0 and f.maintenance_s == 0.0
    assert f.downtime_s == 200.0 and f.outages == 2 and f.failures == 2 and f.longest_outage_s == 100.0
    assert f.availability_pct == pytest.approx(100.0 * 2720 / 2990, abs=1e-12)
    assert f.up_pct == pytest.approx(100.0 * 2790 / 2990, abs=1e-12)  # degraded counted as up
    assert f.ttd_s == 30.0  # both: verdict 20 s after the first failure, 10 s after the last good check
    assert f.ttr_s == 80.0  # only the first outage recovered: verdict at 620, healthy at 700
    assert f.mtbf_s == (2720 + 70) / 2
    assert (f.restarts, f.restarts_ok, f.restarts_gave_up, f.failovers) == (2, 1, 0, 0)
    assert f.restart_success_pct == 50.0
    assert f.breaker_open_s == 60.0  # open 640, half-open 700
    assert f.reboots == 1


def test_outage_list_with_causes_steps_and_clipping(journal_path: Path) -> None:
    rep = report(journal_path)
    got = [(o.service, o.start - T0, o.end - T0, o.duration_s, o.clipped_start, o.clipped_end, o.end_reason)
           for o in rep.outages]
    assert got == [
        ("b", 0.0, 120.0, 120.0, True, False, "recovered"),       # began before the period
        ("a", 600.0, 700.0, 100.0, False, False, "recovered"),
        ("a", 3500.0, 3600.0, 100.0, False, True, "period_end"),  # still down when the period ends
    ]
    b, a1, a2 = rep.outages
    assert (b.ttd_s, b.ttr_s, b.error) == (None, 150.0, "timeout after 5 s")
    assert (a1.detected, a1.ttd_s, a1.ttr_s) == (T0 + 620, 30.0, 80.0)
    assert (a1.failure_type, a1.error, a1.cause) == ("service_unavailable", "HTTP 503", "service_unavailable: HTTP 503")
    assert [(s.at - T0, s.kind, s.outcome, s.attempt) for s in a1.steps] == [
        (625.0, "restart", "started", 1), (640.0, "restart", "failed", 1), (650.0, "reboot", "seen", 0),
        (655.0, "action", "restart", 0), (660.0, "restart", "started", 2),
        (730.0, "restart", "succeeded", 2),  # verified after the healthy verdict: same recovery id
    ]
    assert (a2.ttd_s, a2.ttr_s, a2.cause, a2.steps) == (30.0, None, "connection refused", ())


def test_maintenance_is_apart_and_a_failure_inside_it_is_no_outage(journal_path: Path) -> None:
    rep = report(journal_path)
    b, c = rep.services[1].figures, rep.services[2].figures
    assert (b.healthy_s, b.maintenance_s, b.downtime_s, b.degraded_s) == (2570.0, 300.0, 120.0, 0.0)
    assert b.availability_pct == pytest.approx(100.0 * 2570 / 2690, abs=1e-12)
    assert (b.outages, b.failures, b.mtbf_s, b.ttd_s, b.ttr_s) == (1, 0, None, None, 150.0)
    # c: its group "rack2" went into maintenance at 3000 and stayed there.
    assert (c.healthy_s, c.maintenance_s, c.availability_pct, c.outages, c.mtbf_s) == (2390.0, 600.0, 100.0, 0, None)


def test_group_and_fleet_figures(journal_path: Path) -> None:
    rep = report(journal_path)
    assert [(g.name, g.services) for g in rep.groups] == [("rack1", 2), ("rack2", 1)]
    rack1 = rep.groups[0].figures
    assert (rack1.healthy_s, rack1.downtime_s, rack1.outages, rack1.failures) == (5290.0, 320.0, 3, 2)
    assert rack1.ttr_s == 115.0 and rack1.ttd_s == 30.0
    f = rep.fleet
    assert (f.monitored_s, f.healthy_s, f.degraded_s, f.maintenance_s) == (8970.0, 7680.0, 70.0, 900.0)
    assert f.availability_pct == pytest.approx(100.0 * 7680 / 8070, abs=1e-12)
    assert (f.outages, f.failures, f.longest_outage_s, f.downtime_s) == (3, 2, 120.0, 320.0)
    assert (f.ttd_s, f.ttr_s, f.mtbf_s) == (30.0, 115.0, (7680 + 70) / 2)
    assert (f.restarts, f.restarts_ok, f.reboots, f.breaker_open_s) == (2, 1, 1, 60.0)


def test_period_starting_inside_an_outage_clips_it_and_keeps_ttr(journal_path: Path) -> None:
    rep = report(journal_path, since=T0 + 650, until=T0 + 1000, service="a")
    (a,) = rep.services
    (o,) = rep.outages
    assert (o.start - T0, o.end - T0, o.clipped_start, o.ttd_s, o.ttr_s) == (650.0, 700.0, True, None, 80.0)
    assert (a.figures.downtime_s, a.figures.healthy_s, a.figures.failures, a.figures.mtbf_s) == (50.0, 300.0, 0, None)
    assert a.figures.breaker_open_s == 50.0  # carried in open from 640, half-open at 700
    # Steps before the period are not in it; what happened inside is (730: verified after the verdict).
    assert [(s.at - T0, s.outcome) for s in o.steps] == [(650.0, "seen"), (655.0, "restart"), (660.0, "started"),
                                                         (730.0, "succeeded")]
    assert (a.figures.restarts, a.figures.restarts_ok) == (1, 1)


def test_period_starting_inside_the_engine_gap(journal_path: Path) -> None:
    rep = report(journal_path, since=T0 + 2000, until=T0 + 3000)
    assert rep.gaps == ((T0 + 2000, T0 + 2400),)
    assert [(s.id, s.figures.monitored_s, s.figures.healthy_s) for s in rep.services] == [
        ("a", 600.0, 600.0), ("b", 600.0, 600.0), ("c", 600.0, 600.0)]


def test_period_with_no_data(journal_path: Path) -> None:
    rep = load_report(journal_path, ReportRequest(since=T0 - 90_000, until=T0 - 80_000))
    assert rep.services == () and rep.outages == () and rep.fleet.availability_pct is None
    assert rep.gaps == ((T0 - 90_000, T0 - 80_000),)
    doc = rep.to_json()
    assert doc["fleet"]["availability_pct"] is None and doc["services"] == []
    # A configured service with no data in the period is listed, with nothing measured.
    rep = load_report(journal_path, ReportRequest(since=T0 - 90_000, until=T0 - 80_000,
                                                  services={"a": ServiceInfo("rack1")}))
    (a,) = rep.services
    assert (a.figures.monitored_s, a.figures.availability_pct, a.figures.ttd_s, a.figures.mtbf_s) == (0.0, None, None, None)


def test_filters_by_group_and_service(journal_path: Path) -> None:
    assert [s.id for s in report(journal_path, group="rack1").services] == ["a", "b"]
    rep = report(journal_path, service="c")
    assert [s.id for s in rep.services] == ["c"] and rep.outages == () and rep.scope == "service c"


def test_groups_come_from_alerts_when_there_is_no_config(journal_path: Path) -> None:
    rep = load_report(journal_path, ReportRequest(since=PERIOD[0], until=PERIOD[1]))
    assert [(s.id, s.group) for s in rep.services] == [("a", ""), ("b", ""), ("c", "")]
    # Without the group, rack2's maintenance cannot be applied to c: all its time is healthy.
    assert rep.services[2].figures.maintenance_s == 0.0


def test_json_shape_keeps_the_issue_names(journal_path: Path) -> None:
    doc = json.loads(json.dumps(report(journal_path).to_json()))
    assert doc["period"] == {"since": iso_utc(PERIOD[0]), "until": iso_utc(PERIOD[1])}
    names = {"id", "group", "availability_pct", "outages", "downtime_s", "ttd_s", "ttr_s", "mtbf_s", "restarts",
             "restarts_ok", "breaker_open_s", "reboots"}
    assert all(names <= set(s) for s in doc["services"])
    a = doc["services"][0]
    assert (a["availability_pct"], a["ttd_s"], a["ttr_s"], a["mtbf_s"]) == (90.970, 30.0, 80.0, 1395.0)
    assert set(doc["outages"][0]) >= {"service", "start", "end", "duration_s", "cause", "steps"}
    assert doc["outages"][1]["start"] == iso_utc(T0 + 600) and doc["outages"][1]["duration_s"] == 100.0
    assert doc["outages"][1]["cause"] == {"failure_type": "service_unavailable", "error": "HTTP 503"}
    assert doc["outages"][1]["steps"][0] == {"at": iso_utc(T0 + 625), "kind": "restart", "outcome": "started",
                                             "attempt": 1, "detail": ""}


def test_engine_markers_mark_a_short_restart(tmp_path: Path) -> None:
    """A stop/start pair shorter than gap_s is still not monitored (if the engine journals markers)."""
    path = tmp_path / "j.db"
    clock = FakeClock(start=0.0, start_wall=T0)
    with Journal.open(path, JournalConfig(), clock) as j:
        j.append_many([
            ProbeEvent(service="x", mono=0, wall=T0 + 10, status=ServiceStatus.HEALTHY, latency_ms=1.0, error=None,
                       consecutive_failures=0),
            ActionEvent(service="", mono=0, wall=T0 + 100, command="engine_stop", origin="engine"),
            ActionEvent(service="", mono=0, wall=T0 + 160, command="engine_start", origin="engine"),
            ProbeEvent(service="x", mono=0, wall=T0 + 165, status=ServiceStatus.HEALTHY, latency_ms=1.0, error=None,
                       consecutive_failures=0),
        ])
        for t in range(10, 600, 5):
            if not 100 < t < 165:
                j.record_latency("x", T0 + t, 1.0, True)
    rep = load_report(path, ReportRequest(since=T0, until=T0 + 600))
    # Nothing before the first check at +10 either: the journal starts there.
    assert rep.gaps == ((T0, T0 + 10), (T0 + 100, T0 + 160))
    assert rep.services[0].figures.healthy_s == 600 - 10 - 65  # unknown until 10, and 100-165


def test_reader_is_read_only_and_works_while_a_writer_holds_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "faultwatch.db"
    writer = write_scenario(path, close=False)
    try:
        # The writer keeps its connection open (as a running engine does) and writes on after we read.
        rep = report(path)
        assert rep.fleet.outages == 3
        writer.append(ActionEvent(service="", mono=0, wall=T0 + 3700, command="reload", origin="cli"))
        with JournalReader(path) as reader:
            with pytest.raises(ReportError, match="read failed"):
                reader.q("INSERT INTO state (key, value) VALUES ('x', '1')")
    finally:
        writer.close()


def test_bad_journals_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no journal here"):
        load_report(tmp_path / "absent.db", ReportRequest(since=0, until=1))
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(ReportError) as info:
        load_report(junk, ReportRequest(since=0, until=1))
    assert "\n" not in str(info.value)
    with pytest.raises(ReportError, match="period is empty"):
        report(tmp_path / "absent.db" if False else write_scenario(tmp_path / "ok.db").path, since=5, until=5)


def test_outage_value_is_frozen() -> None:
    o = Outage("a", "g", 0.0, 10.0, None, None, None, "", "", (), False, False, "recovered")
    with pytest.raises(AttributeError):
        o.start = 1.0  # type: ignore[misc]
    assert o.duration_s == 10.0 and o.cause == "unknown"


def test_a_quick_restart_is_found_where_raw_samples_are_kept(tmp_path: Path) -> None:
    """70 s with nothing journaled: shorter than gap_s (300 s), found by the raw-sample search."""
    path = tmp_path / "j.db"
    clock = FakeClock(start=0.0, start_wall=T0)
    with Journal.open(path, JournalConfig(), clock) as j:
        j.append_many([
            ProbeEvent(service=s, mono=0, wall=T0 + t, status=ServiceStatus.HEALTHY, latency_ms=1.0, error=None,
                       consecutive_failures=0) for s in ("x", "y") for t in (0.0, 1075.0)])
        for t in range(0, 1800, 10):
            if not 1000 < t < 1075:
                j.record_latency("x", T0 + t, 1.0, True)
                j.record_latency("y", T0 + t + 3, 1.0, True)
    request = ReportRequest(since=T0 + 600, until=T0 + 1800, fine_gap_s=30.0)
    rep = load_report(path, request)
    assert rep.gaps == ((T0 + 1003, T0 + 1075),)  # y's sample at 1003, the re-announced verdicts at 1075
    assert [s.figures.healthy_s for s in rep.services] == [1200.0 - 72, 1200.0 - 72]
    # Not searched (or samples pruned): only gaps of gap_s and more are known, and this is not one.
    assert load_report(path, dataclasses.replace(request, fine_gap_s=None)).gaps == ()
    # A running engine's ordinary silence (10 s between checks here) is never a gap.
    assert load_report(path, dataclasses.replace(request, fine_gap_s=15.0)).gaps == ((T0 + 1003, T0 + 1075),)


def test_without_a_config_the_check_interval_comes_from_the_samples(tmp_path: Path) -> None:
    """Devices checked every 5 minutes are not "not running" between checks, even without a config."""
    path = tmp_path / "j.db"
    clock = FakeClock(start=0.0, start_wall=T0)
    with Journal.open(path, JournalConfig(), clock) as j:
        j.append(ProbeEvent(service="slow", mono=0, wall=T0, status=ServiceStatus.HEALTHY, latency_ms=1.0,
                            error=None, consecutive_failures=0))
        for t in range(0, 4 * 3600, 300):
            j.record_latency("slow", T0 + t, 1.0, True)
    rep = load_report(path, ReportRequest(since=T0, until=T0 + 4 * 3600 - 300))
    assert rep.gaps == () and rep.services[0].figures.healthy_s == 4 * 3600 - 300
