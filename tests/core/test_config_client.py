"""ConfigClient and RemoteStore against a real engine: a Runtime (engine + API listener on a free loopback
port, operator and viewer tokens) over a commented config file, and a real HTTP device to check."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from aiohttp import web

from core.config import load_config
from core.config_client import ConfigClient, EditInvalid, EditRefused, EngineUnreachable, RemoteConflict
from core.config_edit import ConfigEditError, Edit, backups
from core.config_store import RemoteStore, RemoteView, settle
from core.events import ActionEvent
from core.runtime import Runtime

OPERATOR = "client-operator-T0ken"
VIEWER = "client-viewer-T0ken"
ORIGIN = "gui@test-laptop"
RACK = """\
# a rack, with comments that must survive edits made through the client

[fault_detection]
check_interval_seconds = 1   # fast
timeout_seconds = 0.5

[api]
listen = "127.0.0.1:0"
token_env = "FW_TEST_CLIENT_TOKEN"
viewer_token_env = "FW_TEST_CLIENT_VIEWER"

[[services]]
id = "plc-1"   # the first
endpoint = "http://127.0.0.1:9"
"""

Body = Callable[[Runtime, str, Path], Awaitable[None]]


def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: Body) -> Path:
    monkeypatch.setenv("FW_TEST_CLIENT_TOKEN", OPERATOR)
    monkeypatch.setenv("FW_TEST_CLIENT_VIEWER", VIEWER)
    path = tmp_path / "rack.toml"
    path.write_text(RACK, encoding="utf-8")

    async def go() -> None:
        rt = Runtime(str(path), state_dir=str(tmp_path / "state"))
        await rt.start()
        try:
            assert rt.api is not None
            await body(rt, rt.api.url, path)
        finally:
            await rt.stop()
    asyncio.run(go())
    return path


async def device() -> tuple[web.AppRunner, str]:
    """A real HTTP device on a free loopback port that answers 200."""
    app = web.Application()
    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})
    app.router.add_get("/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def client(url: str, token: str = OPERATOR) -> ConfigClient:
    return ConfigClient(url, token, origin=ORIGIN, name="site-a")


def test_read_validate_add_replace_remove_journaled_with_the_consoles_origin(tmp_path, monkeypatch):
    async def body(rt: Runtime, url: str, path: Path) -> None:
        dev, endpoint = await device()
        c = client(url)
        try:
            listing = await c.listing()
            assert listing.name == "rack.toml" and [s["id"] for s in listing.services] == ["plc-1"]
            assert listing.sections == {"fault_detection": {"check_interval_seconds": 1, "timeout_seconds": 0.5}}
            bad = await c.validate({"id": "plc 3", "endpoint": "ftp://x"})
            assert {e.key for e in bad.errors} == {"id", "endpoint"}
            assert (await c.validate({"id": "plc-1", "endpoint": endpoint}, replacing="plc-1")).ok
            with pytest.raises(EditInvalid) as invalid:
                await c.add({"id": "plc-3", "endpoint": "ftp://x"}, listing.digest)
            assert invalid.value.errors[0].key == "endpoint"

            out = await c.add({"id": "plc-3", "name": "PLC 3", "endpoint": endpoint}, listing.digest)
            assert out.result.ok and out.digest != listing.digest
            assert rt.engine is not None
            for _ in range(200):  # checked by the engine: a real check of the real device
                snap = rt.engine.snapshots().get("plc-3")
                if snap is not None and snap.status.value == "healthy":
                    break
                await asyncio.sleep(0.05)
            assert rt.engine.snapshots()["plc-3"].status.value == "healthy"
            out = await c.replace("plc-3", {"id": "plc-3", "name": "PLC three", "endpoint": endpoint}, out.digest)
            assert out.result.ok and rt.engine.snapshots()["plc-3"].name == "PLC three"
            out = await c.remove(["plc-3"], out.digest)
            assert out.result.ok and "plc-3" not in rt.engine.snapshots()
            edits = [e for e in await rt.engine.journal_events("plc-3")
                     if isinstance(e, ActionEvent) and e.command == "config_edit"]
            assert [(e.origin, e.detail) for e in reversed(edits)] == [
                (ORIGIN, "added plc-3"), (ORIGIN, "changed plc-3"), (ORIGIN, "removed plc-3")]
        finally:
            await c.close()
            await dev.cleanup()

    path = run(tmp_path, monkeypatch, body)
    assert path.read_text(encoding="utf-8") == RACK  # added, changed, removed: back to the very text
    assert len(backups(path)) == 3


def test_a_stale_digest_a_viewer_a_wrong_token_and_a_dead_engine_write_nothing(tmp_path, monkeypatch):
    async def body(rt: Runtime, url: str, path: Path) -> None:
        c, viewer, stranger = client(url), client(url, VIEWER), client(url, "not-the-token")
        try:
            listing = await c.listing()
            path.write_text(RACK + "\n# edited by hand on the engine's host\n", encoding="utf-8")
            with pytest.raises(RemoteConflict) as conflict:
                await c.add({"id": "y", "endpoint": "http://127.0.0.1:9"}, listing.digest)
            assert conflict.value.digest and conflict.value.digest != listing.digest
            with pytest.raises(EditRefused, match="may only read.*operator token"):
                await viewer.add({"id": "y", "endpoint": "http://127.0.0.1:9"})
            with pytest.raises(EditRefused, match="may only read"):
                await viewer.listing()  # the file names restart commands and hosts: operator only
            with pytest.raises(EditRefused, match="missing or wrong bearer token"):
                await stranger.remove(["plc-1"])
        finally:
            for x in (c, viewer, stranger):
                await x.close()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening: refused
            gone = client(dead)
            try:
                with pytest.raises(EngineUnreachable, match="site-a: engine unreachable"):
                    await gone.listing()
                with pytest.raises(EngineUnreachable, match="may or may not have been applied"):
                    await gone.add({"id": "y", "endpoint": "http://127.0.0.1:9"})
            finally:
                await gone.close()

    path = run(tmp_path, monkeypatch, body)
    assert path.read_text(encoding="utf-8") == RACK + "\n# edited by hand on the engine's host\n"
    assert not backups(path)


def test_import_export_and_test_through_the_remote_store(tmp_path, monkeypatch):
    csv_text = ("id,name,endpoint\n"
                "a,A,http://127.0.0.1:9\n"
                "b,B,ftp://nope\n"
                "c,C,http://127.0.0.1:9\n")

    async def body(rt: Runtime, url: str, path: Path) -> None:
        dev, endpoint = await device()
        store = RemoteStore(client(url))
        try:
            view = await store.read()
            assert isinstance(view, RemoteView) and view.ids() == ["plc-1"] and view.name == "site-a: rack.toml"
            assert view.section("fault_detection")["check_interval_seconds"] == 1 and view.section("api") == {}
            preview = await store.preview_import(view, csv_text, False)
            assert [(r.line, r.service_id, r.ok) for r in preview.rows] == [(2, "a", True), (3, "b", False),
                                                                            (4, "c", True)]
            assert "not an http(s) URL" in preview.rows[1].errors[0]
            bad = await store.preview_import(view, "name\nx\n", False)
            assert bad.problem == "no 'id' column" and not bad.rows
            written = await store.import_rows(view, csv_text, False, preview)
            assert await settle(written.applied) and written.view.ids() == ["plc-1", "a", "c"]
            exported = await store.export(written.view, ["a", "c"])
            assert [line.split(",")[0] for line in exported.splitlines()] == ["id", "a", "c"]
            with pytest.raises(RemoteConflict):  # the view before the import is stale now
                await store.write(view, Edit("remove", ids=("a",)))
            forced = await store.write(view, Edit("remove", ids=("a", "c")), force=True)
            assert forced.view.ids() == ["plc-1"]
            # Test: the engine runs one check from its host, nothing is saved
            healthy = await store.test(forced.view, {"id": "", "name": "no id yet", "endpoint": endpoint})
            assert healthy.status == "healthy" and healthy.http_status == 200 and healthy.latency_ms > 0
            refused = await store.test(forced.view, {"endpoint": "http://127.0.0.1:9"})
            assert refused.status == "unhealthy" and refused.error
            with pytest.raises(ConfigEditError, match="Fix the marked fields"):
                await store.test(forced.view, {"endpoint": "ftp://x"})
        finally:
            await store.client.close()
            await dev.cleanup()

    path = run(tmp_path, monkeypatch, body)
    assert [s.id for s in load_config(path).services] == ["plc-1"]


@pytest.mark.parametrize("kind", ["local", "remote"])
def test_both_stores_keep_the_same_contract(tmp_path, monkeypatch, kind):
    """What the Device menu relies on, the same for the console's own file and an attached engine's."""
    from core.config_store import LocalStore, is_conflict

    async def contract(store: Any, path: Path) -> None:
        view = await settle(store.read())
        assert view.ids() == ["plc-1"] and view.section("fault_detection")["timeout_seconds"] == 0.5
        assert view.name.endswith("rack.toml") and view.service("plc-1")["endpoint"] == "http://127.0.0.1:9"
        bad = await settle(store.validate(view, {"id": "plc-1", "endpoint": "ftp://x"}, None))
        assert [e.key for e in bad.errors] == ["id", "endpoint"]
        assert (await settle(store.validate(view, {"id": "plc-1", "endpoint": "http://a"}, "plc-1"))).ok
        written = await settle(store.write(view, Edit("add", tables=({"id": "plc-2", "endpoint": "http://b"},))))
        assert written.view.ids() == ["plc-1", "plc-2"] and (await settle(written.applied)).ok
        with pytest.raises(ConfigEditError) as stale:
            await settle(store.write(view, Edit("remove", ids=("plc-1",))))
        assert is_conflict(stale.value)
        assert load_config(path).service("plc-2") is not None  # a conflict writes nothing
        forced = await settle(store.write(view, Edit("replace", ids=("plc-1",),
                                                      tables=({"id": "plc-1", "name": "One", "endpoint": "http://a"},)),
                                          force=True))
        assert load_config(path).service("plc-1").name == "One"
        exported = await settle(store.export(forced.view, None))
        assert exported.splitlines()[0].startswith("id,name,")
        assert "# a rack, with comments" in path.read_text(encoding="utf-8")

    if kind == "local":
        monkeypatch.setenv("FW_TEST_CLIENT_TOKEN", OPERATOR)
        path = tmp_path / "rack.toml"
        path.write_text(RACK, encoding="utf-8")
        asyncio.run(contract(LocalStore(str(path)), path))
        return

    async def body(rt: Runtime, url: str, path: Path) -> None:
        store = RemoteStore(client(url))
        try:
            await contract(store, path)
        finally:
            await store.client.close()
    run(tmp_path, monkeypatch, body)
