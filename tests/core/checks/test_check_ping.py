"""ping checks: 127.0.0.1 for real, as root and as an unprivileged user where the namespace allows it,
unreachable and silent targets inside test namespaces, and the one-line `--check-config` warning."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import ROOT, netns_command, run_in_netns

from core.checks.base import CheckContext, execute
from core.checks.ping import CHECK, PingCheck, preflight
from core.events import FailureType, ServiceStatus

NOBODY = 65534


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("switching to an unprivileged user needs root")


async def test_ping_loopback_is_healthy_with_the_round_trip() -> None:
    if preflight(PingCheck("127.0.0.1")) is not None:
        pytest.skip(f"no ICMP socket for this user here: {preflight(PingCheck('127.0.0.1'))}")
    ctx = CheckContext()
    check = CHECK.make(PingCheck("127.0.0.1"), ctx, None)
    try:
        result = await execute(check, "", check_type="ping", timeout_s=2.0, slow_ms=1000.0)
    finally:
        await check.close()
        await ctx.close()
    assert result.status is ServiceStatus.HEALTHY and result.check == "ping" and result.error is None
    assert 0 < result.latency_ms < 2000


def test_unprivileged_ping_works_where_ping_group_range_allows_it(netns) -> None:
    _need_root()
    ns = netns(lo_up=True, ping_group_range=f"0 {NOBODY}")
    out = run_in_netns(ns, {"type": "ping", "host": "127.0.0.1"}, user=NOBODY)
    assert out["status"] == "healthy", out
    assert run_in_netns(ns, {"type": "ping", "host": "127.0.0.1"}, user=NOBODY, preflight=True) == {"preflight": None}


def test_unprivileged_ping_where_not_allowed_fails_with_the_reason(netns) -> None:
    _need_root()
    ns = netns(lo_up=True, ping_group_range="1 0")  # the kernel's default: nobody may
    out = run_in_netns(ns, {"type": "ping", "host": "127.0.0.1"}, user=NOBODY)
    assert out["status"] == "unhealthy" and out["failure_type"] == "configuration_error"
    assert out["error"].startswith(f"ping checks cannot open an ICMP socket (uid {NOBODY}, gid {NOBODY}; "
                                   "net.ipv4.ping_group_range is '1 0')")
    assert "CAP_NET_RAW" in out["error"] and "\n" not in out["error"]


def test_check_config_says_so_in_one_line(netns) -> None:
    _need_root()
    ns = netns(lo_up=True, ping_group_range="1 0")
    config = ('[[services]]\nid = "sw1"\ncheck = { type = "ping", host = "10.1.2.3" }\n'
              '[[services]]\nid = "sw2"\ncheck = { type = "ping", host = "10.1.2.4" }\n'
              '[[services]]\nid = "cam"\ncheck = { type = "tcp", host = "10.1.2.5", port = 554 }\n')
    # pytest's temp dirs are private to root: the unprivileged user reads the config from a shared one.
    with tempfile.TemporaryDirectory() as shared:
        os.chmod(shared, 0o755)
        path = Path(shared) / "rack.toml"
        path.write_text(config, encoding="utf-8")
        path.chmod(0o644)
        cmd = netns_command(ns, [sys.executable, "-m", "core.cli", "--check-config", str(path)], NOBODY)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stdout.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith("  warning: ping checks cannot open an ICMP socket")
    assert warnings[0].endswith("(services: sw1, sw2)")
    assert "OK, 3 services" in out.stdout


def test_check_config_is_quiet_where_ping_works(netns, tmp_path: Path) -> None:
    ns = netns(lo_up=True)
    path = tmp_path / "rack.toml"
    path.write_text('[[services]]\nid = "sw1"\ncheck = { type = "ping", host = "h" }\n', encoding="utf-8")
    if os.geteuid() != 0:
        pytest.skip("as a normal user, whether ping works depends on this machine's ping_group_range")
    out = subprocess.run(netns_command(ns, [sys.executable, "-m", "core.cli", "--check-config", str(path)]),
                         capture_output=True, text=True, timeout=60, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0 and "warning" not in out.stdout, out.stdout + out.stderr


def test_network_unreachable(netns) -> None:
    ns = netns(lo_up=False)
    out = run_in_netns(ns, {"type": "ping", "host": "127.0.0.1"})
    assert out["status"] == "unhealthy"
    assert out["error"] == "cannot ping: network is unreachable"
    assert out["failure_type"] == FailureType.NETWORK_PARTITION.value


def test_no_route_to_host(netns) -> None:
    ns = netns(lo_up=True)
    out = run_in_netns(ns, {"type": "ping", "host": ns.no_route_address})
    assert out["status"] == "unhealthy", out
    assert out["error"] == "cannot ping: no route to host"
    assert out["failure_type"] == "network_partition"


def test_silent_host_times_out(netns) -> None:
    ns = netns(lo_up=True)
    out = run_in_netns(ns, {"type": "ping", "host": ns.silent_address}, timeout_s=0.5)
    assert out["status"] == "unhealthy"
    assert out["error"] == "timeout after 0.5 s"
    assert out["failure_type"] == "network_partition"


async def test_ping_ipv6_loopback() -> None:
    import socket
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.connect(("::1", 9))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    problem = preflight(PingCheck("::1"))
    if problem is not None:
        pytest.skip(problem)
    ctx = CheckContext()
    check = CHECK.make(PingCheck("::1"), ctx, None)
    try:
        result = await execute(check, "", check_type="ping", timeout_s=2.0, slow_ms=1000.0)
    finally:
        await check.close()
        await ctx.close()
    assert result.status is ServiceStatus.HEALTHY, result.error


def test_icmp_destination_unreachable_reply(netns) -> None:
    # The namespace's own firewall answers echo requests with ICMP "host unreachable": a real reply.
    ns = netns(lo_up=True, iptables=("-A INPUT -p icmp --icmp-type echo-request -j REJECT "
                                     "--reject-with icmp-host-unreachable",))
    out = run_in_netns(ns, {"type": "ping", "host": "127.0.0.1"})
    assert out["status"] == "unhealthy"
    assert out["error"] == "destination host unreachable (ICMP)"
    assert out["failure_type"] == "network_partition"


def test_local_firewall_refusing_the_packet_is_this_machines_problem(netns) -> None:
    ns = netns(lo_up=True, iptables=("-A OUTPUT -p icmp -j REJECT",))
    out = run_in_netns(ns, {"type": "ping", "host": "127.0.0.1"})
    assert out["status"] == "unhealthy"
    assert out["error"] == "cannot ping: operation not permitted (on this machine)"
    assert out["failure_type"] == "configuration_error"


async def test_raw_pings_share_one_socket_per_engine_and_release_it() -> None:
    """As root, 300 pings at once (to 127.0.0.x) go through one raw socket, each gets its own reply."""
    if os.geteuid() != 0:
        pytest.skip("raw ICMP sockets need root")
    if preflight(PingCheck("127.0.0.1")) is not None:
        pytest.skip(str(preflight(PingCheck("127.0.0.1"))))
    ctx = CheckContext()
    checks = [CHECK.make(PingCheck(f"127.0.{i // 250}.{i % 250 + 1}"), ctx, None) for i in range(300)]
    try:
        results = await asyncio.gather(*(execute(c, "", check_type="ping", timeout_s=5.0, slow_ms=5000.0)
                                         for c in checks))
        raw = ctx.holds() == [("icmp-raw", "4")]
        if not raw:  # root with a ping_group_range that includes it: datagram sockets, nothing shared
            assert ctx.holds() == []
        assert [r.status for r in results] == [ServiceStatus.HEALTHY] * 300, {r.error for r in results}
        # Cancelled pings leave nothing waiting on the shared socket.
        pending = [asyncio.ensure_future(execute(c, "", check_type="ping", timeout_s=0.000001, slow_ms=1.0))
                   for c in checks[:50]]
        await asyncio.gather(*pending)
        if raw:
            channel = ctx._shared[("icmp-raw", "4")]
            assert channel.in_flight == 0
    finally:
        for c in checks:
            await c.close()
    assert ctx.holds() == []  # the last check's close() closed the socket
    await ctx.close()
