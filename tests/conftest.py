"""Suite-wide collection order for parallel runs (`make test` runs pytest-xdist with --dist worksteal).

Most of the suite's wall time is waiting (real processes starting, devices answering, a 36 s engine
stop), not CPU, so the workers outnumber the cores. worksteal hands each worker one contiguous share of
the collection (by test count) and lets an idle worker take the not-yet-started tail of a busy one's
share; a test already queued at the head of a share stays with that worker. So the long modules are
dealt out over the shares' heads, the longest first to the least-loaded share, and the short tests fill
each share behind them: the long waits overlap each other and the short tests instead of queueing on
one worker (with every slow module first and xdist's `load` chunks, one worker got them all and ran
133 s while the others were done after 55 s). How long a module takes is what the previous run measured
(kept in pytest's cache); a module never measured counts by its tests marked `slow`. Whole modules
move, so module-scoped servers start once per worker; a serial run (no xdist) keeps pytest's order.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

SECONDS_KEY = "faultwatch/module_seconds"  # module node id -> seconds its tests took in the last run
LONG_S = 2.0  # a module taking this long (or with a test marked slow) heads a share
UNMEASURED_SLOW_S = 5.0  # per test marked slow, for a module the cache has no figure for


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _share_sizes(count: int, workers: int) -> list[int]:
    """The test counts worksteal deals out at the start: the pending tests split evenly in turn."""
    sizes = []
    for i in range(workers):
        size = count // (workers - i)
        sizes.append(size)
        count -= size
    return sizes


@pytest.hookimpl(trylast=True)  # after pytest's own fixture-scope reordering
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workerinput = getattr(config, "workerinput", None)  # set on xdist workers only; every worker sorts alike
    if workerinput is None or not items:
        return
    workers = int(workerinput["workercount"])
    cache = getattr(config, "cache", None)
    measured: dict[str, float] = (cache.get(SECONDS_KEY, {}) if cache is not None else {}) or {}

    modules: dict[str, list[pytest.Item]] = defaultdict(list)  # insertion order: pytest's module order
    for item in items:
        modules[_module(item.nodeid)].append(item)

    def seconds(module: str) -> float:
        slow = sum(1 for item in modules[module] if item.get_closest_marker("slow") is not None)
        figure = measured.get(module)
        return float(figure) if isinstance(figure, (int, float)) else UNMEASURED_SLOW_S * slow

    long = sorted((m for m in modules if seconds(m) >= LONG_S), key=seconds, reverse=True)
    heads: list[list[str]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    for module in long:
        lightest = load.index(min(load))
        heads[lightest].append(module)
        load[lightest] += seconds(module)
    short = [item for module, its in modules.items() if module not in long for item in its]

    ordered: list[pytest.Item] = []
    for head_modules, size in zip(heads, _share_sizes(len(items), workers)):
        head = [item for module in head_modules for item in modules[module]]
        fill = max(0, size - len(head))
        ordered += head + short[:fill]
        del short[:fill]
    ordered += short
    assert sorted(map(id, ordered)) == sorted(map(id, items))  # the same tests, only moved
    items[:] = ordered


class _ModuleSeconds:
    """On the xdist controller (or a serial run): adds up each module's test durations and keeps them in
    pytest's cache for the next run's order."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[_module(report.nodeid)] += report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        cache = getattr(session.config, "cache", None)
        if cache is None or not self.seconds:
            return
        known = cache.get(SECONDS_KEY, {}) or {}
        known.update({module: round(s, 2) for module, s in self.seconds.items()})
        cache.set(SECONDS_KEY, known)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(_ModuleSeconds(), "faultwatch-module-seconds")
