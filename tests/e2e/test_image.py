"""The container image (built by `make image`), run with podman: it watches, streams events, stops cleanly.

Runs only with `-m image` (`make image-test` builds the image first); skipped with its reason when podman
or the image is missing. The container shares the host's network namespace and listens on loopback
only, on a free port; the devices are a simulated rack on loopback. Checked: the engine runs as the
non-root user with its config at /config and its journal in the /state volume; events come out as JSON
lines on stdout; /healthz and /metrics answer; the image's HEALTHCHECK passes; SIGTERM (`podman stop`)
ends it with exit 0 and a journal that holds every event it streamed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import pytest

from core.clock import SystemClock
from core.config import JournalConfig
from core.journal import Journal
from core.paths import JOURNAL_FILENAME
from core.sim.devices import DeviceSpec

if TYPE_CHECKING:
    from tests.e2e.conftest import SimThread

REPO = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("FAULTWATCH_IMAGE", "faultwatch:latest")
CONTAINER_UID = 10001


def _podman_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(REPO / "packaging" / "container" / "containers.conf"))
    return env


def _podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, env=_podman_env(), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc


def _image_missing() -> str | None:
    if shutil.which("podman") is None:
        return "podman not installed"
    if _podman("image", "exists", IMAGE, check=False).returncode != 0:
        return f"no image {IMAGE}: run `make image` first"
    return None


pytestmark = [pytest.mark.image, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module", autouse=True)
def _need_image() -> None:
    reason = _image_missing()
    if reason:
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - loopback
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def container() -> Iterator[Callable[..., str]]:
    names: list[str] = []

    def run(*args: str) -> str:
        name = f"faultwatch-test-{uuid.uuid4().hex[:10]}"
        names.append(name)
        _podman("run", "-d", "--name", name, "--network", "host", *args, IMAGE)
        return name

    yield run
    for name in names:
        _podman("rm", "-f", "-t", "0", name, check=False)


def _config(sim: SimThread, port: int) -> str:
    return f"""
[fault_detection]
check_interval_seconds = 0.2
timeout_seconds = 1
max_failures = 2
jitter_fraction = 0

[circuit_breaker]
failure_threshold = 2

[api]
listen = "127.0.0.1:{port}"

[[services]]
id = "pump"
endpoint = "{sim.base_url('pump')}"
group = "rack-a"

[[services]]
id = "dead"
endpoint = "{sim.base_url('dead')}"
group = "rack-a"
"""


def _events(name: str) -> list[dict[str, object]]:
    out = _podman("logs", name).stdout  # podman logs keeps the two streams apart
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _wait(what: str, ok: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():
        assert time.monotonic() < deadline, f"{what} within {timeout_s} s"
        time.sleep(0.2)


def test_image_runs_streams_events_and_stops_cleanly(
        tmp_path: Path, container: Callable[..., str],
        sim_rack: Callable[[list[DeviceSpec]], SimThread]) -> None:
    sim = sim_rack([DeviceSpec("pump", "healthy"), DeviceSpec("dead", "down")])
    port = _free_port()
    config = tmp_path / "faultwatch.toml"
    config.write_text(_config(sim, port), encoding="utf-8")
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, CONTAINER_UID, CONTAINER_UID)  # what docs/deploy.md tells a user to do
    name = container("-v", f"{config}:/config/faultwatch.toml:ro", "-v", f"{state}:/state",
                     "-e", "FAULTWATCH_TOKEN=image-test-token")

    _wait("/healthz answering 200", lambda: _healthz(port) == 200)
    status, body = _get(f"http://127.0.0.1:{port}/healthz")
    assert json.loads(body) == {"status": "ok", "checks": {"engine": "ok", "journal": "ok"}}

    def seen() -> bool:
        events = _events(name)
        probed = {e["service"] for e in events if e["kind"] == "probe"}
        opened = any(e["kind"] == "breaker" and e["service"] == "dead" and e.get("to") == "open" for e in events)
        return probed == {"pump", "dead"} and opened
    _wait("probe events for both services and the dead one's breaker opening", seen)

    # Snapshots follow events within a tick; the scrape may come first.
    _wait("/metrics showing pump up and dead's breaker open", lambda: all(
        line in _get(f"http://127.0.0.1:{port}/metrics")[1]
        for line in ('faultwatch_up{service="pump",group="rack-a"} 1',
                     'faultwatch_breaker_state{service="dead",state="open"} 1')))

    # The image's own HEALTHCHECK command, as podman's timer would run it (port from the env).
    assert _podman("exec", name, "id", "-u").stdout.strip() == str(CONTAINER_UID)
    check = _podman("exec", "-e", f"FAULTWATCH_HEALTHZ_URL=http://127.0.0.1:{port}/healthz", name,
                    "/usr/local/bin/faultwatch-healthz", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    healthcheck = json.loads(_podman("image", "inspect", "--format", "{{json .HealthCheck}}", IMAGE).stdout)
    assert healthcheck["Test"] == ["CMD", "/usr/local/bin/faultwatch-healthz"]

    # SIGTERM: the engine stops its checks, flushes and closes the journal, exits 0.
    _podman("stop", "-t", "30", name)
    exit_code = _podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
    logs = _podman("logs", name).stderr
    assert exit_code == "0", logs[-3000:]
    assert "stopped cleanly" in logs
    assert "Traceback" not in logs

    streamed = _events(name)
    journal = Journal.open(state / JOURNAL_FILENAME, JournalConfig(), SystemClock())
    try:
        stored = {e.seq for e in journal.events(limit=None)}
    finally:
        journal.close()
    missing = [e for e in streamed if e["seq"] not in stored]
    assert not missing, f"streamed but not in the journal: {missing[:3]}"
    # Closed cleanly: the WAL was checkpointed into the main file, nothing left to replay.
    wal = state / f"{JOURNAL_FILENAME}-wal"
    assert not wal.exists() or wal.stat().st_size == 0


def test_image_carries_no_qt_and_refuses_a_window_in_one_line() -> None:
    proc = _podman("run", "--rm", "--network", "none", "--entrypoint", "python3", IMAGE, "-c",
                   "import importlib.util as u; print([m for m in ('PySide6', 'qasync', 'pyqtgraph', 'numpy')"
                   " if u.find_spec(m)])")
    assert proc.stdout.strip() == "[]"
    # --no-healthcheck: without systemd, podman prints its own error lines about health timers.
    proc = _podman("run", "--rm", "--network", "none", "--no-healthcheck", "-e", "QT_QPA_PLATFORM=offscreen", "--entrypoint",
                   "faultwatch", IMAGE, "--demo", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--headless" in proc.stderr, proc.stderr


def _healthz(port: int) -> int:
    try:
        return _get(f"http://127.0.0.1:{port}/healthz")[0]
    except OSError:
        return 0
