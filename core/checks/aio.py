"""asyncio behaviour the protocol modules share (no check type here).

pymodbus and asyncua wait for replies with `asyncio.wait_for`, which on Python 3.11 can drop a
cancellation that arrives in the same loop iteration as the reply (bpo-42130, fixed in 3.12): the
check then carries on as if nothing happened, and an engine stopping its monitors waits for a task
that never ends. `kept_cancel()` after each such call turns a pending cancellation back into
CancelledError (asyncio.timeout then reports its own as TimeoutError, as usual).
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, TypeVar

T = TypeVar("T")


def raise_if_cancelling() -> None:
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def kept_cancel(awaitable: Awaitable[T]) -> T:
    """Await a library call whose waits may swallow a cancellation; re-raise one if it did."""
    result = await awaitable
    raise_if_cancelling()
    return result
