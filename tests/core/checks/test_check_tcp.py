"""tcp checks against a real listener on loopback, a closed port, and targets inside test namespaces."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT, free_port, run_in_netns

from core.checks.base import CheckContext, execute
from core.checks.tcp import CHECK, TcpCheck
from core.events import FailureType, ServiceStatus


async def _run(host: str, port: int, timeout_s: float = 2.0):  # type: ignore[no-untyped-def]
    check = CHECK.make(TcpCheck(host, port), CheckContext(), None)
    try:
        return await execute(check, "", check_type="tcp", timeout_s=timeout_s, slow_ms=1000.0)
    finally:
        await check.close()


async def test_open_port_is_healthy_with_the_connect_time(tcp_server) -> None:
    port, accepted = tcp_server
    result = await _run("127.0.0.1", port)
    assert result.status is ServiceStatus.HEALTHY and result.check == "tcp" and result.error is None
    assert 0 < result.latency_ms < 2000
    # The connection really reached the listener (and was closed at once).
    for _ in range(100):
        if accepted[0]:
            break
        import asyncio
        await asyncio.sleep(0.01)
    assert accepted[0] == 1


async def test_slow_threshold_makes_it_degraded(tcp_server) -> None:
    port, _ = tcp_server
    check = CHECK.make(TcpCheck("127.0.0.1", port), CheckContext(), None)
    result = await execute(check, "", check_type="tcp", timeout_s=2.0, slow_ms=0.000001)
    assert result.status is ServiceStatus.DEGRADED and result.error is not None and result.error.startswith("slow:")


async def test_refused_is_service_unavailable() -> None:
    result = await _run("127.0.0.1", free_port())
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == "connection refused"
    assert result.failure_type is FailureType.SERVICE_UNAVAILABLE


def test_unreachable_network_is_a_network_partition(netns) -> None:
    ns = netns(lo_up=False)  # no interface is up: there is no route to anything
    out = run_in_netns(ns, {"type": "tcp", "host": "127.0.0.1", "port": 554})
    assert out["status"] == "unhealthy" and out["check"] == "tcp"
    assert out["error"] == "cannot connect: network is unreachable"
    assert out["failure_type"] == "network_partition"


def test_silent_host_times_out_as_a_network_partition(netns) -> None:
    ns = netns(lo_up=True)  # the SYN goes into a dummy interface and nothing ever answers
    out = run_in_netns(ns, {"type": "tcp", "host": ns.silent_address, "port": 554}, timeout_s=0.5)
    assert out["status"] == "unhealthy"
    assert out["error"] == "timeout after 0.5 s"
    assert out["failure_type"] == "network_partition"
    assert out["latency_ms"] >= 500


def test_no_route_to_host_is_a_network_partition(netns) -> None:
    ns = netns(lo_up=True)
    out = run_in_netns(ns, {"type": "tcp", "host": ns.no_route_address, "port": 554})
    assert out["status"] == "unhealthy"
    assert out["error"] == "cannot connect: no route to host"
    assert out["failure_type"] == "network_partition"


def test_running_out_of_file_descriptors_here_is_not_the_devices_fault() -> None:
    # A real EMFILE: a child process lowers its own descriptor limit and fills it, then checks (the
    # socket is never made, so nothing needs to listen on the port).
    port = free_port()
    code = f"""
import asyncio, os, resource
from core.checks.base import CheckContext, execute
from core.checks.tcp import CHECK, TcpCheck

async def main():
    check = CHECK.make(TcpCheck("127.0.0.1", {port}), CheckContext(), None)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    held = []
    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    result = await execute(check, "", check_type="tcp", timeout_s=2.0, slow_ms=1000.0)
    print(result.error, "|", result.failure_type.value)

asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr
    # Not the device's fault: no automatic restart of every device at once.
    assert out.stdout.strip() == "cannot connect: too many open files (on this machine) | configuration_error"
