"""`faultwatch report` as a real process, in every format, on the known journal of report_journal.py."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.clock import iso_utc
from tests.core.report_journal import PERIOD, write_scenario

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """
[fault_detection]
check_interval_seconds = 10
max_failures = 3

[[services]]
id = "a"
endpoint = "http://127.0.0.1:9"
group = "rack1"

[[services]]
id = "b"
endpoint = "http://127.0.0.1:9"
group = "rack1"

[[services]]
id = "c"
endpoint = "http://127.0.0.1:9"
group = "rack2"
"""


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("state")
    write_scenario(d / "faultwatch.db")
    (d / "rack.toml").write_text(CONFIG, encoding="utf-8")
    return d


def run(state: Path, *args: str, module: str = "core.cli") -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FAULTWATCH_STATE_DIR": str(state),
           "FAULTWATCH_CONFIG": str(state / "absent.toml"), "QT_QPA_PLATFORM": "offscreen"}
    period = ["--since", iso_utc(PERIOD[0]), "--until", iso_utc(PERIOD[1])]
    return subprocess.run([sys.executable, "-m", module, "report", *period, "--config", str(state / "rack.toml"),
                           *args], cwd=ROOT, env=env, capture_output=True, timeout=60)


def test_json_to_stdout(state: Path) -> None:
    proc = run(state, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["period"] == {"since": iso_utc(PERIOD[0]), "until": iso_utc(PERIOD[1])}
    assert [(s["id"], s["group"], s["availability_pct"]) for s in doc["services"]] == [
        ("a", "rack1", 90.97), ("b", "rack1", 95.539), ("c", "rack2", 100.0)]
    assert [o["service"] for o in doc["outages"]] == ["b", "a", "a"]
    assert doc["fleet"]["outages"] == 3 and doc["fleet"]["ttr_s"] == 115.0


def test_group_and_service_filters(state: Path) -> None:
    doc = json.loads(run(state, "--format", "json", "--group", "rack2").stdout)
    assert [s["id"] for s in doc["services"]] == ["c"] and doc["outages"] == []
    doc = json.loads(run(state, "--format", "json", "--service", "b").stdout)
    assert [s["id"] for s in doc["services"]] == ["b"] and len(doc["outages"]) == 1


def test_csv_file(state: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    proc = run(state, "--format", "csv", "--out", str(out))
    assert proc.returncode == 0 and proc.stdout == b""
    figures, outages = out.read_text(encoding="utf-8").split("\n\n")
    rows = list(csv.DictReader(io.StringIO(figures.split("\n", 1)[1])))
    assert rows[3]["up_pct"] == "93.311"  # a: (2720 + 70) / 2990
    assert [(r["level"], r["id"], r["availability_pct"], r["outages"]) for r in rows] == [
        ("fleet", "", "95.167", "3"), ("group", "rack1", "93.134", "3"), ("group", "rack2", "100.0", "0"),
        ("service", "a", "90.97", "2"), ("service", "b", "95.539", "1"), ("service", "c", "100.0", "0")]
    lost = list(csv.DictReader(io.StringIO(outages)))
    assert [(r["service"], r["duration_s"], r["end_reason"]) for r in lost] == [
        ("b", "120.0", "recovered"), ("a", "100.0", "recovered"), ("a", "100.0", "period_end")]
    assert "restart succeeded (attempt 2)" in lost[1]["steps"]


def test_html_is_one_self_contained_file(state: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert run(state, "--format", "html", "--out", str(out)).returncode == 0
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 2 and "<style>" in html
    for external in ("src=", "href=", "@import", "url("):
        assert external not in html
    assert "service_unavailable: HTTP 503" in html and "90.970 %" in html


def test_pdf_through_the_installed_entry_point(state: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.pdf"
    proc = run(state, "--format", "pdf", "--out", str(out), module="gui.launcher")
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) not installed: PDF not rendered")
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(out), str(tmp_path / "page")], check=True, timeout=60)
    pages = sorted(tmp_path.glob("page*.png"))
    assert pages and all(p.stat().st_size > 1000 for p in pages)
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
        assert "Faultwatch report" in text and "Outages (3)" in text


def test_pdf_to_stdout(state: Path) -> None:
    proc = run(state, "--format", "pdf", module="gui.launcher")
    assert proc.returncode == 0 and proc.stdout.startswith(b"%PDF")


def test_core_entry_without_qt_refuses_pdf_in_one_line(state: Path) -> None:
    proc = run(state, "--format", "pdf")
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert len(err.splitlines()) == 1 and "gui.launcher" in err


@pytest.mark.parametrize("args, message", [
    (["--since", "yesterday"], "'yesterday' is not a duration like 24h"),
    (["--until", "2026-13-40"], "is not an ISO 8601 time"),
    (["--state-dir", "{tmp}/absent/state"], "no journal here"),
])
def test_bad_input_is_one_line_and_exit_2(state: Path, tmp_path: Path, args: list[str], message: str) -> None:
    proc = run(state, "--format", "json", *(a.replace("{tmp}", str(tmp_path)) for a in args))
    err = proc.stderr.decode()
    assert proc.returncode == 2 and len(err.splitlines()) == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "absent").exists()  # a report reads; it creates no state directory


def test_relative_since(state: Path) -> None:
    proc = run(state, "--format", "json", "--since", "30m")
    doc = json.loads(proc.stdout)
    assert doc["period"]["since"] == iso_utc(PERIOD[1] - 1800)
