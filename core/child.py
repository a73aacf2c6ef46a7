"""ChildEngine: the console's own engine in a child process, attached over loopback like any other.

Measured (docs/benchmarks.md, bench/gui_lag.py `--engines 1`): an engine on a worker thread of the
console takes the GIL from the GUI thread for its checks; in a process of its own it cannot, and the
console only follows its stream (decoded on the attach thread). The child is `faultwatch --headless`
with the same config, state directory and token the thread engine would use, so its journal, history,
API listener and heartbeats are the same ones.

The child runs at a lower CPU priority than the window (`ENGINE_NICE`): measured on 2 cores with five
engines and 5,000 devices, the window's loop lag p99 fell from 105 ms to 39 ms with them at nice 10
while they still made 96 % of their checks on time (docs/benchmarks.md). The window is the one process
a person is waiting on; the engine has slack in every interval.

The child is supervised: if it exits while the console runs, that is logged with its last words, its
rows turn "engine unreachable" (core/remote.py) and it is started again with backoff; the stream
resumes from the last seq seen, so nothing is missed. `stop()` ends it with SIGTERM (its journal is
flushed), then SIGKILL after a bound. On Linux the child also gets SIGTERM if the console dies
without stopping it (PR_SET_PDEATHSIG), so no engine is left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from core import paths
from core.config import Config, load_config, parse_listen
from core.maintenance_board import MaintenanceWindowView
from core.events import Event
from core.snapshot import AlertView, CommandResult, EngineStats, ServiceSnapshot
from core.token import load_or_create_token

if TYPE_CHECKING:  # core.attach (aiohttp) is imported once the child is on its way: see spawn()
    from core.attach import AttachThread, RemoteHandle

log = logging.getLogger("core.child")

_READY = "running headless"
RESTART_BASE_S = 0.5
RESTART_MAX_S = 30.0
STABLE_S = 60.0  # a child that ran this long starts the restart backoff over
ENGINE_NICE = 5  # added to the console's niceness for its engine process (0 = same priority)
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class ChildEngineUnsuitable(ValueError):
    """This config cannot be run as a child the console attaches to (the thread engine can)."""


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def engine_command(config_path: str | None, *, demo: bool, demo_devices: int | None, state_dir: str | None,
                   listen: str | None) -> list[str]:
    """The argv of `faultwatch --headless` for this console's engine (frozen builds run themselves)."""
    if getattr(sys, "frozen", False):
        argv = [sys.executable]
    else:
        argv = [sys.executable, "-m", "core.cli"]
    argv += ["--headless", "--events", os.devnull]
    if demo_devices is not None:
        argv += ["--demo-devices", str(demo_devices)]
    elif demo:
        argv += ["--demo"]
    else:
        assert config_path is not None
        argv += ["--config", config_path]
    if state_dir is not None:
        argv += ["--state-dir", state_dir]
    if listen is not None:
        argv += ["--listen", listen]
    return argv


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child before exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _child_setup(nice: int) -> Callable[[], None]:
    def setup() -> None:  # pragma: no cover - runs in the forked child before exec
        if sys.platform.startswith("linux"):
            _die_with_parent()
        if nice:
            with contextlib.suppress(OSError):
                os.nice(nice)
    return setup


