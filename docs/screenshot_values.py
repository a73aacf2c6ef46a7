"""docs/screenshot-values.png: the main window over devices of every check type, offscreen.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshot_values.py [OUT.png]

The rack is the GUI tests' in-memory engine (tests/gui/fake_engine.py: the demo rack plus one device
of each non-HTTP check type), so the shot shows the Check and Value columns, a Modbus PLC's detail
rows and its value chart beside the latency chart, and a reboot in the timeline, without servers.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "gui"))


def main(out: Path) -> None:
    import qasync
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from core.events import ProbeEvent, RebootEvent, ServiceStatus
    from fake_engine import FakeEngine, demo_rack, device_rack, seed_history
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    engine = FakeEngine({**demo_rack(), **device_rack()})
    seed_history(engine)
    w0 = engine.wall
    engine.update("ups", last_reboot_wall=w0 - 15)
    engine.publish(RebootEvent(service="ups", mono=0.0, wall=w0 - 15, check="snmp",
                               reason="sysUpTime went back from 8,640,000 to 1,200"))
    engine.publish(ProbeEvent(service="furnace", mono=0.0, wall=w0 - 30, status=ServiceStatus.HEALTHY,
                              latency_ms=1.8, error=None, consecutive_failures=0, check="modbus", value=41.5))
    engine.publish(ProbeEvent(service="packer", mono=0.0, wall=w0 - 20, status=ServiceStatus.UNHEALTHY,
                              latency_ms=2.1, error="input 7 stayed at 1520 for 3 checks (must_change)",
                              consecutive_failures=3, check="modbus", value=1520))
    engine.drain_events()
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "faultwatch.ini"), QSettings.Format.IniFormat)
        window = MainWindow(engine, settings, now=engine.now, tray=False, sound=False)
        window.resize(1440, 900)
        window.show()
        window.start()

        async def shoot() -> None:
            await window.wait_idle()
            window.select_services(["furnace"])
            await window.wait_idle()
            for _ in range(3):
                await asyncio.sleep(0.2)
                app.processEvents()
            # Scrolled to the check's own rows (register and bounds): what this shot is about.
            window.detail_scroll.ensureWidgetVisible(window.detail.fields["restart_action"])
            window.detail_scroll.ensureWidgetVisible(window.detail.fields["check"], 0, 24)
            window.chart.redraw_now()
            window.value_chart.redraw_now()
            app.processEvents()
            window.grab().save(str(out))

        loop.run_until_complete(shoot())
        window.shutdown()
        window.close()
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshot-values.png")
