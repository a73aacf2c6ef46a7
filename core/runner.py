"""EngineThread: a Runtime on a worker thread with its own asyncio loop, for the GUI.

Measured (docs/benchmarks.md, bench/gui_lag.py): socket-heavy checks on the GUI's qasync loop cannot
keep a 1,000-row window smooth; on a worker loop they can. Reads are lock-free reference reads of
frozen values (snapshots, alerts) or a thread-safe queue (events); commands hop to the engine loop
with run_coroutine_threadsafe and come back as awaitables on the caller's loop.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable, Coroutine, Sequence, TypeVar

from core.loops import loop_factory
from core.config import Config, ConfigError, load_config
from core.engine import Engine
from core.events import Event
from core.maintenance_board import MaintenanceWindowView
from core.runtime import DemoOptions, Runtime
from core.snapshot import AlertView, CommandResult, EngineStats, ServiceSnapshot
from core.logs import RUNNER as log

T = TypeVar("T")

_MAX_QUEUED_EVENTS = 20_000


class EngineThread:
    """Runs the engine off the GUI thread. Implements core.snapshot.EngineControl.

    Attributes:
        runtime: the Runtime (engine, API, demo rack) living on the worker loop.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._start_error: BaseException | None = None
        # queue.Queue keeps its own count under its own lock: the engine thread puts, the GUI thread
        # drains, and no counter shared between them can drift (a bare `+=`/`-=` pair could).
        self._events: queue.Queue[Event] = queue.Queue(maxsize=_MAX_QUEUED_EVENTS)
        self.dropped_events = 0
        self._stop_requested: asyncio.Event | None = None

    @classmethod
    def from_path(cls, path: str, state_dir: str | None = None) -> EngineThread:
        """Validates the config now, so a bad file is a ConfigError before any thread starts."""
        load_config(path)
        return cls(Runtime(path, state_dir=state_dir))

    @classmethod
    def for_demo(cls, state_dir: str | None = None, devices: int | None = None,
                 scenario: bool = True) -> EngineThread:
        return cls(Runtime(None, state_dir=state_dir, demo=DemoOptions(devices=devices, scenario=scenario)))

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 30.0) -> None:
        self._thread = threading.Thread(target=self._main, name="faultwatch-engine", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("engine did not start in time")
        if self._start_error is not None:
            raise self._start_error

    def _main(self) -> None:
        loop = loop_factory()()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._stopped.set()

    async def _serve(self) -> None:
        self._stop_requested = asyncio.Event()
        try:
            engine = await self.runtime.start()
            engine.listeners.append(self._enqueue)
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._start_error = exc if not isinstance(exc, ConfigError) else ConfigError(str(exc))
            self._ready.set()
            await self.runtime.stop()
            return
        self._ready.set()
        try:
            await self._stop_requested.wait()
        finally:
            await self.runtime.stop()

    def stop(self, timeout: float = 10.0) -> None:
        """Blocking and bounded: stops checks, closes the HTTP client and the journal."""
        loop, ev = self._loop, self._stop_requested
        if loop is not None and ev is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("engine thread did not stop within %.0f s", timeout)

    @property
    def engine(self) -> Engine:
        assert self.runtime.engine is not None, "engine not started"
        return self.runtime.engine

    @property
    def config(self) -> Config:
        return self.engine.config

    @property
    def config_path(self) -> str | None:
        """The file of the running config (follows successful reloads; the demo's is generated)."""
        return self.engine.config.source or self.runtime.config_path

    def alert_sound(self) -> bool:
        return self.engine.config.alerts.sound

    # ------------------------------------------------------------------ thread hops

    def _enqueue(self, event: Event) -> None:
        # Bounded: a GUI that stops draining must not grow memory without limit. What is dropped is
        # counted and said once per overflow; the journal still has every event.
        try:
            self._events.put_nowait(event)
        except queue.Full:
            if self.dropped_events == 0:
                log.warning("the window is not draining events; dropping them until it does (journal keeps all)")
            self.dropped_events += 1

    def _submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def _call(self, make: Callable[[Engine], Coroutine[Any, Any, T]]) -> T:
        return await asyncio.wrap_future(self._submit(make(self.engine)))

    # ------------------------------------------------------------------ EngineControl

    async def force_open(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._call(lambda e: e.force_open(list(service_ids), origin))

    async def force_close(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._call(lambda e: e.force_close(list(service_ids), origin))

    async def reset(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._call(lambda e: e.reset(list(service_ids), origin))

    async def restart(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._call(lambda e: e.restart(list(service_ids), origin))

    async def pause(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._call(lambda e: e.pause(list(service_ids), origin))

    async def resume(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._call(lambda e: e.resume(list(service_ids), origin))

    async def acknowledge(self, alert_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._call(lambda e: e.acknowledge(list(alert_ids), origin))

    async def silence(self, alert_ids: Sequence[str], seconds: float, origin: str) -> CommandResult:
        return await self._call(lambda e: e.silence(list(alert_ids), seconds, origin))

    async def maintenance(self, targets: Sequence[str], on: bool, origin: str,
                          until_wall: float | None = None) -> CommandResult:
        return await self._call(lambda e: e.maintenance(list(targets), on, origin, until_wall))

    async def reload(self, path: str, origin: str, *, edit: str = "", service: str = "") -> CommandResult:
        return await self._call(lambda e: e.reload(path, origin, edit=edit, service=service))

    async def config_edit(self, path: str, origin: str, detail: str, service: str = "") -> CommandResult:
        """Reload after the console edited the config file; journaled as a `config_edit` action."""
        from core.config_edit import reload_after_edit

        return await self._call(lambda e: reload_after_edit(e, path, origin, detail, service))

    async def latency_history(self, service_id: str, since_wall: float,
                              rollup: bool = False) -> list[tuple[float, float | None]]:
        return await self._call(lambda e: e.latency_history(service_id, since_wall, rollup))

    async def value_history(self, service_id: str, since_wall: float,
                            rollup: bool = False) -> list[tuple[float, float]]:
        return await self._call(lambda e: e.value_history(service_id, since_wall, rollup))

    async def journal_events(self, service_id: str | None = None, limit: int = 1000) -> list[Event]:
        return await self._call(lambda e: e.journal_events(service_id, limit))

    async def scheduled_maintenance(self, horizon_s: float = 7 * 86400.0) -> list[MaintenanceWindowView]:
        return await self._call(lambda e: e.scheduled_maintenance(horizon_s))  # reads services: on its loop

    def snapshots(self) -> dict[str, ServiceSnapshot]:
        return self.engine.snapshots()

    def stats(self) -> EngineStats:
        return self.engine.stats()

    def alerts(self) -> list[AlertView]:
        return self.engine.alerts()

    def drain_events(self) -> list[Event]:
        out: list[Event] = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                break
        return out