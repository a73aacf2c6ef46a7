"""One console, two engines: two real headless `faultwatch` processes (TLS, operator and viewer tokens)
watching a simulated rack each, and the console (offscreen, in this process) attached to both.

Services of both appear grouped by site; a command reaches its own engine only, with the origin
gui@<host>; a viewer token cannot command; a killed engine's rows say UNREACHABLE while the other's
stay live; restarted, its rows are live again and the timeline has every seq, no gap.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from PySide6.QtCore import Qt

from core.events import ActionEvent, BreakerState
from core.multi import MultiEngine
from core.remote import RemoteEngine, default_origin
from core.sim.devices import DeviceSpec
from gui.app import install_engine_controls
from gui.main_window import MainWindow
from gui.service_model import Column
from tests.e2e.conftest import REPO, FaultwatchProcess, SimThread
from tests.tls_helpers import TlsFiles, make_tls_files

pytestmark = pytest.mark.slow

OPERATOR = "e2e-operator-token-abc"
VIEWER = "e2e-viewer-token-xyz"
CHECK_INTERVAL_S = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Site:
    """One headless engine process with its config, state and fixed port (so a restart reuses it)."""

    def __init__(self, name: str, devices: list[str], sim: SimThread, tls: TlsFiles, root: Path) -> None:
        self.name = name
        self.port = free_port()
        self.state = root / name / "state"
        self.config = root / name / "site.toml"
        self.config.parent.mkdir(parents=True)
        lines = ["[fault_detection]", f"check_interval_seconds = {CHECK_INTERVAL_S}", "timeout_seconds = 0.5",
                 "[api]", f'listen = "127.0.0.1:{self.port}"', f'site = "{name}"', "reads_need_token = true",
                 f'tls_cert = "{tls.cert}"', f'tls_key = "{tls.key}"']
        for device in devices:
            lines += ["[[services]]", f'id = "{device}"', f'endpoint = "{sim.base_url(device)}"', 'group = "rack"']
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.process: FaultwatchProcess | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAULTWATCH_")}
        env.update({"FAULTWATCH_TOKEN": OPERATOR, "FAULTWATCH_VIEWER_TOKEN": VIEWER, "PYTHONUNBUFFERED": "1",
                    "FAULTWATCH_CONFIG_DIR": str(self.config.parent)})
        self.process = FaultwatchProcess(["--headless", "--config", str(self.config), "--state-dir",
                                          str(self.state)], env, REPO)
        self.process.wait_for_line("running headless")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()

    def close(self) -> None:
        if self.process is not None:
            self.process.close()


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[tuple[Site, Site, TlsFiles]]:
    tls = make_tls_files(tmp_path / "tls")
    sim = SimThread([DeviceSpec(d) for d in ("a1", "a2", "b1", "b2")])
    a = Site("site-a", ["a1", "a2"], sim, tls, tmp_path)
    b = Site("site-b", ["b1", "b2"], sim, tls, tmp_path)
    try:
        a.start()
        b.start()
        yield a, b, tls
    finally:
        a.close()
        b.close()
        sim.close()


async def until(cond: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def status_word(window: MainWindow, sid: str) -> str:
    row = window.model.row_of(sid)
    assert row is not None, sid
    return str(window.model.index(row, Column.STATUS).data(Qt.ItemDataRole.DisplayRole))


def test_one_console_two_engines(qtbot: Any, qloop: Any, qsettings: Any, sites: tuple[Site, Site, TlsFiles]) -> None:
    a, b, tls = sites
    multi = MultiEngine()
    multi.attach(a.url, OPERATOR, ca_file=str(tls.ca))
    multi.attach(b.url, VIEWER, ca_file=str(tls.ca))  # a site this console may watch but not command
    window = MainWindow(multi, qsettings, confirm=lambda _t, _x: True, tray=False, sound=False,
                        bridge_interval_ms=100)
    qtbot.addWidget(window)
    controls = install_engine_controls(window, multi, qsettings)
    window.start()
    ids = {"site-a/a1", "site-a/a2", "site-b/b1", "site-b/b2"}
    try:
        # ---- both engines' services appear, grouped by site then group, and get checked
        qloop.run(until(lambda: set(window.bridge.snapshots) == ids, "services of both engines"), timeout=30)
        qloop.run(until(lambda: all(status_word(window, s) == "HEALTHY" for s in ids), "all healthy"), timeout=30)
        assert {window.bridge.snapshots[s].group for s in ids} == {"site-a/rack", "site-b/rack"}
        assert controls is not None and controls.label.text() == "site-a live · site-b live"
        assert window.findChild(type(window.named_actions["action_quit"]), "action_connect_engine") is not None

        # ---- a command from the window reaches its own engine only, journaled as gui@<host>
        window.select_services(["site-a/a1"])
        window.named_actions["action_force_open"].trigger()
        qloop.run(window.wait_idle(), timeout=15)
        qloop.run(until(lambda: window.bridge.snapshots["site-a/a1"].breaker.state is BreakerState.FORCED_OPEN,
                        "a1 forced open"), timeout=15)
        probe_a = RemoteEngine(a.url, VIEWER, ca_file=str(tls.ca))
        probe_b = RemoteEngine(b.url, VIEWER, ca_file=str(tls.ca))
        try:
            journal_a = qloop.run(probe_a.journal_events(limit=500), timeout=15)
            journal_b = qloop.run(probe_b.journal_events(limit=500), timeout=15)
            forced_a = [(e.service, e.origin) for e in journal_a
                        if isinstance(e, ActionEvent) and e.command == "force_open"]
            assert forced_a == [("a1", default_origin())]
            assert not [e for e in journal_b if isinstance(e, ActionEvent) and e.command == "force_open"]
            assert all(window.bridge.snapshots[s].breaker.state is BreakerState.CLOSED
                       for s in ("site-a/a2", "site-b/b1", "site-b/b2"))

            # ---- a viewer token reads but cannot command (403 from the real API)
            refused = qloop.run(probe_b.force_open(["b1"], "gui"), timeout=15)
            assert not refused.ok and "may only read" in refused.message
            # ... so the window, attached to site-b with a viewer token, greys its commands out and
            # says why, while site-a's stay available.
            window.select_services(["site-b/b1"])
            restart = window.named_actions["action_restart"]
            assert not restart.isEnabled() and "site-b was attached with a viewer token" in restart.toolTip()
            assert not window.named_actions["action_force_open"].isEnabled()
            window.select_services(["site-a/a2"])
            assert restart.isEnabled() and "viewer" not in restart.toolTip()
        finally:
            qloop.run(probe_a.stop())
            qloop.run(probe_b.stop())

        # ---- kill site-a: its rows say UNREACHABLE within two check intervals; site-b stays live
        checked_b = window.bridge.snapshots["site-b/b1"].checks_total
        # Journaled just before the kill, likely never streamed: the resumed stream must bring them.
        operator_a = RemoteEngine(a.url, OPERATOR, ca_file=str(tls.ca), origin="script@e2e")
        for command in (operator_a.pause, operator_a.resume):
            assert qloop.run(command(["a2"], "gui"), timeout=15).ok
        qloop.run(operator_a.stop())
        a.kill()
        qloop.run(until(lambda: all(status_word(window, s) == "UNREACHABLE" for s in ("site-a/a1", "site-a/a2")),
                        "site-a unreachable", timeout=2 * CHECK_INTERVAL_S), timeout=2 * CHECK_INTERVAL_S + 1)
        assert "engine unreachable (last data" in str(window.bridge.snapshots["site-a/a1"].last_error)
        # The wall covers both engines, a header per site and group; the dead site counts as unknown.
        window.wall_view.update_snapshots(window.bridge.snapshots)
        assert window.wall_view.groups_in_order() == ["site-a/rack", "site-b/rack"]
        assert window.wall_view.summary_counts().get("unknown") == 2
        qloop.run(until(lambda: window.bridge.snapshots["site-b/b1"].checks_total > checked_b + 1,
                        "site-b still checked"), timeout=15)
        assert all(status_word(window, s) == "HEALTHY" for s in ("site-b/b1", "site-b/b2"))
        qloop.run(until(lambda: "site-a unreachable" in controls.label.text(), "engines label"), timeout=5)

        # ---- restart it: rows live again, and the timeline has every seq of site-a, no gap
        a.start()
        qloop.run(until(lambda: all(status_word(window, s) in ("HEALTHY", "PAUSED") or
                                    window.bridge.snapshots[s].breaker.state is BreakerState.FORCED_OPEN
                                    for s in ("site-a/a1", "site-a/a2"))
                        and status_word(window, "site-a/a2") == "HEALTHY", "site-a live again"), timeout=30)
        assert window.bridge.snapshots["site-a/a1"].breaker.state is BreakerState.FORCED_OPEN  # restored
        remote_a = multi.attached[0].remote
        qloop.run(until(lambda: remote_a.connected, "site-a reattached"), timeout=10)
        qloop.run(asyncio.sleep(0.5))  # one more bridge poll moves the replayed events into the timeline
        seqs = sorted({e.seq for e in window.timeline_view.model.events()
                       if e.service == "site-a" or e.service.startswith("site-a/")})
        assert seqs and seqs == list(range(seqs[0], seqs[-1] + 1)), f"gap in site-a's seqs: {seqs}"
        assert seqs[-1] == remote_a.last_seq  # the newest seen is on the timeline
        last_actions = [(e.command, e.origin) for e in window.timeline_view.model.events()
                        if isinstance(e, ActionEvent) and e.service == "site-a/a2"]
        assert last_actions[:2] == [("resume", "script@e2e"), ("pause", "script@e2e")]  # newest first
    finally:
        window.shutdown()
        window.close()
        multi.stop()


def test_faultwatch_attach_as_a_real_process(tmp_path: Path, sites: tuple[Site, Site, TlsFiles]) -> None:
    """`faultwatch --attach URL --attach URL` (the installed entry point) paints and exits 0."""
    import subprocess

    a, b, tls = sites
    token_file = tmp_path / "token"
    token_file.write_text(OPERATOR + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAULTWATCH_")}
    env.update({"QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "PYTHONPATH": str(REPO)})
    proc = subprocess.run([sys.executable, "-m", "gui.launcher", "--attach", a.url, "--attach", b.url,
                           "--token-file", str(token_file), "--ca-file", str(tls.ca), "--startup-probe"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "startup_to_first_paint_s=" in proc.stdout
    assert OPERATOR not in proc.stderr + proc.stdout
    remembered = list((tmp_path / "xdg").rglob("*.conf")) + list((tmp_path / "xdg").rglob("*.ini"))
    assert remembered and any(a.url in p.read_text() for p in remembered)
    assert not any(OPERATOR in p.read_text() for p in remembered)
