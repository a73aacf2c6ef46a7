"""execute() honours a cancellation that a protocol library swallowed (asyncio.wait_for on Python 3.11
returns the result when it completes together with the cancel): found with 1,000 ping checks, whose
monitors then never stopped."""

from __future__ import annotations

import asyncio

import pytest

from core.checks.base import CheckResult, execute, healthy
from core.events import FailureType, ServiceStatus


class _Swallower:
    """A check that, like a library caught in the race, catches the cancellation and returns normally."""

    def __init__(self) -> None:
        self.swallowed = 0
        self.started = asyncio.Event()

    async def run(self, endpoint: str) -> CheckResult:
        self.started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.swallowed += 1
        return healthy(1.0, "swallow")

    def describe_error(self, exc: BaseException) -> tuple[str, FailureType]:
        return str(exc), FailureType.SERVICE_UNAVAILABLE

    async def close(self) -> None:
        return None


async def test_a_swallowed_timeout_is_still_a_timeout() -> None:
    check = _Swallower()
    result = await execute(check, "", check_type="swallow", timeout_s=0.05, slow_ms=1000.0)
    assert check.swallowed == 1
    assert result.status is ServiceStatus.UNHEALTHY and result.error == "timeout after 0.05 s"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # nothing left pending for later awaits


async def test_a_swallowed_stop_still_stops_the_caller() -> None:
    check = _Swallower()
    runner = asyncio.ensure_future(execute(check, "", check_type="swallow", timeout_s=3600.0, slow_ms=1000.0))
    await check.started.wait()
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert check.swallowed == 1


class _SwallowAndFail(_Swallower):
    """Swallows the cancellation and then fails (a library's own timeout firing afterwards)."""

    async def run(self, endpoint: str) -> CheckResult:
        await super().run(endpoint)
        raise OSError("library timeout")


async def test_a_swallowed_stop_followed_by_an_error_still_stops_the_caller() -> None:
    check = _SwallowAndFail()
    runner = asyncio.ensure_future(execute(check, "", check_type="swallow", timeout_s=3600.0, slow_ms=1000.0))
    await check.started.wait()
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert check.swallowed == 1
