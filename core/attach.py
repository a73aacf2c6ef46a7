"""AttachThread: the console's attached engines, all on one worker thread with its own asyncio loop.

Following several engines' streams means decoding JSON for every changed service every interval;
on the GUI's qasync loop that competes with painting (../shared/NOTES.md measured socket work there
at 27-141 ms p99 lag), so the clients live on a worker loop like the local engine does. Reads are
reference reads of frozen values; commands hop to the worker loop and come back as awaitables on
the caller's loop. Adding an engine never blocks: the connection is made on the worker loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from typing import Any, Coroutine, Sequence, TypeVar

from core.events import Event
from core.loops import plain_loop
from core.config_store import RemoteStore
from core.maintenance_board import MaintenanceWindowView
from core.remote import RemoteEngine
from core.snapshot import AlertView, CommandResult, EngineStats, ServiceSnapshot

log = logging.getLogger("core.remote")
T = TypeVar("T")


class AttachThread:
    """One worker loop for every RemoteEngine of a console.

    Attributes:
        handles: the attached engines, in attach order.
    """

    def __init__(self) -> None:
        self.handles: list[RemoteHandle] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._main, name="faultwatch-attach", daemon=True)
        self._thread.start()
        self._ready.wait(10.0)

    def _main(self) -> None:
        loop = plain_loop()  # not the installed policy's: a console attaching later has qasync's
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            # As asyncio.run does: a request still in flight (a panel's history or maintenance read
            # when the window closed) is cancelled and run to its end here, not finalized later by the
            # garbage collector on a closed loop ("Event loop is closed" while closing its socket).
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def attach(self, url: str, token: str, *, ca_file: str | None = None, origin: str | None = None) -> RemoteHandle:
        """Attach to `url` (ValueError for a URL that is not http(s)); returns at once."""
        remote = RemoteEngine(url, token, ca_file=ca_file, origin=origin)
        self.start()
        handle = RemoteHandle(remote, self)
        self.handles.append(handle)
        self.submit(_start(remote))
        return handle

    def detach(self, handle: RemoteHandle) -> None:
        if handle in self.handles:
            self.handles.remove(handle)
            self.submit(handle.remote.stop())

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        assert self._loop is not None, "attach thread not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def stop(self, timeout: float = 10.0) -> None:
        """Blocking and bounded: closes every stream and HTTP session, then the loop."""
        loop = self._loop
        if loop is None or self._thread is None:
            return
        if not loop.is_closed():
            try:
                self.submit(_stop_all([h.remote for h in self.handles])).result(timeout)
            except Exception:  # noqa: BLE001 - shutting down: log and go on
                log.exception("closing attached engines failed")
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout)


async def _start(remote: RemoteEngine) -> None:
    remote.start()


async def _stop_all(remotes: Sequence[RemoteEngine]) -> None:
    await asyncio.gather(*(r.stop() for r in remotes), return_exceptions=True)


class RemoteHandle:
    """A RemoteEngine seen from another thread: EngineControl with commands hopped to its loop.

    Attributes:
        remote: the RemoteEngine (its reads are thread-safe).
    """

    def __init__(self, remote: RemoteEngine, host: AttachThread) -> None:
        self.remote = remote
        self._host = host

    @property
    def name(self) -> str:
        return self.remote.name

    @property
    def url(self) -> str:
        return self.remote.url

    @property
    def read_only(self) -> bool:
        """Attached with a viewer token: it reads, and would refuse every command (403)."""
        return self.remote.read_only

    async def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(self._host.submit(coro))

    async def force_open(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._call(self.remote.force_open(service_ids, origin))

    async def force_close(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._call(self.remote.force_close(service_ids, origin))

    async def reset(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._call(self.remote.reset(service_ids, origin))

    async def restart(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._call(self.remote.restart(service_ids, origin))

    async def pause(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._call(self.remote.pause(service_ids, origin))

    async def resume(self, service_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._call(self.remote.resume(service_ids, origin))

    async def acknowledge(self, alert_ids: Sequence[str], origin: str) -> CommandResult:
        return await self._call(self.remote.acknowledge(alert_ids, origin))

    async def silence(self, alert_ids: Sequence[str], seconds: float, origin: str) -> CommandResult:
        return await self._call(self.remote.silence(alert_ids, seconds, origin))

    async def maintenance(self, targets: Sequence[str], on: bool, origin: str,
                          until_wall: float | None = None) -> CommandResult:
        return await self._call(self.remote.maintenance(targets, on, origin, until_wall))

    async def reload(self, path: str, origin: str) -> CommandResult:
        return await self.remote.reload(path, origin)

    async def reload_own(self, origin: str, *, edit: str = "", service: str = "") -> CommandResult:
        return await self._call(self.remote.reload_own(origin, edit=edit, service=service))

    async def latency_history(self, service_id: str, since_wall: float,
                              rollup: bool = False) -> list[tuple[float, float | None]]:
        return await self._call(self.remote.latency_history(service_id, since_wall, rollup))

    async def value_history(self, service_id: str, since_wall: float,
                            rollup: bool = False) -> list[tuple[float, float]]:
        return await self._call(self.remote.value_history(service_id, since_wall, rollup))

    async def journal_events(self, service_id: str | None = None, limit: int = 1000) -> list[Event]:
        return await self._call(self.remote.journal_events(service_id, limit))

    async def scheduled_maintenance(self, horizon_s: float = 7 * 86400.0) -> list[MaintenanceWindowView]:
        return await self._call(self.remote.scheduled_maintenance(horizon_s))

    def set_qualifier(self, prefix: str) -> None:
        self.remote.set_qualifier(prefix)

    @property
    def config_path(self) -> str | None:
        return None  # the engine's file lives on its host; it reloads it there

    def device_store(self) -> RemoteStore:
        """Where device edits for this engine go: its /api/config/ routes, called on the attach loop."""
        client = self.remote.config_client()
        client.name = self.remote.name
        return RemoteStore(client, hop=self._call)

    def alert_sound(self) -> bool:
        return False

    def snapshots(self) -> dict[str, ServiceSnapshot]:
        return self.remote.snapshots()

    def stats(self) -> EngineStats:
        return self.remote.stats()

    def alerts(self) -> list[AlertView]:
        return self.remote.alerts()

    def drain_events(self) -> list[Event]:
        return self.remote.drain_events()
