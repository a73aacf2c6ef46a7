"""The console's own engine as a child process (core/child.py): real `faultwatch --headless` children
on loopback, attached over the real API and stream.

Started, read and commanded; killed → said, rows unreachable, started again and live; stopped →
gone; the console process dying → the child goes too; a config edit reloads over the API with its
one-line refusal for a bad file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.processes import alive
from core.child import ENGINE_NICE, ChildEngine, ChildEngineUnsuitable, child_engine_wanted, engine_command
from core.config import ConfigError
from core.events import BreakerState
from core.wire import is_unreachable

REPO = Path(__file__).resolve().parents[2]


def wait_until(cond: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Waits for a state (never proves a timing rule: the bound is only against hanging)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)




@pytest.fixture
def child_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAULTWATCH_TOKEN", "child-test-token")
    monkeypatch.delenv("FAULTWATCH_VIEWER_TOKEN", raising=False)


@pytest.fixture
def demo_child(tmp_path: Path, child_env: None) -> Iterator[ChildEngine]:
    child = ChildEngine(demo_devices=12, state_dir=str(tmp_path / "state"))
    child.start()
    try:
        yield child
    finally:
        child.stop()


def test_child_engine_is_read_and_commanded_then_stopped(demo_child: ChildEngine) -> None:
    wait_until(lambda: len(demo_child.snapshots()) == 12, what="the child's 12 services")
    sid = sorted(demo_child.snapshots())[0]
    assert "/" not in sid  # the console's own engine keeps unqualified ids
    result = asyncio.run(demo_child.force_open([sid], "gui@test"))
    assert result.ok, result.message
    wait_until(lambda: demo_child.snapshots()[sid].breaker.state is BreakerState.FORCED_OPEN, what="forced open")
    pid = demo_child.pid
    assert pid is not None and alive(pid)
    # Below the window's priority, so the window stays responsive when the machine is busy.
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + ENGINE_NICE)
    demo_child.stop()
    assert not alive(pid)
    assert demo_child.state == "stopped"


def test_a_child_that_dies_is_said_unreachable_and_started_again(demo_child: ChildEngine) -> None:
    states: list[str] = []
    demo_child.listeners.append(states.append)
    wait_until(lambda: len(demo_child.snapshots()) == 12 and demo_child.connected, what="the child's services")
    first = demo_child.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: demo_child.exits == 1, what="the exit noticed")
    assert any("exited" in s and "restarting" in s for s in states), states
    wait_until(lambda: all(is_unreachable(s) for s in demo_child.snapshots().values()), what="rows unreachable")
    wait_until(lambda: demo_child.restarts == 1 and demo_child.connected, what="the child running again")
    assert demo_child.pid != first and states[-1] == "running"
    wait_until(lambda: not any(is_unreachable(s) for s in demo_child.snapshots().values())
               and len(demo_child.snapshots()) == 12, what="rows live again")


def test_a_spawned_child_is_the_one_start_waits_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The console spawns its engine before building the window; start() then waits for that process
    (not a second one), with the token from the state directory's file, made before the child ran."""
    monkeypatch.delenv("FAULTWATCH_TOKEN", raising=False)
    monkeypatch.delenv("FAULTWATCH_VIEWER_TOKEN", raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")  # no OS keyring here
    child = ChildEngine(demo_devices=3, state_dir=str(tmp_path / "state"))
    child.spawn()
    try:
        spawned = child.pid
        assert spawned is not None and alive(spawned)
        token_file = tmp_path / "state" / "api-token"
        assert token_file.read_text().strip()  # made by the console, which the child then reads
        child.spawn()  # a second call does nothing
        assert child.pid == spawned
        child.start()
        assert child.pid == spawned and child.state == "running"
        wait_until(lambda: len(child.snapshots()) == 3, what="the child's 3 services")
        sid = sorted(child.snapshots())[0]
        assert asyncio.run(child.force_open([sid], "gui@test")).ok  # the token is the child's too
    finally:
        child.stop()
    assert not alive(spawned)


def test_a_spawned_child_that_is_never_started_is_stopped(tmp_path: Path, child_env: None) -> None:
    child = ChildEngine(demo_devices=3, state_dir=str(tmp_path / "state"))
    child.spawn()
    pid = child.pid
    assert pid is not None
    child.stop()
    assert not alive(pid) and child.state == "stopped"


def test_the_child_goes_when_the_console_process_dies(tmp_path: Path, child_env: None) -> None:
    script = ("import os, sys; from core.child import ChildEngine\n"
              f"c = ChildEngine(demo_devices=3, state_dir={str(tmp_path / 'state')!r}); c.start()\n"
              "print(c.pid, flush=True); sys.stdin.readline(); os._exit(0)\n")
    console = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, text=True, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        assert console.stdout is not None and console.stdin is not None
        pid = int(console.stdout.readline())
        assert alive(pid)
        console.stdin.write("\n")
        console.stdin.flush()
        console.wait(30)
        wait_until(lambda: not alive(pid), what="the orphaned engine to stop")
    finally:
        console.kill()


def _config(tmp_path: Path, services: list[str], listen: str = "127.0.0.1:0", extra: str = "") -> Path:
    lines = ["[fault_detection]", "check_interval_seconds = 0.5", "timeout_seconds = 0.5",
             "[api]", f'listen = "{listen}"', extra]
    for sid in services:
        # Nothing listens on port 9 of loopback: the checks fail, which is all a config test needs.
        lines += ["[[services]]", f'id = "{sid}"', 'endpoint = "http://127.0.0.1:9/health"']
    path = tmp_path / "site.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_config_edit_reloads_the_child_over_its_api(tmp_path: Path, child_env: None) -> None:
    path = _config(tmp_path, ["a"])
    child = ChildEngine(str(path), state_dir=str(tmp_path / "state"))
    child.start()
    try:
        assert child.config_path == str(path)
        wait_until(lambda: set(child.snapshots()) == {"a"}, what="service a")
        _config(tmp_path, ["a", "b"])
        result = asyncio.run(child.config_edit(str(path), "gui@test", "added b", "b"))
        assert result.ok, result.message
        wait_until(lambda: set(child.snapshots()) == {"a", "b"}, what="service b after the reload")
        path.write_text("[fault_detection]\ncheck_interval_seconds = -1\n", encoding="utf-8")
        refused = asyncio.run(child.reload(str(path), "gui@test"))
        assert not refused.ok and "check_interval_seconds" in refused.message
        assert "\n" not in refused.message
        assert set(child.snapshots()) == {"a", "b"}  # the running config stays
    finally:
        child.stop()


def test_a_bad_config_is_refused_before_any_process(tmp_path: Path, child_env: None) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[fault_detection]\ncheck_interval_seconds = -1\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        ChildEngine(str(path), state_dir=str(tmp_path / "state"))


def test_a_child_that_cannot_start_says_why(tmp_path: Path, child_env: None) -> None:
    path = _config(tmp_path, ["a"])
    child = ChildEngine(str(path), state_dir=str(tmp_path / "state"),
                        argv=[sys.executable, "-c", "import sys; print('faultwatch: port taken', file=sys.stderr);"
                                                    " sys.exit(2)"])
    with pytest.raises(OSError, match="port taken"):
        child.start()
    child.stop()


def test_a_tls_config_stays_on_the_thread(tmp_path: Path, child_env: None) -> None:
    from tests.tls_helpers import make_tls_files

    tls = make_tls_files(tmp_path)
    path = _config(tmp_path, ["a"], extra=f'tls_cert = "{tls.cert}"\ntls_key = "{tls.key}"')
    with pytest.raises(ChildEngineUnsuitable):
        ChildEngine(str(path), state_dir=str(tmp_path / "state"))


def test_the_choice_of_where_the_engine_runs() -> None:
    assert child_engine_wanted("process") and not child_engine_wanted("thread", {"FAULTWATCH_ENGINE": "process"})
    assert child_engine_wanted(None, {"FAULTWATCH_ENGINE": "process"})
    assert child_engine_wanted(None, {})  # the default: a child process
    assert not child_engine_wanted(None, {"FAULTWATCH_ENGINE": "thread"})
    argv = engine_command("/x.toml", demo=False, demo_devices=None, state_dir="/s", listen=None)
    assert "--headless" in argv and argv[argv.index("--config") + 1] == "/x.toml"
    assert argv[argv.index("--state-dir") + 1] == "/s" and "--listen" not in argv


def test_the_child_engine_answers_everything_the_thread_engine_does() -> None:
    """The window reaches its own engine through these; a method added to EngineThread and not here
    would be missing when the engine runs as a child (the default)."""
    from core.runner import EngineThread

    construction = {"engine", "for_demo", "from_path", "runtime", "dropped_events"}
    thread = {n for n in dir(EngineThread) if not n.startswith("_")} - construction
    child = {n for n in dir(ChildEngine) if not n.startswith("_")}
    assert thread <= child, sorted(thread - child)


def test_scheduled_maintenance_is_read_from_the_child(demo_child: ChildEngine) -> None:
    wait_until(lambda: demo_child.connected, what="the stream")
    windows = asyncio.run(demo_child.scheduled_maintenance())
    assert isinstance(windows, list)
