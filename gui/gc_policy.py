"""Python's cyclic garbage collector, run only on the GUI thread.

The engine runs on a worker thread. If the collector ran there, it could collect a cycle holding a Qt
wrapper and run that object's destructor off the GUI thread, which Qt does not survive (pyqtgraph's
GarbageCollector exists for the same reason). So automatic collection is switched off and a timer on
the GUI thread collects instead, with the thresholds measured for a long-lived engine
(docs/benchmarks.md: a gen-0 threshold of 50,000 and a frozen start-up heap cut gen-2 pauses from
64-166 ms to 10-17 ms).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

THRESHOLDS = (50_000, 20, 20)


class GuiThreadCollector(QObject):
    """Collects on a timer in the thread that created it (the GUI thread).

    Attributes:
        collections: how many collections it ran (tests read it).
    """

    def __init__(self, interval_ms: int = 1000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gc_collector")
        self.collections = 0
        self._was_enabled = gc.isenabled()
        gc.collect()
        gc.freeze()  # the start-up heap (Qt wrappers, modules, config) is never garbage
        gc.disable()
        self._timer = QTimer(self)
        self._timer.setObjectName("gc_timer")
        self._timer.timeout.connect(self.check)
        self._timer.start(interval_ms)

    def check(self) -> None:
        c0, c1, c2 = gc.get_count()
        t0, t1, t2 = THRESHOLDS
        if c0 <= t0:
            return
        generation = 2 if c2 > t2 and c1 > t1 else 1 if c1 > t1 else 0
        gc.collect(generation)
        self.collections += 1

    def stop(self) -> None:
        """Back to the collection it found (automatic, in the app at exit, once the engine thread is
        gone; whatever a host that runs the window in-process had chosen, e.g. the GUI tests)."""
        self._timer.stop()
        if self._was_enabled:
            gc.enable()
