"""Restart actions: the real thing the seed only printed.

An HTTP request to the device's management URL over the engine's shared session, or a local command
run with `create_subprocess_exec` (never a shell: arguments are passed as they are, so a device name
with `;` or `$(...)` in it is just text). Each action has a timeout and returns what happened.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from core.checks.base import CheckContext
from core.checks.registry import restart_types
from core.config import CommandRestart, HttpRestart, ProtocolRestart, RestartAction
from core.logs import RECOVERY as log



@dataclass(frozen=True, slots=True)
class ActionResult:
    ok: bool
    detail: str
    duration_s: float


def describe_action(action: RestartAction | None) -> str:
    if action is None:
        return ""
    if isinstance(action, HttpRestart):
        return f"{action.method} {action.url}"
    if isinstance(action, ProtocolRestart):
        return restart_types()[action.kind].describe(action.settings)
    return "command: " + " ".join(action.argv)


async def run_action(action: RestartAction, context: CheckContext, timeout_s: float) -> ActionResult:
    """Run a restart action; protocol actions (snmp_set, modbus_write) reuse the checks' connections."""
    start = time.perf_counter()
    try:
        if isinstance(action, HttpRestart):
            return await _run_http(action, context.session, timeout_s, start)
        if isinstance(action, ProtocolRestart):
            async with asyncio.timeout(timeout_s):
                ok, detail = await restart_types()[action.kind].run(action.settings, context, timeout_s)
            return ActionResult(ok, detail, time.perf_counter() - start)
        return await _run_command(action, timeout_s, start)
    except TimeoutError:
        return ActionResult(False, f"restart timed out after {timeout_s:g} s", time.perf_counter() - start)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed action is a result, never a crash
        return ActionResult(False, f"{type(exc).__name__}: {exc}", time.perf_counter() - start)


async def _run_http(action: HttpRestart, session: aiohttp.ClientSession, timeout_s: float,
                    start: float) -> ActionResult:
    try:
        async with asyncio.timeout(timeout_s):
            async with session.request(action.method, action.url, allow_redirects=False) as resp:
                await resp.content.read(4096)
                ok = 200 <= resp.status < 300
                return ActionResult(ok, f"HTTP {resp.status}", time.perf_counter() - start)
    except TimeoutError:
        return ActionResult(False, f"restart request timed out after {timeout_s:g} s", time.perf_counter() - start)
    except aiohttp.ClientError as exc:
        return ActionResult(False, f"restart request failed: {exc}", time.perf_counter() - start)


async def _run_command(action: CommandRestart, timeout_s: float, start: float) -> ActionResult:
    try:
        proc = await asyncio.create_subprocess_exec(
            *action.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
    except OSError as exc:
        return ActionResult(False, f"cannot run {action.argv[0]!r}: {exc.strerror or exc}",
                            time.perf_counter() - start)
    try:
        async with asyncio.timeout(timeout_s):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return ActionResult(False, f"command timed out after {timeout_s:g} s", time.perf_counter() - start)
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    tail = out.decode("utf-8", "replace").strip().splitlines()[-1:] if out else []
    detail = f"exit {proc.returncode}" + (f": {tail[0][:200]}" if tail else "")
    return ActionResult(proc.returncode == 0, detail, time.perf_counter() - start)
