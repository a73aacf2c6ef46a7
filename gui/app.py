"""Start the console: QApplication, its own engine, the window, and an orderly shutdown.

The engine runs in a child process the window attaches to (core/child.py; `--engine thread` puts it
on a worker thread with its own asyncio loop instead); the GUI runs qasync on the Qt loop.
`run_gui()` waits for `aboutToQuit` (window closed, Ctrl+Q, SIGINT/SIGTERM all end up there), then
stops the engine in an executor thread so the window never freezes while it winds down.
"""

from __future__ import annotations

import time

_PROCESS_START = time.perf_counter()  # as early as possible: the startup probe measures from here

import asyncio  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from types import FrameType, TracebackType  # noqa: E402
from typing import Any  # noqa: E402

# The binding must be fixed before qasync or pyqtgraph are imported (both probe for one).
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

log = logging.getLogger("gui.app")

ORGANISATION = "Faultwatch"
APPLICATION = "faultwatch"


def _seconds_since_start(process_start: float | None = None) -> float:
    """Seconds since `process_start` (a perf_counter value the entry point took first thing), else
    since this module was imported."""
    return time.perf_counter() - (_PROCESS_START if process_start is None else process_start)


def show_config_error(message: str) -> int:
    """Show a refused configuration's one-line error in a dialog; returns exit code 2."""
    from PySide6.QtWidgets import QApplication, QMessageBox

    app = QApplication.instance() or QApplication(sys.argv[:1])
    del app
    box = QMessageBox(QMessageBox.Icon.Critical, "Faultwatch: configuration refused", message,
                      QMessageBox.StandardButton.Ok)
    box.setObjectName("config_error_dialog")
    box.exec()
    return 2


def install_excepthook() -> None:
    """Log uncaught exceptions (qasync's asyncSlot and Qt slots send them to sys.excepthook)."""
    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        log.error("uncaught exception:\n%s", "".join(traceback.format_exception(exc_type, exc, tb)))
    sys.excepthook = hook


def _build_engine(config_path: str | None, demo: bool, state_dir: str | None = None,
                  demo_devices: int | None = None) -> Any:
    """The real engine: in a child process the window attaches to (core.child.ChildEngine, the
    default), or on a worker thread (core.runner.EngineThread) with `--engine thread` or
    $FAULTWATCH_ENGINE=thread, or when the config cannot be run that way (TLS on its API).
    Raises ConfigError for a bad config."""
    from core.child import ChildEngine, ChildEngineUnsuitable, child_engine_wanted

    if child_engine_wanted(None):
        if config_path is None and not demo:
            from core.paths import default_config_path

            config_path = str(default_config_path())
        try:
            return ChildEngine(None if demo else config_path, demo=demo, demo_devices=demo_devices,
                               state_dir=state_dir)
        except ChildEngineUnsuitable as exc:
            log.warning("%s; running the engine on a worker thread instead", exc)
    from core.runner import EngineThread  # the whole engine: imported only when it runs in this process

    if demo:
        return EngineThread.for_demo(state_dir=state_dir, devices=demo_devices)
    if config_path is None:
        from core.paths import default_config_path

        config_path = str(default_config_path())
    return EngineThread.from_path(config_path, state_dir=state_dir)


def _window_icon() -> Any:
    from PySide6.QtGui import QIcon

    try:
        from core.paths import resource_path

        path = resource_path("faultwatch.svg")
    except Exception:
        return None
    return QIcon(str(path)) if path.exists() else None


def run_gui(config_path: str | None, demo: bool, wall: bool = False, theme: str | None = None,
            startup_probe: bool = False, *, state_dir: str | None = None, demo_devices: int | None = None,
            process_start: float | None = None) -> int:
    """Run the console until it is closed; returns the process exit code (2: config refused).

    `state_dir` and `demo_devices` go to the engine; `process_start` is the perf_counter value the
    entry point took first thing (the startup probe measures from it; default: this module's import).
    """
    install_excepthook()
    # The engine first, before Qt: a child engine's process is started at once (spawn), so that its
    # start-up overlaps the window's (Qt, qasync, pyqtgraph and numpy imports, the window's
    # construction); run_window's engine.start() then only waits for it to serve.
    # SIGINT/SIGTERM from here on are noted and then honoured by run_window in order (the engine is
    # stopped, exit code 0), as they were when the engine only started there.
    signals: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: signals.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    engine: Any = None
    failure: Exception | None = None
    try:
        try:
            engine = _build_engine(config_path, demo, state_dir, demo_devices)
            spawn = getattr(engine, "spawn", None)
            if spawn is not None:
                spawn()
        except (ImportError, ValueError, OSError) as exc:  # a ConfigError is a ValueError naming file and key
            failure = exc
        return _run_gui_window(engine, failure, signals, previous, wall=wall, theme=theme,
                               startup_probe=startup_probe, process_start=process_start)
    except BaseException:
        if engine is not None and getattr(engine, "spawn", None) is not None:
            engine.stop()  # spawned, and run_window never got to stop it
        raise
    finally:
        _restore_signals(previous)


