"""Device stores: where the console's device edits go, as one small protocol with two implementations.

The Device menu and the device editor talk to a `DeviceStore` and never learn which one they have:

- `LocalStore`: the config file of the console's own engine, edited by core/config_edit.py in this
  process (style-preserving, atomic, backed up), then reloaded by the engine with the edit journaled.
- `RemoteStore`: an attached engine's file, edited through its /api/config/ routes (core/config_client.py)
  with this console's token; the engine validates with its own loader, writes its own file and journals
  the edit as an action with origin gui@<host>.

A store answers either at once (the local file: a plain value) or later (the network: an awaitable);
`Maybe[T]` says so and `settle()` awaits either. The GUI uses the difference only to decide whether a
question (a conflict, a confirmation) can be asked now or once the answer arrived, never to choose
what to do. Errors are the ConfigEditError family, one line each: Conflict / RemoteConflict (the file
changed since it was read), EditRefused (a viewer token), EngineUnreachable, EditInvalid.

Validation for a remote engine is the engine's /api/config/validate, not the console's own loader:
the engine may run another version (other check types), checks paths (a CA bundle, a restart
command) on its own host, and judges the entry against its own file's sections and ids.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Coroutine, Mapping, Protocol, Sequence, TypeVar, Union, runtime_checkable

from core.config_client import ConfigClient, RemoteConflict, RemoteListing, RemoteTest
from core.config_edit import (ConfigEditError, ConfigFile, Conflict, Edit, ImportPreview, Validation, export_csv,
                              preview_csv, preview_toml, save)
from core.snapshot import CommandResult

T = TypeVar("T")
Maybe = Union[T, Awaitable[T]]
NAMING_KEYS = frozenset({"id", "name", "group", "tags"})
NOT_TESTABLE = "Fix the marked fields before testing."


async def settle(value: Maybe[T]) -> T:
    """The value of a store's answer, whether it came at once or comes later."""
    if inspect.isawaitable(value):
        return await value
    return value


@runtime_checkable
class StoreView(Protocol):
    """One read of a store: what the editor shows and what a write is based on (its digest)."""

    @property
    def name(self) -> str: ...

    @property
    def digest(self) -> str: ...

    def services(self) -> list[dict[str, Any]]: ...

    def service(self, service_id: str) -> dict[str, Any] | None: ...

    def ids(self) -> list[str]: ...

    def section(self, name: str) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Written:
    """A write that was made.

    Attributes:
        view: the store as written (the next edit is based on it).
        applied: the engine's verdict on running it: at once (a remote engine already reloaded), or
            later (the console's own engine reloads after the write).
    """

    view: StoreView
    applied: Maybe[CommandResult]


class DeviceStore(Protocol):
    """Where device edits go (see the module docstring).

    Attributes:
        name: how messages name the store ("rack.toml", "site-a").
        overwrite_note: what "overwrite" means after a conflict, for the question that offers it.
    """

    name: str
    overwrite_note: str

    def read(self) -> Maybe[StoreView]: ...

    def validate(self, view: StoreView, table: Mapping[str, Any], replacing: str | None) -> Maybe[Validation]: ...

    def write(self, view: StoreView, edit: Edit, *, force: bool = False) -> Maybe[Written]: ...

    def preview_import(self, view: StoreView, text: str, toml: bool) -> Maybe[ImportPreview]: ...

    def import_rows(self, view: StoreView, text: str, toml: bool, preview: ImportPreview, *,
                    force: bool = False) -> Maybe[Written]: ...

    def export(self, view: StoreView, ids: Sequence[str] | None) -> Maybe[str]: ...

    def test(self, view: StoreView, table: Mapping[str, Any]) -> Awaitable[Any]: ...


# ---------------------------------------------------------------- the console's own file

EngineApply = Callable[[str, Edit], Awaitable[CommandResult]]


class LocalStore:
    """The console's own config file.

    Attributes:
        name: the file's name.
        path: the file (asked each time: the demo's is generated, a reload may change it).
        apply: how the engine reloads the written file and journals the edit (None: nothing runs it).
        on_written: told after each write (the window's file watch: "that change was ours").
        run_check: what Test runs (core.check_once by default).
    """

    def __init__(self, path: str, *, apply: EngineApply | None = None, on_written: Callable[[], None] | None = None,
                 run_check: Callable[[Any], Awaitable[Any]] | None = None) -> None:
        self.path = path
        self.name = path.rsplit("/", 1)[-1]
        self.overwrite_note = f"An overwritten version is kept in {self.name}.bak/."
        self.apply = apply
        self.on_written = on_written
        self.run_check = run_check

    def read(self) -> ConfigFile:
        return ConfigFile.read(self.path)

    @staticmethod
    def _file(view: StoreView) -> ConfigFile:
        if not isinstance(view, ConfigFile):
            raise TypeError("a local store edits ConfigFile views")
        return view

    def validate(self, view: StoreView, table: Mapping[str, Any], replacing: str | None) -> Validation:
        return self._file(view).validate_entry(table, replacing=replacing)

    def write(self, view: StoreView, edit: Edit, *, force: bool = False) -> Written:
        written, _config = save(self._file(view), edit, force=force)
        return self._written(written, edit)

    def _written(self, written: ConfigFile, edit: Edit) -> Written:
        if self.on_written is not None:
            self.on_written()
        applied: Maybe[CommandResult] = (CommandResult(True, f"saved {written.path.name}: {edit.describe()}")
                                         if self.apply is None else self.apply(str(written.path), edit))
        return Written(written, applied)

    def preview_import(self, view: StoreView, text: str, toml: bool) -> ImportPreview:
        cf = self._file(view)
        return preview_toml(cf, text) if toml else preview_csv(cf, text)

    def import_rows(self, view: StoreView, text: str, toml: bool, preview: ImportPreview, *,
                    force: bool = False) -> Written:
        edit = preview.edit()
        written, _config = save(self._file(view), edit, force=force)
        return self._written(written, edit)

    def export(self, view: StoreView, ids: Sequence[str] | None) -> str:
        return export_csv(self._file(view), ids)

    def test(self, view: StoreView, table: Mapping[str, Any]) -> Awaitable[Any]:
        """One check of the entry as entered, from this host; ConfigEditError(NOT_TESTABLE) if it cannot be built."""
        cf = self._file(view)
        v = cf.validate_entry(table)
        service = v.service
        if service is None and v.errors and all(e.field in NAMING_KEYS for e in v.errors):
            # How a device is named does not change how it answers: test before it has a good id.
            candidate = {k: val for k, val in table.items() if k not in NAMING_KEYS}
            service = cf.validate_entry({"id": "editor-test", **candidate}).service
        if service is None:
            raise ConfigEditError(NOT_TESTABLE)
        if self.run_check is not None:
            return self.run_check(service)
        from core.check_once import check_once

        return check_once(service)


