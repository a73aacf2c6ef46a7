"""ConfigClient: the typed client of an engine's /api/config/ routes (core/config_api.py).

What a console attached to a remote engine uses to edit that engine's devices: the engine validates
with its own loader, writes its own file (atomically, with backups) and journals the edit under the
console's name (`X-Faultwatch-Origin: gui@<host>`). Every answer becomes a value or one of the
ConfigEditError family, one line each, so the caller handles a remote edit like a local one:

- 409 with `conflict` → RemoteConflict (the file changed since the digest the edit was based on);
- 401 / 403 / 429 → EditRefused (a viewer token, a wrong token, too many wrong tokens);
- 422 → EditInvalid with the loader's errors per key;
- no answer (refused connection, timeout, TLS failure) → EngineUnreachable.

It uses the token, TLS settings and HTTP session of the RemoteEngine it belongs to (core/remote.py).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence
from urllib.parse import quote

from core.config_edit import ConfigEditError, FieldError, ImportPreview, ImportRow, Validation
from core.snapshot import CommandResult

if TYPE_CHECKING:
    # Imported where a call is made: the window imports this module (its device editor), and
    # aiohttp took ~130 ms of the console's time to first paint.
    import aiohttp

TIMEOUT_S = 15.0


class EditRefused(ConfigEditError):
    """The engine refused this console's token for an edit (401, 403 or 429)."""


class EngineUnreachable(ConfigEditError):
    """No answer from the engine: nothing was written there (or it cannot be known; see the message)."""


class EditInvalid(ConfigEditError):
    """The engine's loader refused the entry (422).

    Attributes:
        errors: the loader's errors, per key.
    """

    def __init__(self, message: str, errors: tuple[FieldError, ...] = ()) -> None:
        super().__init__(message)
        self.errors = errors


class RemoteConflict(ConfigEditError):
    """The engine's file changed since the digest the edit was based on (409).

    Attributes:
        digest: the file's digest now (a redo starts from a fresh read anyway).
    """

    def __init__(self, message: str, digest: str = "") -> None:
        super().__init__(message)
        self.digest = digest


@dataclass(frozen=True, slots=True)
class RemoteListing:
    """One read of the engine's file: entries as written, digest, name, and its global seed sections.

    Attributes:
        name: the file's name on the engine's host ("site.toml").
        services: the `[[services]]` entries as written (no defaults filled in).
        digest: sha256 of the file's bytes when read (a write based on it refuses if it changed).
        sections: the sections an entry's overrides inherit (fault_detection, circuit_breaker, recovery).
    """

    name: str
    services: tuple[Mapping[str, Any], ...]
    digest: str
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RemoteWrite:
    """What the engine answered to a write: its reload's verdict and the file's new digest."""

    result: CommandResult
    digest: str


@dataclass(frozen=True, slots=True)
class RemoteTest:
    """One check run by the engine, on its host, with an entry as entered (nothing saved)."""

    status: str
    latency_ms: float
    value: Any = None
    http_status: int | None = None
    error: str = ""


