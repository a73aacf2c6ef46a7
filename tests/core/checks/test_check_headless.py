"""The real `faultwatch --headless` process watching tcp, tls, dns and ping services on loopback: the
JSON-lines stream carries their verdicts like any http service's."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from conftest import ROOT

from core.checks.ping import PingCheck, preflight


async def test_headless_stream_shows_each_network_type(tmp_path: Path, tls_server, certs, dns_servers,
                                                       tcp_server) -> None:
    cam_port, _ = tcp_server
    panel_port = await tls_server(certs.warn)
    can_ping = preflight(PingCheck("127.0.0.1")) is None
    config = f"""
[fault_detection]
check_interval_seconds = 0.3
timeout_seconds = 1.0
[api]
enabled = false

[[services]]
id = "cam"
check = {{ type = "tcp", host = "127.0.0.1", port = {cam_port} }}

[[services]]
id = "panel"
ca_bundle = {json.dumps(str(certs.ca_file))}
check = {{ type = "tls", host = "127.0.0.1", port = {panel_port} }}

[[services]]
id = "dns"
check = {{ type = "dns", server = "127.0.0.1", port = {dns_servers.port}, name = "plc9.lab" }}
""" + ('\n[[services]]\nid = "sw"\ncheck = { type = "ping", host = "127.0.0.1" }\n' if can_ping else "")
    path = tmp_path / "rack.toml"
    path.write_text(config, encoding="utf-8")
    # Not subprocess.run: this loop must keep serving the TLS panel while faultwatch runs.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "core.cli", "--headless", "--config", str(path), "--events", "-", "--duration", "3",
        "--state-dir", str(tmp_path / "state"), cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    probes = {}
    for line in out.decode().splitlines():
        event = json.loads(line)
        if event["kind"] == "probe":
            probes.setdefault(event["service"], event)  # the first verdict of each
    assert probes["cam"]["status"] == "healthy" and probes["cam"]["check"] == "tcp"
    assert probes["panel"]["check"] == "tls" and 14 < probes["panel"]["value"] < 15
    assert probes["panel"]["status"] == "degraded" and probes["panel"]["error"] == "certificate expires in 14 days"
    assert probes["dns"]["status"] == "unhealthy" and probes["dns"]["error"] == "plc9.lab does not exist (NXDOMAIN)"
    if can_ping:
        assert probes["sw"]["status"] == "healthy" and probes["sw"]["check"] == "ping"
