"""End-to-end fixtures: the real `faultwatch` process, and a simulated rack for it to watch.

`faultwatch` runs as `sys.executable -m gui.launcher ...` with its state in tmp_path. Its stderr log lines
are read by a thread as they come, and tests wait on a structured line ("running headless") instead
of sleeping. Every process a test started is killed and reaped at teardown, whatever happened.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pytest

from core.sim.devices import DeviceSpec
from core.sim.server import SimServer

REPO = Path(__file__).resolve().parents[2]


class FaultwatchProcess:
    """One running `faultwatch`.

    Attributes:
        proc: the Popen.
        lines: stderr lines so far (the log), appended by a reader thread.
    """

    def __init__(self, args: Sequence[str], env: dict[str, str], cwd: Path) -> None:
        self.args = list(args)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen([sys.executable, "-m", "gui.launcher", *self.args], cwd=cwd, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self._stdout: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stderr, self.lines), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stdout, self._stdout), daemon=True)]
        for t in self._readers:
            t.start()

    def _read(self, stream: object, sink: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._cond:
                sink.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def stdout(self) -> str:
        return "\n".join(self._stdout)

    def wait_for_line(self, pattern: str, timeout_s: float = 30.0) -> str:
        """The first log line matching `pattern` (regex); fails if the process exits or time runs out."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if rx.search(line):
                        return line
                seen = len(self.lines)
                if self.proc.poll() is not None and not any(t.is_alive() for t in self._readers):
                    raise AssertionError(f"faultwatch exited ({self.proc.returncode}) before /{pattern}/:\n"
                                         + "\n".join(self.lines[-30:]))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no log line /{pattern}/ within {timeout_s} s:\n"
                                         + "\n".join(self.lines[-30:]))
                self._cond.wait(min(left, 0.2))

    def kill(self) -> int:
        """SIGKILL and reap; returns the exit status (-9 when the kill landed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=30)

    def terminate(self, timeout_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def wait(self, timeout_s: float = 60.0) -> int:
        return self.proc.wait(timeout=timeout_s)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=30)
        finally:
            for t in self._readers:
                t.join(timeout=5)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def faultwatch(tmp_path: Path) -> Iterator[Callable[..., FaultwatchProcess]]:
    """Start `faultwatch ARGS...` (state in tmp_path/state unless given); all are killed at teardown."""
    started: list[FaultwatchProcess] = []
    state = tmp_path / "state"

    def start(*args: str, env: dict[str, str] | None = None) -> FaultwatchProcess:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("FAULTWATCH_")}
        full_env.update({"FAULTWATCH_STATE_DIR": str(state), "FAULTWATCH_CONFIG_DIR": str(tmp_path / "config"),
                         "FAULTWATCH_TOKEN": "e2e-test-token", "PYTHONUNBUFFERED": "1"})
        full_env.update(env or {})
        process = FaultwatchProcess(args, full_env, REPO)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


class SimThread:
    """A SimServer on its own event loop in a thread, so a synchronous test can drive processes."""

    def __init__(self, specs: list[DeviceSpec]) -> None:
        self._loop = asyncio.new_event_loop()
        self.server = SimServer(specs)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout=30)

    def base_url(self, device_id: str) -> str:
        return self.server.base_url(device_id)

    def close(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()


@pytest.fixture
def sim_rack() -> Iterator[Callable[[list[DeviceSpec]], SimThread]]:
    sims: list[SimThread] = []

    def start(specs: list[DeviceSpec]) -> SimThread:
        sim = SimThread(specs)
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        sim.close()
