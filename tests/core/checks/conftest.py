"""Real servers on loopback for the network check types, and namespaces that make unreachable targets.

Everything listens on 127.0.0.1 on a free port and is stopped by its fixture. Unreachable and silent
targets live only inside network namespaces the tests create (`ip netns add`): a namespace whose `lo`
is down (nothing is reachable), or one where a private /30 is routed into `lo` without being a local
address (packets to it vanish: a connect or ping that never completes) and another /30 has an
"unreachable" route (no route to host). A check is run
inside a namespace as a subprocess (`ip netns exec ... python netns_probe.py`). Where namespaces are
not permitted the tests skip with the reason.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import pytest

from core.sim.tlscert import CertAuthority, Pem, server_context

ROOT = Path(__file__).resolve().parents[3]
PROBE = Path(__file__).resolve().parent / "netns_probe.py"
_names = itertools.count()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port nothing listens on now (bound and released; for UDP and TCP both when kind is DGRAM)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, other) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


# ---------------------------------------------------------------- TCP

@pytest.fixture
async def tcp_server() -> AsyncIterator[tuple[int, list[int]]]:
    """A listener that accepts and closes; yields (port, accepted count)."""
    accepted = [0]

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted[0] += 1
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port, accepted
    server.close()
    await server.wait_closed()


# ---------------------------------------------------------------- network namespaces

@dataclass(frozen=True)
class Netns:
    name: str
    silent_address: str  # inside the namespace: routed nowhere, so nothing ever answers
    no_route_address: str  # inside the namespace: an "unreachable" route (no route to host)


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


@pytest.fixture
def netns() -> Iterator[Callable[..., Netns]]:
    """Makes namespaces: `netns(lo_up=False)` (nothing reachable) or `netns(lo_up=True)` with a silent /30."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (ip) not installed")
    made: list[str] = []

    def make(lo_up: bool = True, ping_group_range: str | None = None, iptables: tuple[str, ...] = ()) -> Netns:
        """`iptables`: rules (argument strings) added inside the namespace, e.g. to reject pings."""
        name = f"fwtest-{os.getpid()}-{next(_names)}"
        out = _ip("netns", "add", name)
        if out.returncode != 0:
            pytest.skip(f"cannot create a network namespace here: {out.stderr.strip()}")
        made.append(name)
        steps = [["link", "set", "lo", "up"]] if lo_up else []
        # 10.255.0.0/30 is routed into lo but is no address of ours and nothing forwards: packets to it
        # vanish (a connect or ping that never completes). 10.255.1.0/30 has an "unreachable" route.
        steps += [["route", "add", "10.255.0.0/30", "dev", "lo"],
                  ["route", "add", "unreachable", "10.255.1.0/30"]] if lo_up else []
        for step in steps:
            res = _ip("-n", name, *step)
            if res.returncode != 0:
                pytest.skip(f"cannot configure the test namespace ({' '.join(step)}): {res.stderr.strip()}")
        for rule in iptables:
            if shutil.which("iptables") is None:
                pytest.skip("iptables not installed")
            res = subprocess.run(["ip", "netns", "exec", name, "iptables", *rule.split()],
                                 capture_output=True, text=True, timeout=10)
            if res.returncode != 0:
                pytest.skip(f"cannot add a firewall rule in the test namespace: {res.stderr.strip()}")
        if ping_group_range is not None:
            res = subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw",
                                  f"net.ipv4.ping_group_range={ping_group_range}"],
                                 capture_output=True, text=True, timeout=10)
            if res.returncode != 0:
                pytest.skip(f"cannot set ping_group_range in the test namespace: {res.stderr.strip()}")
        return Netns(name, "10.255.0.2", "10.255.1.2")

    yield make
    for name in made:
        _ip("netns", "del", name)


def netns_command(ns: Netns, argv: list[str], user: int | None = None) -> list[str]:
    """argv run inside the namespace, as `user` (uid = gid, no other groups) when given.

    The user is switched after entering the namespace (setpriv): entering one needs root.
    """
    if user is None:
        return ["ip", "netns", "exec", ns.name, *argv]
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) not installed: cannot run a check as an unprivileged user")
    return ["ip", "netns", "exec", ns.name, setpriv, f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]


