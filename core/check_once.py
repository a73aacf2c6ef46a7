"""One check, right now, of a service that may exist only in an editor: the console's "Test" button.

It goes through the same registry and `execute()` as the engine's checks (timeout, latency, slow →
degraded, exceptions → verdict), with its own short-lived HTTP session and check context, so nothing of
the running engine is touched and nothing is saved.
"""

from __future__ import annotations

import aiohttp

from core.checks.base import CheckContext, CheckResult, execute
from core.checks.registry import check_types
from core.config import ServiceConfig
from core.probe import make_session


async def check_once(service: ServiceConfig, session: aiohttp.ClientSession | None = None) -> CheckResult:
    """Run `service`'s check once against its (primary) endpoint and return the verdict."""
    own = session is None
    http = make_session(limit=4) if session is None else session
    ctx = CheckContext(http)
    try:
        check = check_types()[service.check_type].make(service.check, ctx, service)
        try:
            fd = service.fault_detection
            return await execute(check, service.endpoint, check_type=service.check_type,
                                 timeout_s=fd.timeout_seconds, slow_ms=fd.slow_response_threshold_ms)
        finally:
            await check.close()
    finally:
        await ctx.close()
        if own:
            await http.close()
