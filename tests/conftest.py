"""Suite-wide collection order for parallel runs (`make test` runs pytest-xdist).

Most of the suite's wall time is waiting (real processes starting, devices answering, a 36 s engine
stop), not CPU, so the workers outnumber the cores. Under xdist a test that starts last finishes last:
modules with tests marked `slow` are put first, so their waits overlap the many short tests instead of
trailing after them. Whole modules move, in their own order, so module-scoped servers start once per
worker; a serial run (no xdist) keeps pytest's order.
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)  # after pytest's own fixture-scope reordering
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):  # set on xdist workers only; every worker sorts alike
        return
    def module(item: pytest.Item) -> str:
        return item.nodeid.split("::", 1)[0]

    slow_modules = {module(item) for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: module(item) not in slow_modules)  # stable: False (slow) sorts first