def run_in_netns(ns: Netns, check: dict[str, Any], *, timeout_s: float = 1.0, user: int | None = None,
                 preflight: bool = False) -> dict[str, Any]:
    """Run one check (a `check = {...}` table) inside the namespace; returns the result as a dict."""
    cmd = netns_command(ns, [sys.executable, str(PROBE), json.dumps(check), str(timeout_s)], user)
    if preflight:
        cmd.append("--preflight")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr[-2000:]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# ---------------------------------------------------------------- DNS (dnsmasq)

@dataclass(frozen=True)
class DnsServers:
    port: int  # the lab's server: plc1.lab / plc2.lab / panel.lab / big.lab, NXDOMAIN for other .lab names
    servfail_port: int  # a validating resolver in front of it: every answer is bogus → SERVFAIL
    refused_port: int  # knows nothing and forwards nowhere → REFUSED


def _dnsmasq(binary: str, port: int, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    # --no-resolv and no --server without an address of ours: nothing is ever forwarded off this machine.
    with log.open("wb") as sink:  # the child keeps its own descriptor
        return subprocess.Popen([binary, "--no-daemon", "--conf-file=/dev/null", "--pid-file=", f"--port={port}",
                                 "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                                 *extra], stdout=subprocess.DEVNULL, stderr=sink)


def _wait_dns(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    import dns.message
    import dns.query

    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"dnsmasq exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            dns.query.udp(dns.message.make_query("ready.lab", "A"), "127.0.0.1", port=port, timeout=0.2)
            return
        except Exception:  # noqa: BLE001 - not listening yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="module")
def dns_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServers]:
    binary = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None)
    if binary is None:
        pytest.skip("dnsmasq not installed (Debian package dnsmasq-base)")
    where = tmp_path_factory.mktemp("dns")
    hosts = where / "hosts"
    # big.lab has 100 addresses: more than fits a plain 512-byte UDP answer, so the check must use TCP.
    hosts.write_text("10.1.2.3 plc1.lab\n10.1.2.4 plc2.lab\n10.1.2.9 panel.lab\n10.1.2.10 panel.lab\n"
                     + "".join(f"10.9.0.{i} big.lab\n" for i in range(1, 101)), encoding="ascii")
    lab, servfail, refused = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    logs = [where / "lab.log", where / "servfail.log", where / "refused.log"]
    procs = [_dnsmasq(binary, lab, logs[0], f"--addn-hosts={hosts}", "--local=/lab/", "--txt-record=info.lab,rack 1"),
             # DNSSEC with the root's trust anchor, asking the (unsigned) lab server: nothing validates.
             _dnsmasq(binary, servfail, logs[1], f"--server=127.0.0.1#{lab}", "--dnssec",
                      "--trust-anchor=.,20326,8,2,E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"),
             _dnsmasq(binary, refused, logs[2])]
    try:
        for port, proc, log in zip((lab, servfail, refused), procs, logs):
            _wait_dns(port, proc, log)
        yield DnsServers(lab, servfail, refused)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# ---------------------------------------------------------------- TLS

@dataclass(frozen=True)
class Certs:
    ca_file: Path
    ok: Pem  # 365 days, issued by the CA for 127.0.0.1 and panel.test
    soon: Pem  # 3 days (and an hour, so it shows as 3 whole days)
    warn: Pem  # 14 days: between critical (7) and warn (21)
    expired: Pem  # ended 2 days ago
    self_signed: Pem  # 365 days, signed by itself


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    pytest.importorskip("cryptography")
    where = tmp_path_factory.mktemp("pki")
    ca = CertAuthority()
    ca_file = where / "ca.pem"
    ca_file.write_bytes(ca.pem)
    hosts = ("127.0.0.1", "panel.test")
    hour = dt.timedelta(hours=1)
    return Certs(ca_file, ca.issue("panel ok", dt.timedelta(days=365), hosts),
                 ca.issue("panel soon", dt.timedelta(days=3) + hour, hosts),
                 ca.issue("panel warn", dt.timedelta(days=14) + hour, hosts),
                 ca.issue("panel expired", -dt.timedelta(days=2) - hour, hosts),
                 ca.issue("panel self-signed", dt.timedelta(days=365), hosts, self_signed=True))


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[Callable[[Pem], Any]]:
    """`port = await tls_server(pem)`: an asyncio TLS listener on loopback serving that certificate."""
    servers: list[asyncio.Server] = []

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def start(pem: Pem) -> int:
        ctx = server_context(pem, tmp_path, f"server{len(servers)}")
        server = await asyncio.start_server(on_client, "127.0.0.1", 0, ssl=ctx)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()
