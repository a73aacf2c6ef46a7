"""GUI test setup: offscreen Qt, PySide6 for qasync/pyqtgraph, QSettings in a tmp dir, a qasync loop,
and Qt warnings fail the test (pytest-qt's `qt_log_level_fail` would need pyproject; this is the same
thing as an autouse fixture)."""

from __future__ import annotations

import gc

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import asyncio  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Awaitable  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import QCoreApplication, QEvent, QSettings, QtMsgType  # noqa: E402

# Messages the offscreen platform prints for things it cannot do; they say nothing about our code.
HARMLESS_QT_MESSAGES = (
    "This plugin does not support propagateSizeHints()",
    "This plugin does not support raise()",
    "This plugin does not support grabbing the keyboard",
    "QSystemTrayIcon::setVisible: No Icon set",
    "This plugin does not support setParent!",
    "Could not connect to display",
    "propagateSizeHints",
)


@pytest.fixture(scope="session", autouse=True)
def collect_on_the_gui_thread() -> Iterator[None]:
    """As in the app (gui/gc_policy.py): no automatic GC, so an engine thread never finalizes Qt objects."""
    gc.disable()
    # What exists now (modules, the collected tests, Qt's and pyqtgraph's import-time objects) lives for
    # the whole session: freezing it keeps each test's collect to what that test made (tens of ms less
    # per test, about a quarter of the GUI tests' CPU), and those objects were never garbage anyway.
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()
    gc.enable()


@pytest.fixture(scope="module", autouse=True)
def collect_after_each_module() -> Iterator[None]:
    yield
    gc.collect()  # on the main (GUI) thread: everything, including cycles through long-lived objects


@pytest.fixture(autouse=True)
def collect_after_each_test() -> Iterator[None]:
    yield
    # The code under test can switch automatic collection back on (gui.app.run_window's
    # GuiThreadCollector.stop() did, before it restored the state it found; this stays as a net). Left on,
    # the next engine thread's allocations started collections on that thread, which finalized earlier
    # tests' Qt objects off the GUI thread ("QObject::~QObject: Timers cannot be stopped from another
    # thread"), and the worker segfaulted in pytest-qt's processEvents soon after.
    gc.disable()
    # pytest-qt closes the test's widgets with deleteLater(), which only an event loop acts on, and
    # processEvents() is not one: without this every window of the module stayed alive, and each
    # new window's QApplication.setStyleSheet repolished all of them (0.2 s a window, growing).
    if QCoreApplication.instance() is not None:
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    # On the main (GUI) thread. The two young generations hold every object made since the last
    # collect (automatic GC is off, so nothing was promoted meanwhile): the test's windows, models and
    # timers are finalized here, without walking the session's long-lived heap each time (with a full
    # collect per test the GUI tests took 49 s of CPU instead of 32; it runs once per module instead).
    gc.collect(1)


@pytest.fixture(autouse=True)
def fail_on_qt_warnings(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if Qt logged a warning or critical message (known offscreen noise excepted)."""
    if "qtlog" not in request.fixturenames and "qtbot" not in request.fixturenames \
            and "qapp" not in request.fixturenames:
        yield
        return
    qtlog = request.getfixturevalue("qtlog")
    yield
    bad = [r for r in qtlog.records
           if r.type in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg)
           and not any(h in r.message for h in HARMLESS_QT_MESSAGES)]
    if bad:
        pytest.fail("Qt warnings: " + "; ".join(r.message for r in bad), pytrace=False)


@pytest.fixture(autouse=True)
def isolated_qsettings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every QSettings (including QSettings("Faultwatch", "faultwatch")) at a tmp dir."""
    root = tmp_path_factory.mktemp("qsettings")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(root))
        QSettings.setPath(QSettings.Format.NativeFormat, scope, str(root))
    return root


@pytest.fixture
def qsettings(tmp_path: Path) -> QSettings:
    """A fresh settings file for one test."""
    return QSettings(str(tmp_path / "faultwatch.ini"), QSettings.Format.IniFormat)


class LoopRunner:
    """Drives a qasync loop from a synchronous test: `run(coro)` spins Qt + asyncio until done."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def run(self, aw: Awaitable[Any], timeout: float = 5.0) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(aw, timeout))

    def settle(self, seconds: float = 0.0) -> None:
        """Let scheduled tasks run (and Qt events be processed) for a moment."""
        self.run(asyncio.sleep(seconds))


@pytest.fixture
def qloop(qapp: Any) -> Iterator[LoopRunner]:
    """A qasync event loop on the test QApplication, set as the current asyncio loop."""
    import qasync

    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    runner = LoopRunner(loop)
    try:
        yield runner
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
        asyncio.set_event_loop(None)