def _run_gui_window(engine: Any, failure: Exception | None, signals: list[int], previous: dict[Any, Any], *,
                    wall: bool, theme: str | None, startup_probe: bool, process_start: float | None) -> int:
    import qasync
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("Faultwatch")
    app.setDesktopFileName("faultwatch")  # lets Wayland match the window to faultwatch.desktop
    icon = _window_icon()
    if icon is not None:
        app.setWindowIcon(icon)

    if failure is not None:
        # No engine and no window to wind down: a signal that came meanwhile acts as it would have.
        _restore_signals(previous)
        for signum in signals:
            signal.raise_signal(signum)
    if isinstance(failure, ImportError):
        QMessageBox.critical(None, "Faultwatch", f"The engine is not available: {failure}")
        return 2
    if failure is not None:
        return show_config_error(str(failure))

    from core.multi import MultiEngine

    settings = QSettings(ORGANISATION, APPLICATION)
    # Wrapped so File → Connect to engine… can add attached engines; the own engine's ids stay as they are.
    return run_window(app, MultiEngine(engine), settings, wall=wall, theme=theme, startup_probe=startup_probe,
                      process_start=process_start, qasync_module=qasync, timer_type=QTimer,
                      signals_before=signals)


def run_attached(engines: list[tuple[str, str]], *, ca_file: str | None = None, wall: bool = False,
                 theme: str | None = None, startup_probe: bool = False,
                 process_start: float | None = None) -> int:
    """The console for engines running elsewhere: `engines` is [(url, token)]; no engine of its own."""
    import qasync
    from PySide6.QtCore import QSettings, QTimer

    from core.multi import MultiEngine
    from gui.engines import remember_engine

    app = _application()
    settings = QSettings(ORGANISATION, APPLICATION)
    multi = MultiEngine()
    for url, token in engines:
        multi.attach(url, token, ca_file=ca_file)
        remember_engine(settings, url)
    return run_window(app, multi, settings, wall=wall, theme=theme, startup_probe=startup_probe,
                      process_start=process_start, qasync_module=qasync, timer_type=QTimer)


def _application() -> Any:
    from PySide6.QtWidgets import QApplication

    install_excepthook()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("Faultwatch")
    app.setDesktopFileName("faultwatch")
    icon = _window_icon()
    if icon is not None:
        app.setWindowIcon(icon)
    return app


