"""Screenshot of the Reports view (docs/screenshot-reports.png) from a state directory's journal.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshot_reports.py STATE_DIR [--config TOML] [--tab N]

Run the demo first so the journal has something to say, e.g.
`faultwatch --headless --demo --duration 900 --state-dir /tmp/demo-state` (the demo writes its config
to STATE_DIR/demo.toml, which gives the groups).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

from core.config import load_config  # noqa: E402
from gui import theme  # noqa: E402
from gui.reports_view import ReportsView  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("state_dir")
    ap.add_argument("--config")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "screenshot-reports.png"))
    ap.add_argument("--tab", type=int, default=0)
    args = ap.parse_args()
    app = QApplication(["faultwatch"])
    theme.apply_theme(app, theme.theme_named("light"))
    state = Path(args.state_dir)
    cfg_path = args.config or (str(state / "demo.toml") if (state / "demo.toml").exists() else None)
    config = load_config(cfg_path) if cfg_path else None
    view = ReportsView(lambda: state / "faultwatch.db", lambda: config)
    view.resize(1400, 900)
    view.show()
    # The journal's own span (a demo run), so the picture is not mostly "engine not running".
    conn = sqlite3.connect(f"file:{state / 'faultwatch.db'}?mode=ro", uri=True)
    first, last = conn.execute("SELECT min(wall), max(wall) FROM events").fetchone()
    conn.close()
    view.set_custom_period(float(first) - 1, float(last) + 1)
    while view.report is None and "✖" not in view.status.text():
        app.processEvents()
    view.tabs.setCurrentIndex(args.tab)
    for _ in range(20):
        app.processEvents()
    view.grab().save(args.out)
    print(args.out, view.status.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