class ConfigClient:
    """The /api/config/ routes of one engine.

    Attributes:
        url: the engine's base URL.
        name: how messages name the engine ("site-a"); may change once the engine says its site name.
    """

    def __init__(self, url: str, token: str, *, origin: str, name: str = "",
                 ssl_context: ssl.SSLContext | None = None,
                 session: aiohttp.ClientSession | Callable[[], aiohttp.ClientSession] | None = None,
                 timeout_s: float = TIMEOUT_S) -> None:
        """`session`: a session, or how to get the owner's session when a call runs (on its loop)."""
        self.url = url.rstrip("/")
        self.name = name or self.url
        self._token = token
        self._origin = origin
        self._ssl = ssl_context
        self._session = session
        self._own_session = session is None
        self._timeout_s = timeout_s

    def __repr__(self) -> str:  # never the token
        return f"ConfigClient({self.url!r})"

    async def close(self) -> None:
        if self._own_session and self._session is not None and not callable(self._session):
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if callable(self._session):
            return self._session()
        if self._session is None or self._session.closed:
            import aiohttp

            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def _call(self, method: str, path: str, *, json: Any = None, text: bool = False) -> Any:
        import aiohttp

        headers = {"Authorization": f"Bearer {self._token}", "X-Faultwatch-Origin": self._origin}
        try:
            async with self._client().request(method, f"{self.url}{path}", json=json, headers=headers,
                                              ssl=self._ssl or True,
                                              timeout=aiohttp.ClientTimeout(total=self._timeout_s)) as resp:
                if text and resp.status == 200:
                    return await resp.text()
                try:
                    body = await resp.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    body = {}
                if not isinstance(body, dict):
                    body = {}
                self._raise_for(resp.status, body, resp.reason or "")
                return body
        except ConfigEditError:
            raise
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            # A write whose answer was lost may still have been applied: say so rather than guess.
            maybe = " (the edit may or may not have been applied there)" if method != "GET" else ""
            raise EngineUnreachable(f"{self.name}: engine unreachable: {_one_line(exc)}{maybe}") from None

    def _raise_for(self, status: int, body: Mapping[str, Any], reason: str) -> None:
        if status == 200:
            return
        error = str(body.get("error") or reason or f"HTTP {status}")
        if status == 403:
            raise EditRefused(f"{self.name}: refused: this console's token may only read; editing devices needs "
                              "the engine's operator token")
        if status in (401, 429):
            raise EditRefused(f"{self.name}: refused: {error}")
        if status == 409 and body.get("conflict"):
            raise RemoteConflict(f"{self.name}: its configuration changed since it was read",
                                 str(body.get("digest", "")))
        if status == 422:
            raise EditInvalid(f"{self.name}: {error}", _field_errors(body.get("errors")))
        raise ConfigEditError(f"{self.name}: HTTP {status}: {error}")

    # ---------------------------------------------------------------- reads

    async def listing(self) -> RemoteListing:
        body = await self._call("GET", "/api/config/services")
        services = body.get("services")
        if not isinstance(services, list) or not all(isinstance(s, dict) for s in services):
            raise ConfigEditError(f"{self.name}: the engine sent no list of services")
        sections = body.get("sections") if isinstance(body.get("sections"), dict) else {}
        assert isinstance(sections, dict)
        return RemoteListing(str(body.get("name") or "config"), tuple(services), str(body.get("digest", "")),
                             {k: v for k, v in sections.items() if isinstance(v, dict)})

    async def validate(self, table: Mapping[str, Any], replacing: str | None = None) -> Validation:
        """The engine's loader on one entry, in its file's context (errors per key; never a ServiceConfig)."""
        body = await self._call("POST", "/api/config/validate", json={"service": dict(table), "replacing": replacing})
        return Validation(_field_errors(body.get("errors")))

    async def export(self, ids: Sequence[str] | None = None) -> str:
        query = f"?ids={quote(','.join(ids), safe=',')}" if ids else ""
        text = await self._call("GET", f"/api/config/export{query}", text=True)
        assert isinstance(text, str)
        return text

    async def test(self, table: Mapping[str, Any]) -> RemoteTest:
        """One check of the entry as entered, run by the engine on its host."""
        body = await self._call("POST", "/api/config/test", json={"service": dict(table)})
        http_status = body.get("http_status")
        return RemoteTest(str(body.get("status", "unknown")), float(body.get("latency_ms") or 0.0), body.get("value"),
                          int(http_status) if isinstance(http_status, int) else None, str(body.get("error") or ""))

    # ---------------------------------------------------------------- writes

    @staticmethod
    def _written(body: Mapping[str, Any]) -> RemoteWrite:
        return RemoteWrite(CommandResult(bool(body.get("ok")), str(body.get("message", ""))), str(body.get("digest", "")))

    async def add(self, table: Mapping[str, Any], digest: str | None = None) -> RemoteWrite:
        return self._written(await self._call("POST", "/api/config/services",
                                              json={"service": dict(table), "digest": digest}))

    async def replace(self, service_id: str, table: Mapping[str, Any], digest: str | None = None) -> RemoteWrite:
        return self._written(await self._call("PUT", f"/api/config/services/{quote(service_id, safe='')}",
                                              json={"service": dict(table), "digest": digest}))

    async def remove(self, ids: Sequence[str], digest: str | None = None) -> RemoteWrite:
        if not ids:
            raise ConfigEditError("no device to remove")
        query = f"?ids={quote(','.join(ids), safe=',')}" + (f"&digest={quote(digest)}" if digest else "")
        return self._written(await self._call("DELETE", f"/api/config/services/{quote(ids[0], safe='')}{query}"))

    async def import_text(self, text: str, *, toml: bool = False, dry_run: bool = True,
                          digest: str | None = None) -> tuple[ImportPreview, RemoteWrite | None]:
        """Preview (dry run) or import CSV / a TOML fragment; the engine validates every row."""
        payload: dict[str, Any] = {"toml" if toml else "csv": text, "dry_run": dry_run, "digest": digest}
        try:
            body = await self._call("POST", "/api/config/import", json=payload)
        except EditInvalid as exc:
            # The whole input was unreadable: a preview with its one problem, like a local preview.
            return ImportPreview(problem=str(exc).partition(": ")[2] or str(exc)), None
        preview = ImportPreview(tuple(ImportRow(int(r.get("line", 0)), str(r.get("id", "")), r.get("table") or {},
                                                tuple(str(e) for e in r.get("errors", [])))
                                      for r in body.get("rows", []) if isinstance(r, dict)))
        written = None if dry_run or not body.get("imported") else self._written(body)
        return preview, written


def _field_errors(raw: Any) -> tuple[FieldError, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(FieldError(str(e.get("key", "")), str(e.get("message", ""))) for e in raw if isinstance(e, dict))


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
