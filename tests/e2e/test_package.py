"""The frozen executable in dist/faultwatch/ (built by `make package`): it runs, and fails politely.

These run only when a bundle exists (`pytest -m package` after `make package`); otherwise they are
skipped with the reason, so `make test` on a fresh checkout stays green and fast. The bundle is not
rebuilt here: packaging/build.py builds it and runs the same kind of checks on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core import __version__

ROOT = Path(__file__).resolve().parents[2]
EXECUTABLE = ROOT / "dist" / "faultwatch" / ("faultwatch.exe" if os.name == "nt" else "faultwatch")
EXAMPLES = sorted((ROOT / "resources" / "examples").glob("*.toml"))

pytestmark = [
    pytest.mark.package,
    pytest.mark.skipif(not EXECUTABLE.is_file(),
                       reason=f"no bundle at {EXECUTABLE.relative_to(ROOT)}: run `make package` first"),
]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "FAULTWATCH_CONFIG")}
    env.update(QT_QPA_PLATFORM="offscreen", FAULTWATCH_STATE_DIR=str(tmp_path / "state"),
               FAULTWATCH_CONFIG_DIR=str(tmp_path / "config"), XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    return env


def _run(tmp_path: Path, *args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # cwd outside the repository: the bundle must find its resources in itself, not in ./resources.
    return subprocess.run([str(EXECUTABLE), *map(str, args)], env=_env(tmp_path), cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout)


def test_version(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"faultwatch {__version__}"


def test_self_test_completes_a_fault_cycle(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--self-test", timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASSED" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_check_config_refuses_a_bad_file_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[fault_detection]\ncheck_interval_seconds = "often"\n', encoding="utf-8")
    proc = _run(tmp_path, "--check-config", bad)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "check_interval_seconds" in lines[0]  # the message names the key path


@pytest.mark.skipif(not EXAMPLES, reason="no example configs in resources/examples/")
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_check_config_accepts_the_shipped_examples(tmp_path: Path, example: Path) -> None:
    proc = _run(tmp_path, "--check-config", example)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_bundle_carries_the_demo_scenario_and_icon() -> None:
    resources = EXECUTABLE.parent / "_internal" / "resources"
    assert (resources / "scenarios" / "demo.toml").is_file()
    assert (resources / "faultwatch.svg").is_file()


# ------------------------------------------------------------------ every protocol library, inside the bundle
# The bundled `faultwatch --headless` watches one service of each check type, each against a real server on
# loopback that this test starts (the same servers as tests/core/checks/), and an alert goes out through
# apprise to a local json:// receiver. A library the spec left out, or one that imports a part the bundle
# lacks, shows up as an error in that type's verdict (or no verdict at all), so each one must come back
# healthy. Then the journal it wrote is exported as PDF by the bundle's Qt.

def _load(name: str, path: Path) -> Any:
    # By path, under a name of its own: tests/core/checks/ is not on sys.path when this file runs alone.
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


servers = _load("package_industrial_servers", ROOT / "tests" / "core" / "checks" / "industrial_servers.py")


def _dnsmasq(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None)
    if binary is None:
        pytest.skip("dnsmasq not installed (Debian package dnsmasq-base)")
    hosts = tmp_path / "hosts"
    hosts.write_text("10.1.2.3 plc1.lab\n", encoding="ascii")
    port = servers.free_port(socket.SOCK_DGRAM)
    # --no-resolv and no --server: nothing is forwarded off this machine.
    proc = subprocess.Popen([binary, "--no-daemon", "--conf-file=/dev/null", "--pid-file=", f"--port={port}",
                             "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                             f"--addn-hosts={hosts}", "--local=/lab/"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


class _Receiver:
    """An HTTP server on loopback taking apprise's json:// posts."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.port = 0
        self._runner: Any = None

    async def start(self) -> None:
        from aiohttp import web

        async def take(request: web.Request) -> web.Response:
            self.posts.append(await request.json())
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/{tail:.*}", take)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def _tls_listener(tmp_path: Path) -> tuple[asyncio.Server, int, Path]:
    from core.sim.tlscert import CertAuthority, server_context

    ca = CertAuthority()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.pem)
    pem = ca.issue("panel", dt.timedelta(days=100), ("127.0.0.1",))

    async def on_client(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0, ssl=server_context(pem, tmp_path, "panel"))
    return server, int(server.sockets[0].getsockname()[1]), ca_file


