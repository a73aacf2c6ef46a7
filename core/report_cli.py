"""`faultwatch report`: the command-line front of core/report.py.

Reads the state directory's journal read-only (also while an engine runs) and writes JSON, CSV,
HTML or PDF. PDF needs Qt, which core never imports: the caller hands in a `PdfWriter` (the installed
`faultwatch` command passes gui/report_pdf.py's); without one, `--format pdf` is a one-line error.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import platformdirs

from core import paths
from core.config import Config, ConfigError, load_config
from core.report import DEFAULT_GAP_S, Report, ReportError, ReportRequest, ServiceInfo, load_report
from core.report_render import render_csv, render_html, render_json

PdfWriter = Callable[[Report, Path], None]

FORMATS = ("csv", "html", "pdf", "json")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86_400, "w": 604_800}


class UsageError(Exception):
    """A bad argument; the message is one line."""


def parse_when(text: str, now: float, *, relative: bool) -> float:
    """`24h`, `90m`, `7d` (before `now`, when `relative`) or an ISO 8601 time (UTC unless it says)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*", text)
    if m and relative:
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        hint = "a duration like 24h, 7d, 90m or " if relative else ""
        raise UsageError(f"{text!r} is not {hint}an ISO 8601 time like 2026-11-30T08:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="faultwatch report",
        description="Availability, outages, time to detect and recover, restarts, per device, group and fleet.",
        epilog="examples:\n  faultwatch report --since 24h --format html --out shift.html\n"
               "  faultwatch report --since 7d --group rack-a --format pdf --out week.pdf\n"
               "  faultwatch report --since 2026-11-30T06:00Z --until 2026-11-30T14:00Z --format json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--since", default="24h", metavar="WHEN", help="start: a duration before --until (24h, 7d, "
                                                                  "90m) or an ISO time (default 24h)")
    p.add_argument("--until", metavar="ISO", help="end, ISO 8601 (default: now)")
    p.add_argument("--group", metavar="G", help="only this group (rack)")
    p.add_argument("--service", metavar="ID", help="only this service")
    p.add_argument("--format", required=True, choices=FORMATS, help="output format")
    p.add_argument("--out", metavar="PATH", help="write here (default: standard output)")
    p.add_argument("--state-dir", metavar="DIR", help="journal directory (default: $FAULTWATCH_STATE_DIR or "
                                                      "the platform's)")
    p.add_argument("--config", metavar="PATH", help="config, for groups and failure thresholds (default: "
                                                   "$FAULTWATCH_CONFIG or the platform's, if present)")
    return p


def request_from_config(config: Config | None, since: float, until: float, group: str | None = None,
                        service: str | None = None) -> ReportRequest:
    """A ReportRequest that knows the configured services' groups, thresholds and check intervals."""
    if config is None:
        return ReportRequest(since=since, until=until, group=group, service=service)
    infos = {s.id: ServiceInfo(s.group, s.fault_detection.max_failures) for s in config.services}
    # A running engine is silent at most a check interval, or (every breaker open at once) a breaker
    # timeout plus an interval; an engine gap must be longer than that.
    slowest = max((s.fault_detection.check_interval_seconds for s in config.services), default=0.0)
    longest_open = max((s.circuit_breaker.timeout_seconds for s in config.services), default=0.0)
    quiet = max(2.0 * slowest, longest_open + slowest)
    return ReportRequest(since=since, until=until, group=group, service=service, services=infos,
                         default_max_failures=config.fault_detection.max_failures,
                         gap_s=max(DEFAULT_GAP_S, 3.0 * slowest),
                         fine_gap_s=max(30.0, 1.5 * quiet))


def _load_config(explicit: str | None) -> Config | None:
    if explicit:
        return load_config(explicit)  # ConfigError goes to the caller: the user named this file
    path = paths.default_config_path()
    if not path.exists():
        return None
    try:
        return load_config(str(path))
    except ConfigError as exc:
        print(f"faultwatch report: ignoring the default config ({exc}); groups come from the journal",
              file=sys.stderr)
        return None


def report_main(argv: Sequence[str], *, pdf_writer: PdfWriter | None = None, now: float | None = None) -> int:
    """Run `faultwatch report ARGV`; 0 on success, 2 with one line on stderr otherwise."""
    args = build_parser().parse_args(list(argv))
    try:
        return _run(args, pdf_writer, time.time() if now is None else now)
    except (UsageError, ReportError, ConfigError) as exc:
        print(f"faultwatch report: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"faultwatch report: {exc.filename or ''}: {exc.strerror or exc}".replace(": : ", ": "), file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, pdf_writer: PdfWriter | None, now: float) -> int:
    if args.format == "pdf" and pdf_writer is None:
        raise UsageError("--format pdf needs Qt's PDF writer, which this entry point does not load; run the "
                         "installed `faultwatch` command (or `python -m gui.launcher report ...`)")
    until = parse_when(args.until, now, relative=False) if args.until else now
    since = parse_when(args.since, until, relative=True)
    if since >= until:
        raise UsageError("--since must be before --until")
    config = _load_config(args.config)
    journal = _journal_path(config.journal.path if config else "", args.state_dir)
    request = request_from_config(config, since, until, args.group, args.service)
    if args.service and config is not None and args.service not in request.services:
        print(f"faultwatch report: note: {args.service!r} is not in the config; reporting what the journal has",
              file=sys.stderr)
    report = load_report(journal, request)
    if not report.services and (args.group or args.service):
        print(f"faultwatch report: note: no {'group' if args.group else 'service'} "
              f"{args.group or args.service!r} in this period", file=sys.stderr)
    if args.format == "pdf":
        assert pdf_writer is not None
        if args.out and args.out != "-":
            pdf_writer(report, Path(args.out))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                target = Path(tmp) / "report.pdf"
                pdf_writer(report, target)
                sys.stdout.buffer.write(target.read_bytes())
                sys.stdout.flush()
        return 0
    text = {"json": render_json, "csv": render_csv, "html": render_html}[args.format](report)
    if args.out and args.out != "-":
        _write_atomically(Path(args.out), text)
    else:
        sys.stdout.write(text)
    return 0


def _journal_path(configured: str, state_override: str | None) -> Path:
    """Where the journal is, like paths.journal_path but creating nothing: a report only reads."""
    if configured:
        return Path(configured).expanduser()
    chosen = state_override or os.environ.get(paths.STATE_DIR_ENV) or ""
    if chosen:
        return Path(chosen).expanduser() / paths.JOURNAL_FILENAME
    return Path(platformdirs.user_state_dir(paths.APP_NAME, appauthor=False)) / paths.JOURNAL_FILENAME


def _write_atomically(path: Path, text: str) -> None:
    """A half-written report never replaces a good one."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8", newline="")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
