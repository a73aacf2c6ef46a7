"""The cyclic GC runs only on the GUI thread, from a timer (gui/gc_policy.py)."""

from __future__ import annotations

import gc
import threading

from gui import gc_policy


def test_automatic_gc_is_off_and_the_gui_timer_collects(qtbot, monkeypatch) -> None:
    monkeypatch.setattr(gc_policy, "THRESHOLDS", (10, 20, 20))
    was_enabled = gc.isenabled()
    collector = gc_policy.GuiThreadCollector(interval_ms=20)
    try:
        assert not gc.isenabled()
        collected_in: list[str] = []
        monkeypatch.setattr(gc, "collect", lambda generation=2: collected_in.append(threading.current_thread().name) or 0)
        junk = [[i] for i in range(1000)]  # allocations push gen-0's count over the (lowered) threshold
        qtbot.waitUntil(lambda: collector.collections > 0, timeout=2000)
        assert set(collected_in) == {threading.main_thread().name}
        del junk
    finally:
        collector.stop()
        gc.unfreeze()
        if not was_enabled:
            gc.disable()
    assert gc.isenabled() or not was_enabled


def test_stop_gives_back_the_collection_it_found() -> None:
    """A host that runs the window in-process (the GUI tests) keeps its own choice: a collector
    that switched automatic collection on at its stop finalized Qt objects on engine threads."""
    was_enabled = gc.isenabled()
    try:
        gc.disable()
        collector = gc_policy.GuiThreadCollector(interval_ms=1000)
        collector.stop()
        gc.unfreeze()
        assert not gc.isenabled()
        gc.enable()
        collector = gc_policy.GuiThreadCollector(interval_ms=1000)
        collector.stop()
        gc.unfreeze()
        assert gc.isenabled()
    finally:
        (gc.enable if was_enabled else gc.disable)()