class ChildEngine:
    """EngineControl over an engine in a child process, which it starts, watches and stops.

    Attributes:
        url: the child's API base URL (loopback).
        exits: how many times the child exited while it should have been running.
        restarts: how many times it was started again after that.
        state: one line for the console: "running", "restarting: …", "stopped".
    """

    def __init__(self, config_path: str | None = None, *, demo: bool = False, demo_devices: int | None = None,
                 state_dir: str | None = None, argv: Sequence[str] | None = None,
                 ready_timeout_s: float = 60.0, nice: int = ENGINE_NICE) -> None:
        self._config_path = config_path
        self._nice = nice
        self._state_dir = state_dir
        self._ready_timeout_s = ready_timeout_s
        self._config: Config | None = None
        token_env = "FAULTWATCH_TOKEN"
        listen: str | None
        if config_path is not None and not demo and demo_devices is None:
            config = load_config(config_path)  # a bad file is a ConfigError here, before any process
            self._config = config
            token_env = config.api.token_env
            if config.api.enabled and config.api.tls_cert:
                # The certificate names the host people reach, not 127.0.0.1: the console could not
                # verify its own child. Said, not guessed around.
                raise ChildEngineUnsuitable("the engine process needs a plain loopback API; this config serves TLS "
                                 "(TLS)")
            listen = None if config.api.enabled else f"127.0.0.1:{free_loopback_port()}"
            host, port = parse_listen(listen or config.api.listen)
            if port == 0:
                listen = f"127.0.0.1:{free_loopback_port()}"
                host, port = "127.0.0.1", int(listen.rpartition(":")[2])
            self.url = f"http://{_url_host(host)}:{port}"
        else:
            # The demo's listener would take a random port; a fixed one lets a restarted child be
            # found again at the same URL (the stream reconnects by itself).
            port = free_loopback_port()
            listen = f"127.0.0.1:{port}"
            self.url = f"http://127.0.0.1:{port}"
        self._token_env = token_env
        self._token = ""  # loaded by spawn()
        self._argv = list(argv) if argv is not None else engine_command(
            config_path, demo=demo, demo_devices=demo_devices, state_dir=state_dir, listen=listen)
        self._attacher: AttachThread | None = None
        self._spawned = False  # by spawn(), not yet waited for by start()
        self._handle: RemoteHandle | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._lines: deque[str] = deque(maxlen=20)
        self._ready = threading.Event()  # the marker line was seen, or the child's stderr ended
        self._saw_ready = False
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._started_mono = 0.0
        self.exits = 0
        self.restarts = 0
        self.state = "not started"
        self.listeners: list[Callable[[str], None]] = []  # told (any thread) when `state` changes

    def __repr__(self) -> str:  # never the token
        return f"ChildEngine({self.url!r}, state={self.state!r})"

    # ---------------------------------------------------------------- lifecycle

    def spawn(self) -> None:
        """Start the child process now, without waiting for it; `start()` then waits for it.

        The console calls this before it imports and builds its window, so that the child's start-up
        (a whole interpreter, the engine, the demo's servers) overlaps the window's instead of
        preceding it. Whoever spawns must `start()` or `stop()` the engine."""
        if self._spawned:
            return
        if not self._token:
            # The same token the engine will load (environment, keyring, or the 0600 file in the state
            # directory, created now if need be: before the child, which would otherwise race to
            # create it), so nothing new is generated or passed around.
            self._token, _where = load_or_create_token(self._token_env, paths.state_dir(self._state_dir))
        self._spawn()
        self._spawned = True

    def start(self, timeout: float | None = None) -> None:
        """Start the child (unless `spawn()` did) and wait until it serves; OSError with its last
        line if it cannot."""
        from core.attach import AttachThread

        self.spawn()
        self._spawned = False
        if not self._wait_ready(timeout or self._ready_timeout_s):
            why = self._last_words()
            self._kill()
            raise OSError(f"the engine process did not start: {why}")
        self._attacher = self._attacher or AttachThread()
        self._attacher.start()
        self._handle = self._attacher.attach(self.url, self._token)
        self._set_state("running")
        self._supervisor = threading.Thread(target=self._supervise, name="faultwatch-child", daemon=True)
        self._supervisor.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Blocking and bounded: the stream closes, then the child stops (SIGTERM, then SIGKILL)."""
        self._stopping.set()
        self._spawned = False
        if self._attacher is not None:
            self._attacher.stop(timeout)
        self._kill(timeout)
        if self._supervisor is not None:
            self._supervisor.join(timeout)
        self._set_state("stopped")

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def connected(self) -> bool:
        return self._handle is not None and self._handle.remote.connected

    def _spawn(self) -> None:
        self._ready.clear()
        self._saw_ready = False
        self._lines.clear()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        repo = str(Path(__file__).resolve().parent.parent)
        if not getattr(sys, "frozen", False):
            env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH", "")) if p)
        # Its own session: Ctrl+C in the console's terminal reaches the console, which then stops the
        # child in order, instead of both at once (the supervisor would take that for a crash).
        proc = subprocess.Popen(self._argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
                                preexec_fn=_child_setup(self._nice) if os.name == "posix" else None)
        self._proc = proc
        self._started_mono = time.monotonic()
        log.info("engine process %d started: %s", proc.pid, " ".join(self._argv[1:]))
        threading.Thread(target=self._read, args=(proc,), name="faultwatch-child-log", daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip()
            self._lines.append(line)
            # The engine's log is the console's log, as it was when the engine ran on a thread: its
            # structured lines ("engine started", "api listening on …") pass through unchanged.
            with contextlib.suppress(ValueError, OSError):
                sys.stderr.write(line + "\n")
            if _READY in line:
                self._saw_ready = True
                self._ready.set()
        proc.stderr.close()
        self._ready.set()  # EOF: whoever waits looks at the exit code

    def _wait_ready(self, timeout: float) -> bool:
        self._ready.wait(timeout)
        proc = self._proc
        return proc is not None and proc.poll() is None and self._saw_ready

    def _last_words(self) -> str:
        for line in reversed(self._lines):
            if line.strip():
                return line.strip()[:300]
        proc = self._proc
        return f"exit code {proc.returncode}" if proc is not None and proc.returncode is not None else "no answer"

    def _kill(self, timeout: float = 10.0) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("engine process %d did not stop within %.0f s; killing it", proc.pid, timeout)
            proc.kill()
            proc.wait()

    def _supervise(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            proc = self._proc
            assert proc is not None
            code = proc.wait()
            if self._stopping.is_set():
                return
            self.exits += 1
            if time.monotonic() - self._started_mono >= STABLE_S:
                attempt = 0
            attempt += 1
            delay = min(RESTART_MAX_S, RESTART_BASE_S * 2 ** (attempt - 1))
            why = self._last_words()
            self._set_state(f"exited ({code}): {why}; restarting in {delay:g} s")
            log.error("engine process %d exited with code %s (%s); restarting in %.1f s", proc.pid, code, why, delay)
            if self._stopping.wait(delay):
                return
            try:
                self._spawn()
            except OSError as exc:
                log.error("engine process could not be started: %s", exc)
                continue
            if self._wait_ready(self._ready_timeout_s):
                self.restarts += 1
                self._set_state("running")
                log.info("engine process %s running again (restart %d)", self.pid, self.restarts)
            else:
                self._kill()

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        for listener in list(self.listeners):
            try:
                listener(state)
            except Exception:  # noqa: BLE001
                log.exception("child engine listener failed")

    # ---------------------------------------------------------------- reads (any thread)

    def _h(self) -> RemoteHandle:
        assert self._handle is not None, "engine process not started"
        return self._handle

    def snapshots(self) -> dict[str, ServiceSnapshot]:
        return {} if self._handle is None else self._handle.snapshots()

    def stats(self) -> EngineStats:
        return EngineStats(0, 0.0, 0.0, 0, 0) if self._handle is None else self._handle.stats()

    def alerts(self) -> list[AlertView]:
        return [] if self._handle is None else self._handle.alerts()

    def drain_events(self) -> list[Event]:
        return [] if self._handle is None else self._handle.drain_events()

    @property
    def config_path(self) -> str | None:
        """The file the child runs (the same machine: the window watches and edits it as before)."""
        if self._config_path is not None:
            return self._config_path
        demo = paths.state_dir(self._state_dir) / "demo.toml"  # what the demo child writes
        return str(demo) if demo.exists() else None

    @property
    def demo(self) -> bool:
        return self._config is None

    @property
    def config(self) -> Config | None:
        """The config the child was started with (None for the demo, whose config it generates)."""
        return self._config

    @property
    def journal_path(self) -> Path:
        """The journal the child writes (reports read it, as they read the thread engine's)."""
        configured = self._config.journal.path if self._config is not None else ""
        return paths.journal_path(configured, self._state_dir)

    def alert_sound(self) -> bool:
        return bool(self._config.alerts.sound) if self._config is not None else True

    # ---------------------------------------------------------------- commands

    async def force_open(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._h().force_open(service_ids, origin)

    async def force_close(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._h().force_close(service_ids, origin)

    async def reset(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._h().reset(service_ids, origin)

    async def restart(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._h().restart(service_ids, origin)

    async def pause(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._h().pause(service_ids, origin)

    async def resume(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._h().resume(service_ids, origin)

    async def acknowledge(self, alert_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._h().acknowledge(alert_ids, origin)

    async def silence(self, alert_ids: Sequence[str], seconds: float, origin: str) -> CommandResult:
        return await self._h().silence(alert_ids, seconds, origin)

    async def maintenance(self, targets: Sequence[str], on: bool, origin: str,
                          until_wall: float | None = None) -> CommandResult:
        return await self._h().maintenance(targets, on, origin, until_wall)

    async def reload(self, path: str, origin: str, *, edit: str = "", service: str = "") -> CommandResult:
        """Reload the child's own config file over its API (the journal names `origin`)."""
        return await self._h().reload_own(origin, edit=edit, service=service)

    async def config_edit(self, path: str, origin: str, detail: str, service: str = "") -> CommandResult:
        """Reload after the console edited the config file; journaled as a `config_edit` action."""
        return await self._h().reload_own(origin, edit=detail, service=service)

    async def latency_history(self, service_id: str, since_wall: float,
                              rollup: bool = False) -> list[tuple[float, float | None]]:
        return await self._h().latency_history(service_id, since_wall, rollup)

    async def value_history(self, service_id: str, since_wall: float,
                            rollup: bool = False) -> list[tuple[float, float]]:
        return await self._h().value_history(service_id, since_wall, rollup)

    async def journal_events(self, service_id: str | None = None, limit: int = 1000) -> list[Event]:
        return await self._h().journal_events(service_id, limit)

    async def scheduled_maintenance(self, horizon_s: float = 7 * 86400.0) -> list[MaintenanceWindowView]:
        return await self._h().scheduled_maintenance(horizon_s)


def _url_host(host: str) -> str:
    host = _LOOPBACK.get(host, host)
    return f"[{host}]" if ":" in host else host


def child_engine_wanted(flag: str | None, env: dict[str, str] | Any = os.environ) -> bool:
    """`--engine process|thread` wins, else $FAULTWATCH_ENGINE; the default is the child process
    (docs/benchmarks.md: the GUI loop's lag, the console's CPU and the checks on time all measured
    better with it). "thread" keeps the engine on a worker thread of the window's process."""
    if flag is not None:
        return flag != "thread"
    return str(env.get("FAULTWATCH_ENGINE", "")).strip().lower() != "thread"
