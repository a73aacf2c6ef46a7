"""A fleet through Prometheus: the real Prometheus scrapes three real headless engines on loopback.

Three `faultwatch --headless` processes (sites north, south, lab) watch a simulated rack; a real
Prometheus (Debian package) on a free loopback port, with its storage in tmp_path, scrapes them every
second and evaluates docs/deploy/faultwatch-rules.yml. The test then reads the fleet's state across
the three engines through Prometheus' HTTP query API: every engine answering, services per site, the
one dead device, per-site availability, the open breaker, the alerts pending, an engine stopped and
seen down. The Grafana dashboard's queries must all run on that data.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

from core.sim.devices import DeviceSpec

if TYPE_CHECKING:
    from tests.e2e.conftest import FaultwatchProcess, SimThread

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "docs" / "deploy"
SITES = {"north": ["pump", "dead"], "south": ["web", "db"], "lab": ["cam"]}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _engine_config(sim: SimThread, port: int, services: list[str]) -> str:
    out = [f"""
[fault_detection]
check_interval_seconds = 0.2
timeout_seconds = 1
max_failures = 2
jitter_fraction = 0

[circuit_breaker]
failure_threshold = 2

[api]
listen = "127.0.0.1:{port}"
"""]
    for service in services:
        out.append(f'[[services]]\nid = "{service}"\nendpoint = "{sim.base_url(service)}"\ngroup = "rack"\n')
    return "\n".join(out)


class Prometheus:
    """A real Prometheus process on loopback; `query` runs PromQL through its HTTP API."""

    def __init__(self, binary: str, config: Path, data: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._log = (data.parent / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={data}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=self._log, stderr=subprocess.STDOUT)

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - loopback
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=promql)
        return data["result"] if data["resultType"] == "vector" else [data]

    def values(self, promql: str, *labels: str) -> dict[tuple[str, ...], float]:
        return {tuple(r["metric"].get(k, "") for k in labels): float(r["value"][1]) for r in self.query(promql)}

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.proc.poll() is None, "prometheus exited:\n" + Path(self._log.name).read_text()
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:  # noqa: S310
                    if r.status == 200:
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, "prometheus not ready:\n" + Path(self._log.name).read_text()
            time.sleep(0.2)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._log.close()


def _until(what: str, probe: Callable[[], Any], ok: Callable[[Any], bool], timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if ok(value):
            return value
        assert time.monotonic() < deadline, f"{what}: last seen {value!r}"
        time.sleep(0.25)


@pytest.fixture
def fleet(tmp_path: Path, faultwatch: Callable[..., FaultwatchProcess],
          sim_rack: Callable[[list[DeviceSpec]], SimThread]) -> Iterator[tuple[Prometheus, dict[str, FaultwatchProcess], dict[str, int]]]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed (Debian package prometheus)")
    specs = [DeviceSpec(d, "down" if d == "dead" else "healthy") for devices in SITES.values() for d in devices]
    sim = sim_rack(specs)
    engines: dict[str, FaultwatchProcess] = {}
    ports: dict[str, int] = {}
    for site, services in SITES.items():
        ports[site] = _free_port()
        config = tmp_path / f"{site}.toml"
        config.write_text(_engine_config(sim, ports[site], services), encoding="utf-8")
        engines[site] = faultwatch("--headless", "--config", str(config), "--state-dir", str(tmp_path / site))
    for site, proc in engines.items():
        proc.wait_for_line(rf"running headless: {len(SITES[site])} services")

    targets = "\n".join(f'      - targets: ["127.0.0.1:{ports[site]}"]\n        labels: {{site: {site}}}'
                        for site in SITES)
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {DEPLOY / "faultwatch-rules.yml"}
scrape_configs:
  - job_name: faultwatch
    honor_labels: true
    static_configs:
{targets}
""", encoding="utf-8")
    prometheus = Prometheus(binary, config, tmp_path / "prometheus-data", _free_port())
    try:
        prometheus.wait_ready()
        yield prometheus, engines, ports
    finally:
        prometheus.close()


def test_prometheus_reads_the_fleet_state_across_three_engines(
        fleet: tuple[Prometheus, dict[str, FaultwatchProcess], dict[str, int]]) -> None:
    prom, engines, ports = fleet

    # Every engine scraped.
    _until("all three engines up", lambda: prom.values('up{job="faultwatch"}', "site"),
           lambda v: v == {("north",): 1.0, ("south",): 1.0, ("lab",): 1.0})
    assert prom.values("sum by (site) (faultwatch_services)", "site") == {
        ("north",): 2.0, ("south",): 2.0, ("lab",): 1.0}
    versions = prom.values("count by (version) (faultwatch_build_info)", "version")
    assert sum(versions.values()) == 3

    # Each service's verdict, across the engines: only north's dead device is down.
    verdicts = _until(
        "every service checked, the dead one down",
        lambda: prom.values("faultwatch_up", "site", "service"),
        lambda v: len(v) == 5 and v.get(("north", "dead")) == 0.0
        and all(x == 1.0 for k, x in v.items() if k != ("north", "dead")))
    assert set(verdicts) == {(site, s) for site, services in SITES.items() for s in services}
    assert prom.values("faultwatch_up == 0", "site", "service") == {("north", "dead"): 0.0}

    # The recording rules over the fleet: per-site availability and the open breaker.
    _until("site availability recorded", lambda: prom.values("faultwatch:site_availability:ratio", "site"),
           lambda v: v == {("north",): 0.5, ("south",): 1.0, ("lab",): 1.0})
    _until("breaker open recorded", lambda: prom.values("faultwatch:breaker_open:bool == 1", "site", "service"),
           lambda v: v == {("north", "dead"): 1.0})
    # Latencies arrive in seconds: a loopback simulator answers well under one.
    latency = prom.values("faultwatch_latency_p50_seconds", "service")
    assert latency and all(0 < v < 1 for v in latency.values())

    # The alert rules see it too (pending: their `for` has not run out in a test).
    pending = _until(
        "alerts pending for the dead device and its site",
        lambda: {(r["metric"]["alertname"], r["metric"].get("service", r["metric"].get("site", "")))
                 for r in prom.query('ALERTS{alertstate="pending"}')},
        lambda v: {("FaultwatchBreakerOpenTooLong", "dead"), ("FaultwatchSiteAvailabilityLow", "north")} <= v)
    assert not [a for a in pending if a[0] == "FaultwatchEngineDown"]

    # Every query of the Grafana dashboard runs on this data (with "All" sites chosen).
    from tests.e2e.test_deploy_files import dashboard_queries
    for promql in dashboard_queries():
        prom.query(promql.replace("$site", ".*"))

    # An engine stops (SIGTERM: clean exit); Prometheus sees it down and the alert becomes pending.
    assert engines["lab"].terminate() == 0
    _until("lab engine seen down", lambda: prom.values('up{job="faultwatch"}', "site").get(("lab",)),
           lambda v: v == 0.0)
    _until("engine-down alert pending", lambda: prom.values('ALERTS{alertname="FaultwatchEngineDown"}', "site"),
           lambda v: ("lab",) in v)
    assert prom.values('up{job="faultwatch"} == 1', "site") == {("north",): 1.0, ("south",): 1.0}


def test_a_real_engines_metrics_pass_promtool(
        fleet: tuple[Prometheus, dict[str, FaultwatchProcess], dict[str, int]]) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    _prom, _engines, ports = fleet
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['north']}/metrics", timeout=10) as r:  # noqa: S310
        text = r.read().decode()
    assert "faultwatch_up{" in text
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
