"""The `faultwatch` command: argument parsing and the choice of GUI, headless or a one-shot task.

The core never imports the GUI, not even lazily: a window, when one is wanted, comes from the
`WindowLauncher` the caller passes in. The installed `faultwatch` command is gui/launcher.py, which
passes one; without it (a headless install) asking for a window is one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Protocol

from core import __version__, paths
from core.config import ConfigError, load_config, parse_listen, summary
from core.logs import categories, enable_debug

if TYPE_CHECKING:
    from core.report_cli import PdfWriter

_START = time.perf_counter()


class WindowLauncher(Protocol):
    """What the command line needs from a GUI: a console window, and a window for a bad config."""

    def run_gui(self, *, config_path: str | None, demo: bool, wall: bool, theme: str | None, startup_probe: bool,
                state_dir: str | None, demo_devices: int | None, process_start: float) -> int: ...

    def show_config_error(self, message: str) -> int: ...

EPILOG = """\
examples:
  faultwatch --demo                      open the console on the simulated demo rack
  faultwatch --config rack.toml --wall   wall display for a rack
  faultwatch --headless --config rack.toml --events -    JSON lines on stdout
  faultwatch --check-config rack.toml    validate a config and print a summary
  faultwatch --attach https://rack-a:8765 --attach https://rack-b:8765 --ca-file site-ca.pem
                                         one console for engines running elsewhere
  faultwatch report --since 24h --format html --out shift.html   availability report (report --help)
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="faultwatch", description="Fault-tolerance console for fleets of HTTP services and IoT devices.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"faultwatch {__version__}")
    p.add_argument("--config", metavar="PATH", help="TOML config (default: $FAULTWATCH_CONFIG or the "
                                                   "platform config dir's faultwatch.toml)")
    p.add_argument("--demo", action="store_true", help="run on the built-in simulated demo rack")
    p.add_argument("--demo-devices", type=int, metavar="N", help="demo with a generated fleet of N devices")
    p.add_argument("--headless", action="store_true", help="no window: stream events to the terminal")
    p.add_argument("--duration", type=float, metavar="S", help="headless: stop after S seconds")
    p.add_argument("--events", metavar="PATH|-", help="headless: write events as JSON lines to PATH (- = stdout)")
    p.add_argument("--listen", metavar="HOST:PORT", help="API/heartbeat listener address (default from config)")
    p.add_argument("--state-dir", metavar="DIR", help="journal and token directory "
                                                      "(default: $FAULTWATCH_STATE_DIR or the platform's)")
    p.add_argument("--wall", action="store_true", help="start in wall-display mode")
    p.add_argument("--theme", choices=("light", "dark"), help="GUI theme")
    p.add_argument("--check-config", metavar="PATH", help="validate PATH, print a summary, exit 0 (or 2)")
    p.add_argument("--self-test", action="store_true",
                   help="run one full fail/recover cycle on a simulated device; exit 0 if it completed")
    p.add_argument("--startup-probe", action="store_true", help="GUI: print time to first paint and quit")
    p.add_argument("--attach", metavar="URL", action="append", default=[],
                   help="show the engine at URL instead of starting one (repeatable)")
    p.add_argument("--token-file", metavar="PATH", help="--attach: file with the token (else the keyring, "
                                                        "then $FAULTWATCH_TOKEN)")
    p.add_argument("--ca-file", metavar="PATH", help="--attach: CA certificate(s) that signed the engines' TLS")
    p.add_argument("--engine", choices=("thread", "process"),
                   help="where the console's own engine runs: a worker thread of the window's process, or a "
                        "child process it attaches to (default: $FAULTWATCH_ENGINE, else process)")
    p.add_argument("--log-level", default=os.environ.get("FAULTWATCH_LOG", "INFO"),
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.add_argument("--debug", metavar="CATEGORIES",
                   help=f"debug output for these log categories, comma-separated ({', '.join(categories())}, or all)")
    return p


def _display_available() -> tuple[bool, str]:
    if os.environ.get("QT_QPA_PLATFORM"):
        return True, ""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False, "no display found (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    return True, ""


def _check_arguments(args: argparse.Namespace) -> str | None:
    """Problems with the command line that would otherwise surface deep inside start-up."""
    if args.listen is not None:
        try:
            parse_listen(args.listen)
        except ConfigError:
            return f"--listen: {args.listen!r} is not host:port"
    if args.duration is not None and args.duration <= 0:
        return f"--duration: must be greater than 0, got {args.duration:g}"
    if args.demo_devices is not None and not 1 <= args.demo_devices <= 10_000:
        return f"--demo-devices: must be between 1 and 10000, got {args.demo_devices}"
    if args.attach:
        if args.headless:
            return "--attach opens a console; a headless engine is started without it"
        from core.remote import check_engine_url
        for url in args.attach:
            problem = check_engine_url(url)
            if problem:
                return f"--attach: {problem}"
    try:
        paths.state_dir(args.state_dir)
    except OSError as exc:
        where = args.state_dir or "the state directory"
        return f"cannot use {where} for the journal: {exc.strerror or exc}"
    return None


def _setup_logging(level: str, debug: str | None) -> str | None:
    """Returns a one-line problem with --debug, or None."""
    logging.basicConfig(level=getattr(logging, level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if debug:
        try:
            enable_debug(debug)
        except ValueError as exc:
            return f"--debug: {exc}"
        logging.getLogger().setLevel(logging.DEBUG)
        for handler in logging.getLogger().handlers:
            handler.setLevel(logging.DEBUG)
        # The root passes everything; categories not asked for stay at the chosen level.
        for name in categories():
            logger = logging.getLogger(f"core.{name}")
            if logger.level == logging.NOTSET:
                logger.setLevel(getattr(logging, level))
        for noisy in ("asyncio", "aiohttp", "pymodbus", "pysnmp", "asyncua", "apprise", "urllib3"):
            logging.getLogger(noisy).setLevel(getattr(logging, level))
    return None


def main(argv: list[str] | None = None, window: WindowLauncher | None = None, *,
         pdf_writer: PdfWriter | None = None) -> int:
    """`pdf_writer`: Qt's, for `report --format pdf`, handed in by gui/launcher.py like `window`."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["report"]:
        from core.report_cli import report_main
        return report_main(argv[1:], pdf_writer=pdf_writer)
    args = build_parser().parse_args(argv)
    if args.check_config:
        try:
            config = load_config(args.check_config)
            print(summary(config))
            from core.checks.registry import preflight
            for warning in preflight(config.services):  # e.g. ping without an ICMP socket here
                print(f"  warning: {warning}")
            return 0
        except ConfigError as exc:
            print(f"faultwatch: {exc}", file=sys.stderr)
            return 2
    problem = _setup_logging(args.log_level, args.debug) or _check_arguments(args)
    if problem:
        print(f"faultwatch: {problem}", file=sys.stderr)
        return 2
    if args.self_test:
        from core.selftest import run_self_test
        return run_self_test(args.state_dir)
    if args.attach:
        return _attach(args, window)
    if args.engine:
        os.environ["FAULTWATCH_ENGINE"] = args.engine  # read by gui.app when it builds the engine
    demo = args.demo or args.demo_devices is not None
    config_path = args.config
    if not demo and config_path is None:
        default = paths.default_config_path()
        if default.exists():
            config_path = str(default)
        else:
            print(f"faultwatch: no config at {default}; running the demo rack (use --config PATH)",
                  file=sys.stderr)
            demo = True
    if config_path is not None and not demo:
        try:
            load_config(config_path)
        except ConfigError as exc:
            if args.headless or not _display_available()[0] or window is None:
                print(f"faultwatch: {exc}", file=sys.stderr)
                return 2
            return int(window.show_config_error(str(exc)))
    headless = args.headless
    if not headless:
        ok, why = _display_available()
        if not ok:
            print(f"faultwatch: {why}; running headless (Ctrl+C to stop)", file=sys.stderr)
            headless = True
    if headless:
        from core.headless import headless_main
        return headless_main(config_path, demo=demo, devices=args.demo_devices, duration=args.duration,
                             events=args.events, listen=args.listen, state_dir=args.state_dir)
    if window is None:
        print("faultwatch: this installation has no console window (install faultwatch[gui]); "
              "use --headless", file=sys.stderr)
        return 2
    return int(window.run_gui(config_path=None if demo else config_path, demo=demo, wall=args.wall,
                              theme=args.theme, startup_probe=args.startup_probe, state_dir=args.state_dir,
                              demo_devices=args.demo_devices, process_start=_START))


def _attach(args: argparse.Namespace, window: WindowLauncher | None) -> int:
    """`--attach URL...`: a console for engines running elsewhere; no engine of its own."""
    from core.token import console_token

    tokens: list[tuple[str, str]] = []
    for url in args.attach:
        try:
            token, _where = console_token(url, args.token_file)
        except ValueError as exc:
            print(f"faultwatch: {exc}", file=sys.stderr)
            return 2
        if not token:
            print(f"faultwatch: no token for {url}: use --token-file, the keyring or $FAULTWATCH_TOKEN",
                  file=sys.stderr)
            return 2
        tokens.append((url, token))
    ok, why = _display_available()
    if not ok:
        print(f"faultwatch: {why}; --attach needs a display", file=sys.stderr)
        return 2
    run_attached = getattr(window, "run_attached", None)
    if run_attached is None:
        print("faultwatch: this installation has no console window (install faultwatch[gui]); "
              "--attach needs one", file=sys.stderr)
        return 2
    return int(run_attached(tokens, ca_file=args.ca_file, wall=args.wall, theme=args.theme,
                            startup_probe=args.startup_probe, process_start=_START))


if __name__ == "__main__":
    sys.exit(main())
