"""Device edits over the engine's HTTP API: what the console's Device menu does, for a console attached
to a remote engine. The engine writes its own file, with the same validation, the same atomic write and
backups, the same conflict rule and the same journaled `config_edit` action (origin "api", or the
client's own name from `X-Faultwatch-Origin` when well-formed: "gui@laptop-3", as for commands).

Routes (all need the bearer token: the file shows restart commands and URLs, and they change it):

    GET    /api/config/services                 entries as written, the file's digest, its name, and its
                                                global seed sections (what an entry's overrides inherit)
    POST   /api/config/validate                 {"service": {...}, "replacing": "id"|null} → errors per key
    POST   /api/config/services                 {"service": {...}, "digest"?: "..."} → add
    PUT    /api/config/services/{id}            {"service": {...}, "digest"?: "..."} → replace
    DELETE /api/config/services/{id}?digest=…   remove (`&ids=a,b` removes several in one write)
    POST   /api/config/import                   {"csv": "..."} or {"toml": "..."}, "dry_run"?: true
    GET    /api/config/export[?ids=a,b]         CSV with core.config_edit.CSV_COLUMNS
    POST   /api/config/test                     {"service": {...}} → one check run from the engine's host

A `digest` (from GET) makes a write refuse with 409 if the file changed since that read; without one,
the edit (it names its entry by id) is applied to the file as it is now. Invalid entries get 422 with
`errors: [{key, message}]`; nothing is written.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Awaitable, Callable

from aiohttp import web

from core.config import OVERRIDABLE
from core.config_edit import (ConfigEditError, ConfigFile, Conflict, EditableEngine, Edit, ImportPreview, export_csv,
                              preview_csv, preview_toml, reload_after_edit, save)

log = logging.getLogger("core.api")

ORIGIN = "api"


def _origin(request: web.Request) -> str:
    """The journaled origin, as core/api.py names it for commands (imported late: api imports us)."""
    from core.api import _origin as origin_of

    return origin_of(request)


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, text=json.dumps(body, allow_nan=False, separators=(",", ":")),
                        content_type="application/json")


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return _json(status, {"error": message, **extra})


class ConfigEditApi:
    """The /api/config/ routes over one engine.

    Attributes:
        engine: the engine (reload, publish, clock).
        config_path: where the running config lives (None: nothing to edit, e.g. no file).
        authorized: the listener's bearer-token check.
    """

    def __init__(self, engine: EditableEngine, config_path: Callable[[], str | None],
                 authorized: Callable[[web.Request], bool]) -> None:
        self.engine = engine
        self.config_path = config_path
        self.authorized = authorized

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/config/services", self._guard(self._list))
        router.add_post("/api/config/validate", self._guard(self._validate))
        router.add_post("/api/config/services", self._guard(self._add))
        router.add_put("/api/config/services/{service_id}", self._guard(self._replace))
        router.add_delete("/api/config/services/{service_id}", self._guard(self._remove))
        router.add_post("/api/config/import", self._guard(self._import))
        router.add_get("/api/config/export", self._guard(self._export))
        router.add_post("/api/config/test", self._guard(self._test))

    def _guard(self, handler: Callable[[web.Request, ConfigFile], Awaitable[web.StreamResponse]]
               ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def run(request: web.Request) -> web.StreamResponse:
            if not self.authorized(request):
                log.info("API refused %s %s from %s: missing or wrong bearer token", request.method, request.path,
                         request.remote)
                resp = _error(401, "missing or wrong bearer token")
                resp.headers["WWW-Authenticate"] = "Bearer"
                return resp
            path = self.config_path()
            if not path:
                return _error(409, "the engine runs no config file that could be edited")
            try:
                cf = ConfigFile.read(path)
            except ConfigEditError as exc:
                return _error(409, str(exc))
            return await handler(request, cf)
        return run

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPBadRequest(reason="body is not JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(reason="body must be a JSON object")
        return body

    @staticmethod
    def _entry(body: dict[str, Any]) -> dict[str, Any]:
        entry = body.get("service")
        if not isinstance(entry, dict):
            raise web.HTTPBadRequest(reason="'service' must be an object (one [[services]] entry)")
        return entry

    # ---- reads
    async def _list(self, _request: web.Request, cf: ConfigFile) -> web.StreamResponse:
        # Only the sections an entry's overrides inherit, never the rest of the file ([notify] and
        # [api] may hold secrets or name where they are kept).
        sections = {k: cf.data[k] for k in OVERRIDABLE if isinstance(cf.data.get(k), dict)}
        return _json(200, {"services": cf.services(), "digest": cf.digest, "path": str(cf.path),
                           "name": cf.path.name, "sections": sections})

    async def _export(self, request: web.Request, cf: ConfigFile) -> web.StreamResponse:
        ids = [i for i in request.query.get("ids", "").split(",") if i] or None
        return web.Response(text=export_csv(cf, ids), content_type="text/csv")

    async def _validate(self, request: web.Request, cf: ConfigFile) -> web.StreamResponse:
        body = await self._body(request)
        replacing = body.get("replacing")
        v = cf.validate_entry(self._entry(body), replacing=replacing if isinstance(replacing, str) else None)
        return _json(200, {"ok": v.ok, "errors": [{"key": e.key, "message": e.message} for e in v.errors]})

    # ---- writes
    async def _add(self, request: web.Request, cf: ConfigFile) -> web.StreamResponse:
        body = await self._body(request)
        entry = self._entry(body)
        return await self._write(request, cf, body, Edit("add", tables=(entry,)), entry, None)

    async def _replace(self, request: web.Request, cf: ConfigFile) -> web.StreamResponse:
        body = await self._body(request)
        entry = self._entry(body)
        sid = request.match_info["service_id"]
        return await self._write(request, cf, body, Edit("replace", ids=(sid,), tables=(entry,)), entry, sid)

    async def _remove(self, request: web.Request, cf: ConfigFile) -> web.StreamResponse:
        sid = request.match_info["service_id"]
        ids = tuple(i for i in request.query.get("ids", "").split(",") if i) or (sid,)
        return await self._write(request, cf, {"digest": request.query.get("digest")}, Edit("remove", ids=ids),
                                 None, None)

    async def _import(self, request: web.Request, cf: ConfigFile) -> web.StreamResponse:
        body = await self._body(request)
        if isinstance(body.get("csv"), str):
            preview: ImportPreview = preview_csv(cf, body["csv"])
        elif isinstance(body.get("toml"), str):
            preview = preview_toml(cf, body["toml"])
        else:
            raise web.HTTPBadRequest(reason="give 'csv' or 'toml' text")
        rows = [{"line": r.line, "id": r.service_id, "ok": r.ok, "errors": list(r.errors)} for r in preview.rows]
        if preview.problem:
            return _error(422, preview.problem, rows=rows)
        if body.get("dry_run") or not preview.good:
            return _json(200, {"ok": True, "imported": 0, "rows": rows})
        response = await self._write(request, cf, body, preview.edit(), None, None)
        if response.status != 200:
            return response
        written = json.loads(response.text or "{}")
        return _json(200, {"ok": written.get("ok", True), "imported": len(preview.good), "rows": rows,
                           "message": written.get("message", ""), "digest": written.get("digest", "")})

    async def _test(self, request: web.Request, cf: ConfigFile) -> web.StreamResponse:
        """One check with the entry as entered, from this engine's host (what the engine would see)."""
        from core.check_once import check_once

        # How a device is named does not change how it answers: test before it has a good id.
        entry = {"id": "editor-test", **{k: v for k, v in self._entry(await self._body(request)).items()
                                         if k not in ("id", "name", "group", "tags")}}
        v = cf.validate_entry(entry)
        if v.service is None:
            return _error(422, str(v.errors[0]) if v.errors else "invalid entry",
                          errors=[{"key": e.key, "message": e.message} for e in v.errors])
        result = await check_once(v.service)
        value = result.value if isinstance(result.value, (int, float, str, bool)) or result.value is None \
            else str(result.value)
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        return _json(200, {"status": result.status.value, "latency_ms": result.latency_ms, "value": value,
                           "http_status": result.http_status, "error": result.error or ""})

    async def _write(self, request: web.Request, cf: ConfigFile, body: dict[str, Any], edit: Edit,
                     entry: dict[str, Any] | None, replacing: str | None) -> web.Response:
        if entry is not None:
            v = cf.validate_entry(entry, replacing=replacing)
            if not v.ok:
                return _error(422, str(v.errors[0]), errors=[{"key": e.key, "message": e.message} for e in v.errors])
        digest = body.get("digest")
        if isinstance(digest, str) and digest:
            cf = ConfigFile(cf.path, cf.text, digest)  # the version the client read: a change since is a conflict
        try:
            written, _config = save(cf, edit)
        except Conflict as exc:
            return _error(409, str(exc), conflict=True, digest=ConfigFile.read(cf.path).digest)
        except ConfigEditError as exc:
            return _error(422, str(exc))
        result = await reload_after_edit(self.engine, str(written.path), _origin(request), edit.describe(),
                                         edit.target)
        log.info("API config edit: %s (%s)", edit.describe(), result.message)
        return _json(200, {"ok": result.ok, "message": result.message, "digest": written.digest})
