"""The installed `faultwatch` command: core's command line with the parts that need Qt handed in.

core/ never imports gui/; this is where the two meet for the command
line. Nothing Qt is imported here until a part that needs it is used (`--headless` stays Qt-free).
"""

from __future__ import annotations

import sys
from pathlib import Path

from core import cli
from core.report import Report


def _write_pdf(report: Report, path: Path) -> None:
    from gui.report_pdf import write_pdf
    write_pdf(report, path)


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, pdf_writer=_write_pdf)


if __name__ == "__main__":
    sys.exit(main())
