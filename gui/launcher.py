"""The `faultwatch` command as installed: core's command line, with the console window plugged in.

Importing this module loads no Qt: `--headless`, `--check-config` and `--self-test` stay light, and
an installation without the GUI's packages still runs headless. Qt is imported only when a window is
actually opened; if it cannot be, that is one line and exit 2.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from core import cli

if TYPE_CHECKING:
    from core.report import Report


class _Window:
    """core.cli.WindowLauncher backed by gui.app, imported on first use."""

    def run_gui(self, *, config_path: str | None, demo: bool, wall: bool, theme: str | None, startup_probe: bool,
                state_dir: str | None, demo_devices: int | None, process_start: float) -> int:
        app = _import_app()
        if app is None:
            return 2
        return int(app.run_gui(config_path=config_path, demo=demo, wall=wall, theme=theme,
                               startup_probe=startup_probe, state_dir=state_dir, demo_devices=demo_devices,
                               process_start=process_start))

    def run_attached(self, engines: list[tuple[str, str]], *, ca_file: str | None, wall: bool,
                     theme: str | None, startup_probe: bool, process_start: float) -> int:
        """`faultwatch --attach URL...`: the console for engines running elsewhere."""
        app = _import_app()
        if app is None:
            return 2
        return int(app.run_attached(engines, ca_file=ca_file, wall=wall, theme=theme, startup_probe=startup_probe,
                                    process_start=process_start))

    def show_config_error(self, message: str) -> int:
        app = _import_app()
        if app is None:
            print(f"faultwatch: {message}", file=sys.stderr)
            return 2
        return int(app.show_config_error(message))


# The `gui` extra. gui.app imports them only inside run_gui (start-up time), so importing gui.app
# alone proves nothing: look them up first, without importing them.
_GUI_PACKAGES = ("PySide6", "qasync", "pyqtgraph")


def _import_app():  # type: ignore[no-untyped-def]
    missing = next((name for name in _GUI_PACKAGES if importlib.util.find_spec(name) is None), None)
    try:
        if missing is not None:
            raise ImportError(name=missing)
        import gui.app as app
    except ImportError as exc:
        print(f"faultwatch: the console window cannot start ({exc.name or exc} is missing: install "
              f"faultwatch[gui]); use --headless", file=sys.stderr)
        return None
    return app


def _write_pdf(report: Report, path: Path) -> None:
    """core.report_cli.PdfWriter: Qt's PDF writer, imported only for `report --format pdf`."""
    from gui.report_pdf import write_pdf
    write_pdf(report, path)


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, window=_Window(), pdf_writer=_write_pdf)


if __name__ == "__main__":
    sys.exit(main())
