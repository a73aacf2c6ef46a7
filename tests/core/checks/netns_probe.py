"""Runs one check inside a network namespace (started by conftest.run_in_netns) and prints the result.

    python netns_probe.py '{"type": "tcp", "host": "...", "port": 1}' TIMEOUT_S [--preflight]

Prints one JSON line: the CheckResult's fields, or {"preflight": <text or null>}.
"""

from __future__ import annotations

import asyncio
import json
import sys

from core.checks.base import CheckContext, execute
from core.config import parse_config


async def main(table: dict[str, object], timeout_s: float, preflight: bool) -> dict[str, object]:
    inline = ", ".join(f"{k} = {json.dumps(v)}" for k, v in table.items())
    config = parse_config(f'[[services]]\nid = "probe"\ncheck = {{ {inline} }}\n', label="netns")
    svc = config.services[0]
    if preflight:
        from core.checks.registry import preflight as run_preflight
        return {"preflight": (run_preflight([svc]) or [None])[0]}
    from core.checks.registry import check_types
    ctx = CheckContext()
    check = check_types()[svc.check_type].make(svc.check, ctx, svc)
    try:
        result = await execute(check, "", check_type=svc.check_type, timeout_s=timeout_s, slow_ms=10_000)
    finally:
        await check.close()
        await ctx.close()
    return {"status": result.status.value, "error": result.error, "check": result.check,
            "failure_type": result.failure_type.value if result.failure_type else None,
            "latency_ms": result.latency_ms, "value": result.value}


if __name__ == "__main__":
    out = asyncio.run(main(json.loads(sys.argv[1]), float(sys.argv[2]), "--preflight" in sys.argv[3:]))
    print(json.dumps(out))
