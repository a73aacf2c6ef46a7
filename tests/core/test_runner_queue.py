"""EngineThread's event hand-over: bounded, exact under two threads, overflow counted."""

from __future__ import annotations

import threading

from core import runner
from core.events import ActionEvent
from core.runner import EngineThread
from core.runtime import Runtime


def _event(i: int) -> ActionEvent:
    return ActionEvent(service="s", mono=0.0, wall=0.0, seq=i, command="x", origin="test")


def test_events_cross_threads_without_loss_or_drift(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(runner, "_MAX_QUEUED_EVENTS", 1_000)
    t = EngineThread(Runtime(None))
    t._events = runner.queue.Queue(maxsize=1_000)
    got: list[int] = []
    done = threading.Event()

    def produce() -> None:
        for i in range(50_000):
            while t._events.full():  # a GUI that keeps up: no drops expected
                pass
            t._enqueue(_event(i))
        done.set()

    p = threading.Thread(target=produce)
    p.start()
    while not (done.is_set() and t._events.empty()):
        got.extend(e.seq for e in t.drain_events())
    p.join()
    assert got == list(range(50_000)) and t.dropped_events == 0


def test_a_window_that_stops_draining_bounds_memory_and_counts_drops() -> None:
    t = EngineThread(Runtime(None))
    t._events = runner.queue.Queue(maxsize=10)
    for i in range(25):
        t._enqueue(_event(i))
    assert [e.seq for e in t.drain_events()] == list(range(10))
    assert t.dropped_events == 15
    t._enqueue(_event(99))
    assert [e.seq for e in t.drain_events()] == [99]
