"""Headless mode: the engine with no window, for racks and servers.

Events go out as JSON lines (docs/events.md) to a file or stdout, or as readable lines for a person
at a terminal. SIGINT/SIGTERM stop it cleanly: checks stop, the journal is flushed and closed, exit 0. SIGHUP
reloads the config file (a file that fails validation is refused and the running config stays).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import IO, Callable

from core.loops import loop_factory
from core.clock import iso_utc
from core.config import ConfigError
from core.describe import describe_event
from core.events import Event
from core.journal import JournalError
from core.runtime import DemoOptions, Runtime, tune_gc
from core.logs import HEADLESS as log



def terminal_line(event: Event) -> str:
    """One readable line per event, for a technician watching a terminal (the timeline's wording)."""
    what, why = describe_event(event)
    return f"{iso_utc(event.wall)[11:19]} #{event.seq:<6} {event.service or '-':<16} {what}" + (
        f"  ({why})" if why else "")


def make_writer(stream: IO[str], as_json: bool) -> Callable[[Event], None]:
    def write(event: Event) -> None:
        line = json.dumps(event.to_record(), separators=(",", ":")) if as_json else terminal_line(event)
        stream.write(line + "\n")
        stream.flush()
    return write


async def run_headless(runtime: Runtime, *, duration: float | None, events: str | None,
                       status_every: float = 0.0) -> int:
    """Runs until the duration ends or SIGINT/SIGTERM; returns the exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    out: IO[str] | None = None
    if events is None:
        writer = make_writer(sys.stdout, as_json=False)
    elif events == "-":
        writer = make_writer(sys.stdout, as_json=True)
    else:
        out = open(events, "a", encoding="utf-8")  # noqa: SIM115 - closed below
        writer = make_writer(out, as_json=True)
    try:
        try:
            engine = await runtime.start()
        except (ConfigError, JournalError, OSError) as exc:
            # One line, and nothing left open: the demo rack may already be running.
            message = str(exc)
            if isinstance(exc, OSError) and exc.strerror:
                message = exc.strerror + (f": {exc.filename}" if exc.filename else "")
            print(f"faultwatch: {message}", file=sys.stderr)
            await runtime.stop()
            return 2
        engine.listeners.append(writer)
        tune_gc()
        if runtime.config_path and runtime.demo is None and hasattr(signal, "SIGHUP"):
            def reload() -> None:
                # The file of the running config: a reload elsewhere (the API, a GUI) may have moved it.
                task = loop.create_task(engine.reload(engine.config.source or str(runtime.config_path), "cli"))
                task.add_done_callback(lambda t: log.info("SIGHUP: %s", t.result().message))
            try:
                loop.add_signal_handler(signal.SIGHUP, reload)
            except (NotImplementedError, RuntimeError):  # pragma: no cover
                pass
        if runtime.api is not None:
            log.info("listening on %s (heartbeats, /metrics, /api)", runtime.api.url)
        log.info("running headless: %d services", len(engine.services))
        try:
            await asyncio.wait_for(stop.wait(), timeout=duration)
        except TimeoutError:
            pass
        log.info("stopping")
        await runtime.stop()
        log.info("stopped cleanly")
        return 0
    finally:
        if out is not None:
            out.close()
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover
                pass


def headless_main(config_path: str | None, *, demo: bool, devices: int | None, duration: float | None,
                  events: str | None, listen: str | None, state_dir: str | None) -> int:
    runtime = Runtime(config_path, state_dir=state_dir,
                      demo=DemoOptions(devices=devices) if demo else None, listen=listen)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(run_headless(runtime, duration=duration, events=events))
