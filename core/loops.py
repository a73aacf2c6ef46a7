"""Event loops: uvloop where the platform has it, asyncio's own elsewhere.

Measured in bench/throughput.py (docs/benchmarks.md): on uvloop the engine spends 15-17 % less CPU per
check. `FAULTWATCH_LOOP=asyncio` chooses asyncio's loop anyway (to compare, or to rule uvloop out).
"""

from __future__ import annotations

import asyncio
import os
from typing import Callable

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory() -> LoopFactory:
    if os.environ.get("FAULTWATCH_LOOP", "").lower() != "asyncio":
        try:
            import uvloop
        except ImportError:  # Windows, or an install without it: asyncio's loop is fine
            pass
        else:
            return uvloop.new_event_loop
    return plain_loop


def plain_loop() -> asyncio.AbstractEventLoop:
    """asyncio's own loop for this platform, whatever loop policy is installed: a worker thread
    started while the GUI runs must not get the GUI's policy (qasync's), whose loops are Qt's."""
    return asyncio.DefaultEventLoopPolicy().new_event_loop()


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
