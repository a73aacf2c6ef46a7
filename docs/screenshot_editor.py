"""docs/screenshot-editor.png and docs/screenshot-import.png: the device editor and an import preview
on the lab-rack example, offscreen.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshot_editor.py

It edits a copy of resources/examples/lab-rack.toml (nothing is saved) with one wrong field, so the
live validation shows, and runs Test against a simulated device on loopback.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    import qasync
    from PySide6.QtWidgets import QApplication, QLineEdit

    from core.config_edit import ConfigFile, preview_csv
    from core.sim.devices import DeviceSpec
    from core.sim.server import SimServer
    from gui.device_actions import ImportPreviewDialog
    from gui.device_editor import DeviceEditor

    app = QApplication.instance() or QApplication(sys.argv[:1])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lab-rack.toml"
        shutil.copy(ROOT / "resources" / "examples" / "lab-rack.toml", path)

        async def shoot() -> None:
            sim = SimServer([DeviceSpec(id="dut-1", name="Device under test 1", group="bench-a")])
            await sim.start()
            try:
                cf = ConfigFile.read(path)
                table = cf.service("dut-1") or {}
                table["endpoint"] = sim.base_url("dut-1")
                dialog = DeviceEditor(cf, original_id="dut-1", table=table)
                dialog.resize(1040, 720)
                dialog.show()
                task = dialog.start_test()
                if task is not None:
                    await task
                heartbeat = dialog.findChild(QLineEdit, "editor_health_path")
                assert heartbeat is not None
                heartbeat.setText("health")
                dialog.validate_now()
                for _ in range(5):
                    app.processEvents()
                    await asyncio.sleep(0.05)
                out = ROOT / "docs" / "screenshot-editor.png"
                dialog.grab().save(str(out))
                print(f"wrote {out}")
                dialog.close()
                csv_text = ("id,name,group,tags,check_type,endpoint,health_path,restart\n"
                            "psu-3,Bench PSU 3,bench-a,psu,http,http://127.0.0.1:9100/dev/psu-3,,"
                            "POST http://127.0.0.1:9100/dev/psu-3/restart\n"
                            "dut-1,Device under test 1 again,bench-a,,,http://127.0.0.1:9100/dev/dut-9,,\n"
                            "dut-4,Device under test 4,bench-b,dut,,ftp://127.0.0.1/dut-4,,\n"
                            "dut-5,Device under test 5,bench-b,dut,,http://127.0.0.1:9100/dev/dut-5,status,\n"
                            "scope-2,Scope 2,bench-b,,,http://127.0.0.1:9100/dev/scope-2,,\n")
                preview = ImportPreviewDialog(preview_csv(cf, csv_text), "new-bench.csv")
                preview.resize(820, 300)
                preview.show()
                for _ in range(3):
                    app.processEvents()
                    await asyncio.sleep(0.05)
                shot = ROOT / "docs" / "screenshot-import.png"
                preview.grab().save(str(shot))
                print(f"wrote {shot}")
                preview.close()
            finally:
                await sim.stop()

        loop.run_until_complete(shoot())


if __name__ == "__main__":
    main()