@pytest.mark.timeout(300)
async def test_bundle_runs_every_check_type_and_notifies(tmp_path: Path) -> None:
    from core.checks.ping import PingCheck, preflight

    snmpd = servers.Snmpd(tmp_path / "snmpd")
    (tmp_path / "snmpd").mkdir()
    mosquitto = servers.Mosquitto(tmp_path / "mqtt")
    (tmp_path / "mqtt").mkdir()
    servers.snmpd_binary()  # skip with the reason where the Debian packages are missing
    servers.mosquitto_binary()
    dns_proc, dns_port = _dnsmasq(tmp_path)
    plc, opc, receiver = servers.Plc(), servers.OpcServer(), _Receiver()
    cleanup: list[Any] = []
    try:
        snmpd.start()
        cleanup.append(snmpd.stop)
        mosquitto.start()
        cleanup.append(mosquitto.kill)
        await mosquitto.publish("lab/plc1/status", "online", retain=True)
        await plc.start()
        plc.holding[100] = 42
        await opc.start()
        await receiver.start()
        tls_server, tls_port, ca_file = await _tls_listener(tmp_path)
        cleanup.append(tls_server.close)
        tcp_server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0)
        cleanup.append(tcp_server.close)
        tcp_port = int(tcp_server.sockets[0].getsockname()[1])
        can_ping = preflight(PingCheck("127.0.0.1")) is None
        config = f"""
[fault_detection]
check_interval_seconds = 0.5
timeout_seconds = 3.0
[api]
enabled = false

[[notify]]
url = "json://127.0.0.1:{receiver.port}/hook"
min_severity = "warning"

[[services]]
id = "plc"
check = {{ type = "modbus", host = "127.0.0.1", port = {plc.port}, unit = 1, table = "holding", address = 100, min = 0, max = 80 }}

[[services]]
id = "ups"
check = {{ type = "snmp", host = "127.0.0.1", port = {snmpd.port}, community_env = "PKG_SNMP_COMMUNITY", oid = "1.3.6.1.2.1.1.3.0" }}

[[services]]
id = "sensor"
check = {{ type = "mqtt", broker = "{mosquitto.url}", topic = "lab/plc1/status", max_age_seconds = 600, equals = "online" }}

[[services]]
id = "resolver"
check = {{ type = "dns", server = "127.0.0.1", port = {dns_port}, name = "plc1.lab", record = "A", expect = ["10.1.2.3"] }}

[[services]]
id = "opc"
check = {{ type = "opcua", url = "{opc.url}", node = "{opc.node_id}", equals = 21.5 }}

[[services]]
id = "cam"
check = {{ type = "tcp", host = "127.0.0.1", port = {tcp_port} }}

[[services]]
id = "panel"
ca_bundle = {json.dumps(str(ca_file))}
check = {{ type = "tls", host = "127.0.0.1", port = {tls_port} }}

[[services]]
id = "gone"
check = {{ type = "tcp", host = "127.0.0.1", port = {servers.free_port()} }}
""" + ('\n[[services]]\nid = "switch"\ncheck = { type = "ping", host = "127.0.0.1" }\n' if can_ping else "")
        path = tmp_path / "rack.toml"
        path.write_text(config, encoding="utf-8")
        healthy = {"plc", "ups", "sensor", "resolver", "opc", "cam", "panel"} | ({"switch"} if can_ping else set())
        env = _env(tmp_path) | {"PKG_SNMP_COMMUNITY": snmpd.read_community}
        # Not subprocess.run: this loop serves the PLC, the OPC UA server, the TLS panel and the receiver.
        proc = await asyncio.create_subprocess_exec(
            str(EXECUTABLE), "--headless", "--config", str(path), "--events", "-", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        seen: dict[str, list[dict[str, Any]]] = {}
        sent: list[dict[str, Any]] = []

        def done() -> bool:
            return (all(any(e["status"] == "healthy" for e in seen.get(s, [])) for s in healthy)
                    and bool(sent) and bool(receiver.posts))

        async def read_stream() -> None:
            assert proc.stdout is not None
            while not done():
                line = await proc.stdout.readline()
                if not line:
                    return
                event = json.loads(line)
                if event["kind"] == "probe":
                    seen.setdefault(event["service"], []).append(event)
                elif event["kind"] == "notify" and event["outcome"] == "sent":
                    sent.append(event)
                if sent and not receiver.posts:
                    await asyncio.sleep(0.1)  # the receiver's handler may not have run yet

        try:
            with contextlib.suppress(TimeoutError):  # a bound for a hang, not a measurement: reported below
                await asyncio.wait_for(read_stream(), timeout=90)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        stderr = err.decode(errors="replace")
        summary = {s: [(e["status"], e.get("error")) for e in events[-3:]] for s, events in seen.items()}
        assert done(), f"verdicts {summary}, notifications sent {sent}\nstderr:\n{stderr[-3000:]}"
        assert proc.returncode == 0, stderr[-3000:]
        assert "Traceback" not in stderr and "No module named" not in stderr, stderr[-3000:]
        for service in healthy:
            assert seen[service][-1]["check"] in {"modbus", "snmp", "mqtt", "dns", "opcua", "tcp", "tls", "ping"}
        assert seen["plc"][-1]["value"] == 42
        assert seen["opc"][-1]["value"] == 21.5
        assert 99 < seen["panel"][-1]["value"] <= 100
        assert seen["gone"][-1]["status"] == "unhealthy"
        assert any("gone" in json.dumps(post) for post in receiver.posts), receiver.posts

        # The journal it wrote, as PDF: the report's Qt path (QPdfWriter, QTextDocument, QtSvg) in the bundle.
        pdf = tmp_path / "week.pdf"
        report = await asyncio.create_subprocess_exec(
            str(EXECUTABLE), "report", "--since", "1h", "--format", "pdf", "--out", str(pdf), "--config", str(path),
            env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(report.communicate(), timeout=120)
        assert report.returncode == 0, (out + err).decode(errors="replace")[-3000:]
        assert pdf.read_bytes().startswith(b"%PDF")
        if shutil.which("pdftotext"):
            text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
            assert "resolver" in text and "gone" in text, text[:2000]
    finally:
        for stop in reversed(cleanup):
            stop()
        dns_proc.terminate()
        dns_proc.wait(timeout=10)
        await receiver.stop()
        await opc.stop()
        await plc.stop()