def run_window(app: Any, engine: Any, settings: Any, *, wall: bool = False, theme: str | None = None,
               startup_probe: bool = False, process_start: float | None = None, qasync_module: Any = None,
               timer_type: Any = None, signals_before: list[int] | None = None) -> int:
    """Start `engine`, show the window on a qasync loop, stop the engine when asked to quit.

    Every way out (closing the window, Ctrl+Q, SIGINT/SIGTERM, the startup probe, `app.quit()` from
    outside) sets one asyncio.Event; `main()` then stops the engine in an executor while the Qt
    loop still runs, and returning from `main()` ends the loop. `quitOnLastWindowClosed` is off so
    that closing the window does not end the Qt loop before that has happened.
    """
    import qasync
    from PySide6.QtCore import QTimer

    from gui.gc_policy import GuiThreadCollector
    from gui.main_window import MainWindow

    qasync_module = qasync_module or qasync
    timer_type = timer_type or QTimer
    app.setQuitOnLastWindowClosed(False)
    stopped = False
    early_quit = False  # a signal that arrived before the loop ran
    quit_requested: asyncio.Event | None = None
    loop_ref: list[asyncio.AbstractEventLoop] = []

    def request_quit() -> None:
        nonlocal early_quit
        if quit_requested is not None and loop_ref:
            loop_ref[0].call_soon_threadsafe(quit_requested.set)
        else:
            early_quit = True

    # Python runs signal handlers only when the interpreter gets control; a periodic no-op timer
    # gives it that chance while Qt's loop is idle. Installed before the engine starts, so a
    # SIGTERM during start-up still takes the orderly path.
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: quitting", signum)
        request_quit()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    for signum in signals_before or ():  # came while the caller prepared the engine (run_gui)
        on_signal(signum, None)
    # The console's own engine process is waited for behind a painted window: its start-up (a
    # second interpreter, the journal, the first checks) was the longest part of the time to first
    # paint. Its config was read before it was spawned, so a refused file still stops us here.
    in_background = _own_child(engine) is not None
    if not in_background:
        try:
            engine.start()
        except (ValueError, OSError) as exc:  # a refused config, an unusable journal or a taken port
            _restore_signals(previous)
            return show_config_error(str(exc))
        except BaseException:
            _restore_signals(previous)
            raise

    async def main() -> int:
        nonlocal quit_requested, stopped
        loop = asyncio.get_running_loop()
        loop_ref.append(loop)
        quit_requested = asyncio.Event()
        if early_quit:
            quit_requested.set()
        app.aboutToQuit.connect(request_quit)
        window = MainWindow(engine, settings, theme_name=theme)
        window.closed.connect(request_quit)
        install_engine_controls(window, engine, settings)
        _report_child_engine(window, engine)
        if not in_background:
            window.start()
        if wall:
            window.toggle_wall_mode()
        else:
            window.show()
        if startup_probe:
            def probe() -> None:
                app.processEvents()
                print(f"startup_to_first_paint_s={_seconds_since_start(process_start):.3f}", flush=True)
                window.close()
            timer_type.singleShot(0, probe)
        quitting = asyncio.ensure_future(quit_requested.wait())
        starting: asyncio.Future[None] | None = None
        if in_background:
            window.statusBar().showMessage("Starting the engine…")
            starting = loop.run_in_executor(None, engine.start)
            await asyncio.wait({starting, quitting}, return_when=asyncio.FIRST_COMPLETED)
            if starting.done() and not quitting.done():
                exc = starting.exception()
                if isinstance(exc, (ValueError, OSError)):  # an unusable journal, a taken port
                    window.close()
                    window.shutdown()
                    return show_config_error(str(exc))
                if exc is not None:
                    raise exc
                window.statusBar().clearMessage()
                window.start()
        await quitting
        if window.isVisible():
            window.close()
        window.shutdown()
        if starting is not None:
            # Asked to quit while the engine was still starting: let it finish, so it can be stopped.
            await asyncio.wait({starting})
            if starting.exception() is not None:
                log.warning("the engine did not start: %s", starting.exception())
        try:
            await loop.run_in_executor(None, engine.stop)
            stopped = True
        except Exception:
            log.exception("stopping the engine failed")
        return 0

    collector = GuiThreadCollector()
    wakeup = timer_type()
    wakeup.setObjectName("signal_wakeup_timer")
    wakeup.timeout.connect(lambda: None)
    wakeup.start(250)
    code = 0
    try:
        if sys.version_info >= (3, 12):
            code = int(asyncio.run(main(), loop_factory=qasync_module.QEventLoop))  # type: ignore[call-arg]
        else:
            code = int(qasync_module.run(main()))
    except RuntimeError as exc:
        # Someone called app.quit() directly: the Qt loop ended before main() could finish.
        log.warning("event loop ended early (%s); stopping the engine synchronously", exc)
    except KeyboardInterrupt:
        pass
    finally:
        wakeup.stop()
        _restore_signals(previous)
        if not stopped:
            try:
                engine.stop()
            except Exception:
                log.exception("stopping the engine failed")
        collector.stop()
    return code


def _own_child(engine: Any) -> Any:
    """The console's own engine process (core.child.ChildEngine) behind `engine`, or None."""
    from core.child import ChildEngine

    child = getattr(engine, "local", None)
    return child if isinstance(child, ChildEngine) else None


def _report_child_engine(window: Any, engine: Any) -> Any:
    """The own engine's process dying and coming back is said in the status bar (its rows say
    "engine unreachable" meanwhile). The supervisor thread emits; the queued connection shows it on
    the GUI thread. Returns the relay (None when the engine is not a child process)."""
    from PySide6.QtCore import QObject, Signal, Slot

    child = _own_child(engine)
    if child is None:
        return None

    class _Relay(QObject):
        state_changed = Signal(str)

        def __init__(self) -> None:
            super().__init__(window)
            self.setObjectName("child_engine_relay")
            # The receiver is this object, on the GUI thread: emits from the supervisor are queued.
            self.state_changed.connect(self._on_state_changed)

        @Slot(str)
        def _on_state_changed(self, state: str) -> None:
            window.statusBar().showMessage(f"Engine process: {state}", 30_000)

    relay = _Relay()
    child.listeners.append(relay.state_changed.emit)
    return relay


def install_engine_controls(window: Any, engine: Any, settings: Any) -> Any:
    """File → Connect to engine… and the engines label, when the window shows a MultiEngine."""
    from core.multi import MultiEngine
    from gui.engines import EngineControls

    if not isinstance(engine, MultiEngine):
        return None
    controls = EngineControls(window, engine, settings)
    controls.engine_back.connect(window.catch_up)
    window.service_actions.read_only = engine.read_only_engines
    window.engine_controls = controls
    return controls


def _restore_signals(previous: dict[signal.Signals, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
