"""The demo rack's network devices that do not speak HTTP: a camera's RTSP port and a TLS web panel.

Both are served in this process on loopback, so `make run` needs nothing but Python: the camera is a
TCP listener that accepts and closes (checked with `type = "tcp"`), and it drops off the network for a
while now and then; the panel is a TLS listener whose certificate, made at start by a private CA
(core/sim/tlscert.py), expires in 12 days, so its `type = "tls"` check shows it degraded with the
days left. The CA is written next to the demo config and named as the panel's `ca_bundle`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

from core.logs import SIM as log
from core.sim.tlscert import CertAuthority, server_context


class NetDevices:
    """A camera (tcp) and a web panel (tls) for the demo rack.

    Attributes:
        camera_port / panel_port: bound ports, after start().
        camera_up: whether the camera's port is open now.
    """

    def __init__(self, directory: Path, host: str = "127.0.0.1", panel_days: float = 12.0,
                 camera_outage: tuple[float, float] | None = (150.0, 20.0)) -> None:
        """`camera_outage` = (every s, for s): the camera's port closes that long, that often (None: never)."""
        self.directory = directory
        self.host = host
        self.panel_days = panel_days
        self.camera_outage = camera_outage
        self.camera_port = 0
        self.panel_port = 0
        self.camera_up = False
        self._camera: asyncio.Server | None = None
        self._panel: asyncio.Server | None = None
        self._outages: asyncio.Task[None] | None = None
        self.ca_file = directory / "demo-ca.pem"

    async def start(self) -> None:
        ca = CertAuthority("Faultwatch demo CA")
        self.ca_file.write_bytes(ca.pem)
        pem = ca.issue("HMI web panel line 2", dt.timedelta(days=self.panel_days, hours=1), (self.host,))
        ctx = server_context(pem, self.directory, "demo-panel")
        self._panel = await asyncio.start_server(self._on_client, self.host, 0, ssl=ctx)
        self.panel_port = int(self._panel.sockets[0].getsockname()[1])
        await self.set_camera_up(True)
        if self.camera_outage is not None:
            self._outages = asyncio.get_running_loop().create_task(self._outage_loop(*self.camera_outage),
                                                                   name="demo:camera-outages")
        log.info("demo: camera RTSP port %d, TLS panel port %d", self.camera_port, self.panel_port)

    async def stop(self) -> None:
        if self._outages is not None:
            self._outages.cancel()
            await asyncio.gather(self._outages, return_exceptions=True)
        for server in (self._camera, self._panel):
            if server is not None:
                server.close()
                await server.wait_closed()
        self._camera = self._panel = None
        self.camera_up = False

    async def set_camera_up(self, up: bool) -> None:
        """Open or close the camera's port (the same port number comes back)."""
        if up and self._camera is None:
            self._camera = await asyncio.start_server(self._on_client, self.host, self.camera_port,
                                                      reuse_address=True)
            self.camera_port = int(self._camera.sockets[0].getsockname()[1])
        elif not up and self._camera is not None:
            self._camera.close()
            await self._camera.wait_closed()
            self._camera = None
        self.camera_up = up

    async def _outage_loop(self, every_s: float, for_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self.set_camera_up(False)
            await asyncio.sleep(for_s)
            await self.set_camera_up(True)

    @staticmethod
    async def _on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    def services_toml(self) -> list[str]:
        """[[services]] tables for the two devices, in core.config's schema."""
        return ["[[services]]", 'id = "cam-l1"', 'name = "Camera line 1 (RTSP)"', 'group = "line-1"',
                f'check = {{ type = "tcp", host = {json.dumps(self.host)}, port = {self.camera_port} }}', "",
                "[[services]]", 'id = "panel-l2"', 'name = "HMI web panel line 2 (TLS)"', 'group = "line-1"',
                f"ca_bundle = {json.dumps(str(self.ca_file))}",
                f'check = {{ type = "tls", host = {json.dumps(self.host)}, port = {self.panel_port}, '
                f"warn_days = 21, critical_days = 7 }}", ""]
