"""Device edits over the API (core/config_api.py): a real Runtime (engine + listener on a free loopback
port) over a commented config file, driven by a real aiohttp client."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiohttp
import pytest

from core.config import load_config
from core.config_edit import backups
from core.events import ActionEvent
from core.runtime import Runtime

TOKEN = "edit-T0ken-for-tests"
RACK = """\
# a rack, with comments that must survive edits made through the API

[api]
listen = "127.0.0.1:0"
token_env = "FW_TEST_EDIT_TOKEN"

[[services]]
id = "plc-1"   # the first
endpoint = "http://127.0.0.1:9"
"""


def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        body: Callable[[aiohttp.ClientSession, str, Runtime], Awaitable[None]]) -> None:
    monkeypatch.setenv("FW_TEST_EDIT_TOKEN", TOKEN)
    path = tmp_path / "rack.toml"
    path.write_text(RACK, encoding="utf-8")

    async def go() -> None:
        rt = Runtime(str(path), state_dir=str(tmp_path / "state"))
        await rt.start()
        try:
            assert rt.api is not None
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                await body(http, rt.api.url, rt)
        finally:
            await rt.stop()
    asyncio.run(go())


async def json_of(resp: aiohttp.ClientResponse) -> Any:
    async with resp:
        return resp.status, await resp.json()


def test_add_replace_remove_through_the_api_write_the_engines_own_file(tmp_path, monkeypatch):
    path = tmp_path / "rack.toml"

    async def body(http: aiohttp.ClientSession, url: str, rt: Runtime) -> None:
        status, listing = await json_of(await http.get(f"{url}/api/config/services"))
        assert status == 200 and [s["id"] for s in listing["services"]] == ["plc-1"]
        new = {"id": "plc-3", "name": "PLC 3", "endpoint": "http://127.0.0.1:9", "tags": ["remote"]}
        status, out = await json_of(await http.post(f"{url}/api/config/services",
                                                    json={"service": new, "digest": listing["digest"]}))
        assert status == 200 and out["ok"], out
        assert rt.engine is not None and "plc-3" in rt.engine.snapshots()
        status, out = await json_of(await http.put(f"{url}/api/config/services/plc-3",
                                                   json={"service": {**new, "name": "PLC three"}}))
        assert status == 200 and rt.engine.snapshots()["plc-3"].name == "PLC three"
        status, out = await json_of(await http.delete(f"{url}/api/config/services/plc-3"))
        assert status == 200 and "plc-3" not in rt.engine.snapshots()
        edits = [e for e in await rt.engine.journal_events("plc-3") if isinstance(e, ActionEvent)
                 and e.command == "config_edit"]
        assert [(e.origin, e.detail) for e in reversed(edits)] == [
            ("api", "added plc-3"), ("api", "changed plc-3"), ("api", "removed plc-3")]

    run(tmp_path, monkeypatch, body)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# a rack, with comments") and '"plc-1"   # the first' in text
    assert len(backups(path)) == 3


def test_bad_entries_conflicts_and_missing_tokens_change_nothing(tmp_path, monkeypatch):
    path = tmp_path / "rack.toml"

    async def body(http: aiohttp.ClientSession, url: str, rt: Runtime) -> None:
        status, out = await json_of(await http.post(f"{url}/api/config/services",
                                                    json={"service": {"id": "x", "endpoint": "ftp://x"}}))
        assert status == 422 and out["errors"] == [{"key": "endpoint", "message": "'ftp://x' is not an http(s) URL"}]
        status, out = await json_of(await http.post(f"{url}/api/config/validate",
                                                    json={"service": {"id": "plc-1", "endpoint": "http://a"}}))
        assert status == 200 and not out["ok"] and out["errors"][0]["key"] == "id"
        _status, listing = await json_of(await http.get(f"{url}/api/config/services"))
        path.write_text(RACK + "\n# edited by hand meanwhile\n", encoding="utf-8")
        status, out = await json_of(await http.post(
            f"{url}/api/config/services", json={"service": {"id": "y", "endpoint": "http://127.0.0.1:9"},
                                                "digest": listing["digest"]}))
        assert status == 409 and out["conflict"] is True and out["digest"] != listing["digest"]
        async with aiohttp.ClientSession() as anonymous:
            async with anonymous.get(f"{url}/api/config/services") as resp:
                assert resp.status == 401
            async with anonymous.delete(f"{url}/api/config/services/plc-1") as resp:
                assert resp.status == 401
        status, _ = await json_of(await http.post(f"{url}/api/config/services", data=b"not json"))
        assert status == 400

    run(tmp_path, monkeypatch, body)
    assert path.read_text(encoding="utf-8") == RACK + "\n# edited by hand meanwhile\n"
    assert not backups(path)


def test_import_and_export_through_the_api(tmp_path, monkeypatch):
    path = tmp_path / "rack.toml"
    csv_text = ("id,name,endpoint\n"
                "a,A,http://127.0.0.1:9\n"
                "b,B,ftp://nope\n"
                "c,C,http://127.0.0.1:9\n")

    async def body(http: aiohttp.ClientSession, url: str, rt: Runtime) -> None:
        status, out = await json_of(await http.post(f"{url}/api/config/import", json={"csv": csv_text,
                                                                                       "dry_run": True}))
        assert status == 200 and out["imported"] == 0 and [r["ok"] for r in out["rows"]] == [True, False, True]
        assert load_config(path).service("a") is None
        status, out = await json_of(await http.post(f"{url}/api/config/import", json={"csv": csv_text}))
        assert status == 200 and out["imported"] == 2
        async with http.get(f"{url}/api/config/export", params={"ids": "a,c"}) as resp:
            assert resp.status == 200 and resp.content_type == "text/csv"
            exported = await resp.text()
        assert [line.split(",")[0] for line in exported.splitlines()] == ["id", "a", "c"]

    run(tmp_path, monkeypatch, body)
    assert [s.id for s in load_config(path).services] == ["plc-1", "a", "c"]