# ---------------------------------------------------------------- an attached engine's file

@dataclass(frozen=True, slots=True)
class RemoteView:
    """One read of an attached engine's file (RemoteListing as the editor reads it)."""

    listing: RemoteListing
    engine: str = ""
    _ids: tuple[str, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ids", tuple(str(s.get("id", "")) for s in self.listing.services))

    @property
    def name(self) -> str:
        return f"{self.engine}: {self.listing.name}" if self.engine else self.listing.name

    @property
    def digest(self) -> str:
        return self.listing.digest

    def services(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(dict(s)) for s in self.listing.services]

    def service(self, service_id: str) -> dict[str, Any] | None:
        for s in self.services():
            if s.get("id") == service_id:
                return s
        return None

    def ids(self) -> list[str]:
        return list(self._ids)

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.listing.sections.get(name, {}))


Hop = Callable[[Coroutine[Any, Any, Any]], Awaitable[Any]]


async def _same_loop(coro: Coroutine[Any, Any, T]) -> T:
    return await coro


class RemoteStore:
    """An attached engine's file, through its API.

    Attributes:
        client: the engine's ConfigClient.
        hop: runs a client call on the loop that owns the client's session (the attach thread) and
            returns an awaitable on the caller's loop.
    """

    def __init__(self, client: ConfigClient, hop: Hop | None = None) -> None:
        self.client = client
        self.hop: Hop = hop or _same_loop
        self.overwrite_note = ("Overwrite applies your edit to the engine's file as it is now (its version of "
                               "this device is kept in its backups).")

    @property
    def name(self) -> str:
        return self.client.name

    async def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        result: T = await self.hop(coro)
        return result

    async def read(self) -> RemoteView:
        return RemoteView(await self._run(self.client.listing()), self.client.name)

    async def validate(self, view: StoreView, table: Mapping[str, Any], replacing: str | None) -> Validation:
        return await self._run(self.client.validate(table, replacing))

    async def write(self, view: StoreView, edit: Edit, *, force: bool = False) -> Written:
        # Overwrite, remotely: the edit goes without a digest, so the engine applies it to its file as
        # it is now (the other edit to other entries is kept; the same entry gets this version).
        digest = None if force else view.digest
        if edit.kind == "add":
            if len(edit.tables) != 1:
                raise ConfigEditError("add one device at a time (import adds several)")
            out = await self._run(self.client.add(edit.tables[0], digest))
        elif edit.kind == "replace":
            out = await self._run(self.client.replace(edit.ids[0], edit.tables[0], digest))
        else:
            out = await self._run(self.client.remove(edit.ids, digest))
        return Written(await self.read(), out.result)

    async def preview_import(self, view: StoreView, text: str, toml: bool) -> ImportPreview:
        preview, _ = await self._run(self.client.import_text(text, toml=toml, dry_run=True))
        return preview

    async def import_rows(self, view: StoreView, text: str, toml: bool, preview: ImportPreview, *,
                          force: bool = False) -> Written:
        _, out = await self._run(self.client.import_text(text, toml=toml, dry_run=False,
                                                         digest=None if force else view.digest))
        result = out.result if out is not None else CommandResult(False, f"{self.name}: nothing imported")
        return Written(await self.read(), result)

    async def export(self, view: StoreView, ids: Sequence[str] | None) -> str:
        return await self._run(self.client.export(ids))

    def test(self, view: StoreView, table: Mapping[str, Any]) -> Awaitable[RemoteTest]:
        return self._test(table)

    async def _test(self, table: Mapping[str, Any]) -> RemoteTest:
        from core.config_client import EditInvalid

        try:
            return await self._run(self.client.test(table))
        except EditInvalid:
            raise ConfigEditError(NOT_TESTABLE) from None


def is_conflict(exc: BaseException) -> bool:
    """The file changed since the view a write was based on (local or remote)."""
    return isinstance(exc, (Conflict, RemoteConflict))
