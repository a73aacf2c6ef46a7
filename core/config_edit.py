"""Config edits: add, replace or remove one `[[services]]` entry of a config file, and nothing else.

The file stays the operator's: comments, blank lines, key order and formatting outside the edited
entry are kept byte for byte, and inside a replaced entry tomlkit keeps what it can (comments, key
order, untouched values). Every edit is validated by the loader itself (`core.config.parse_config` on
the edited text), so the editor can never accept what a restart would refuse.

Writing is atomic: a temporary file in the same directory, fsync, rename over the old one, fsync of the
directory. The previous version goes first to `<name>.bak/<name>.~N~` (N counts up; the last
`KEEP_BACKUPS` = 10 are kept), so even an "overwrite" after a conflict loses nothing.

A `ConfigFile` remembers the digest of what it read; writing over a file that changed on disk since
raises `Conflict` (the console asks: reload and redo the edit, or overwrite).

CSV import/export uses one column set (`CSV_COLUMNS`); rows are validated with the same rules, each
with its own errors, before anything is written.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib
import io
import json
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Protocol, Sequence

import tomlkit
from tomlkit.items import AoT, InlineTable, Table

from core.config import OVERRIDABLE, Config, ConfigError, ServiceConfig, parse_config
from core.snapshot import CommandResult

KEEP_BACKUPS = 10
_LABEL = "<edit>"
_MAX_PASSES = 20  # validation passes per candidate (one error per pass, as the loader reports them)

# ---------------------------------------------------------------- errors


class ConfigEditError(ValueError):
    """An edit that cannot be made, as one line."""


class Conflict(ConfigEditError):
    """The file changed on disk since it was read: redo the edit on the new text, or overwrite.

    Attributes:
        path: the file.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path.name} changed on disk since it was read")
        self.path = path


@dataclass(frozen=True, slots=True)
class FieldError:
    """One wrong field of a service entry.

    Attributes:
        key: the key path inside the entry, as the loader names it (`check.port`, `tags[1]`,
            `fault_detection.timeout_seconds`); "" for a problem outside the entry.
        message: what is wrong (the loader's words).
    """

    key: str
    message: str

    @property
    def field(self) -> str:
        """The key path without list indexes (`tags[1]` → `tags`): what an input widget edits."""
        return re.sub(r"\[\d+\]", "", self.key)

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


@dataclass(frozen=True, slots=True)
class Validation:
    """The verdict on one candidate entry: errors (empty when good) and the service it makes."""

    errors: tuple[FieldError, ...]
    service: ServiceConfig | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def for_field(self, key: str) -> str | None:
        """The first message for `key` (a widget's key path), or None."""
        for e in self.errors:
            if e.field == key:
                return e.message
        return None


# ---------------------------------------------------------------- the file


@dataclass(frozen=True, slots=True)
class _Block:
    """Line span of one `[[services]]` entry: its header up to its last content line (inclusive)."""

    start: int
    end: int


_HEADER = re.compile(r"^\s*\[")
_SERVICES_HEADER = re.compile(r"^\s*\[\[\s*services\s*\]\]\s*(#.*)?$")
_SERVICES_SUB = re.compile(r"^\s*\[\[?\s*services\s*\.")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ConfigFile:
    """One config file as read: its text, its digest, its entries, and the edits made on it.

    Attributes:
        path: the file.
        text: its text when read.
        digest: sha256 of its bytes when read (conflict detection).
        data: the text parsed by tomllib (plain dicts and lists).
    """

    def __init__(self, path: str | Path, text: str, data_digest: str) -> None:
        self.path = Path(path)
        self.text = text
        self.digest = data_digest
        try:
            self.data: dict[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigEditError(f"{self.path.name}: TOML syntax error: {exc}") from None
        services = self.data.get("services", [])
        if not isinstance(services, list) or not all(isinstance(s, dict) for s in services):
            raise ConfigEditError(f"{self.path.name}: services: expected an array of tables ([[services]])")
        self._lines = text.splitlines(keepends=True)
        self._blocks = self._find_blocks()

    @classmethod
    def read(cls, path: str | Path) -> ConfigFile:
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise ConfigEditError(f"{p}: cannot read: {exc.strerror or exc}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigEditError(f"{p}: not UTF-8 text") from None
        return cls(p, text, digest(raw))

    # ---- reading
    @property
    def name(self) -> str:
        return self.path.name

    def section(self, name: str) -> dict[str, Any]:
        """A top-level section as written ({} when absent): what an entry's overrides inherit."""
        value = self.data.get(name)
        return copy.deepcopy(value) if isinstance(value, dict) else {}

    def services(self) -> list[dict[str, Any]]:
        """The entries as written (no defaults filled in), in file order."""
        return [copy.deepcopy(s) for s in self.data.get("services", [])]

    def ids(self) -> list[str]:
        return [str(s.get("id", "")) for s in self.data.get("services", [])]

    def service(self, service_id: str) -> dict[str, Any] | None:
        for s in self.data.get("services", []):
            if s.get("id") == service_id:
                found: dict[str, Any] = copy.deepcopy(s)
                return found
        return None

    def _index(self, service_id: str) -> int:
        try:
            return self.ids().index(service_id)
        except ValueError:
            raise ConfigEditError(f"{self.path.name}: no service '{service_id}'") from None

    def _find_blocks(self) -> list[_Block]:
        """Where each entry is in the text, checked against what tomllib read (a layout this cannot
        follow, such as `services = [ {...} ]`, makes edits refuse rather than guess)."""
        starts: list[int] = []
        other_headers: list[int] = []
        for i, line in enumerate(self._lines):
            if _SERVICES_HEADER.match(line):
                starts.append(i)
            elif _HEADER.match(line) and not _SERVICES_SUB.match(line):
                other_headers.append(i)
        blocks: list[_Block] = []
        for n, start in enumerate(starts):
            limit = min([h for h in [*starts[n + 1:], *other_headers] if h > start], default=len(self._lines))
            end = start
            for j in range(start, limit):
                stripped = self._lines[j].strip()
                if stripped and not stripped.startswith("#"):
                    end = j
            blocks.append(_Block(start, end))
        expected = self.data.get("services", [])
        layout_ok = len(blocks) == len(expected)
        if layout_ok:
            for block, table in zip(blocks, expected):
                try:
                    parsed = tomllib.loads(self._block_text(block)).get("services", [None])[0]
                except tomllib.TOMLDecodeError:
                    parsed = None
                if parsed != table:
                    layout_ok = False
                    break
        self._layout_ok = layout_ok
        return blocks if layout_ok else []

    def _block_text(self, block: _Block) -> str:
        return "".join(self._lines[block.start:block.end + 1])

    def _require_layout(self) -> None:
        if not self._layout_ok:
            raise ConfigEditError(f"{self.path.name}: its [[services]] entries are laid out in a way this editor "
                                  "cannot change safely (edit the file by hand)")

    # ---- edits (each returns the new text; nothing is written)
    def text_with_added(self, tables: Sequence[Mapping[str, Any]]) -> str:
        """The text with new entries after the last one (or at the end of the file)."""
        self._require_layout()
        if not tables:
            return self.text
        rendered = "\n".join(render_entry(t) for t in tables)
        lines = list(self._lines)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        if self._blocks:
            at = self._blocks[-1].end + 1
            lines[at:at] = ["\n", *rendered.splitlines(keepends=True)]
        else:
            if lines and lines[-1].strip():
                lines.append("\n")
            lines.extend(rendered.splitlines(keepends=True))
        return "".join(lines)

    def text_with_replaced(self, service_id: str, table: Mapping[str, Any]) -> str:
        """The text with one entry changed in place: its comments and untouched values stay."""
        self._require_layout()
        block = self._blocks[self._index(service_id)]
        doc = tomlkit.parse(self._block_text(block))
        entry = doc["services"][0]
        _merge(entry, dict(table), top=True)
        new_block = tomlkit.dumps(doc)
        if not new_block.endswith("\n"):
            new_block += "\n"
        lines = list(self._lines)
        if block.end == len(lines) - 1 and not lines[-1].endswith("\n"):
            new_block = new_block[:-1]
        lines[block.start:block.end + 1] = new_block.splitlines(keepends=True)
        return "".join(lines)

    def text_with_removed(self, service_id: str) -> str:
        """The text without one entry. Comments above its header stay (they may introduce a group);
        comments inside it go with it."""
        self._require_layout()
        block = self._blocks[self._index(service_id)]
        lines = list(self._lines)
        del lines[block.start:block.end + 1]
        # Two blank lines meet where the entry was: keep one.
        at = block.start
        if 0 < at < len(lines) and not lines[at - 1].strip() and not lines[at].strip():
            del lines[at]
        elif at == len(lines) and at > 0 and not lines[at - 1].strip():
            del lines[at - 1]
        return "".join(lines)

    # ---- validation
    def validate_text(self, text: str) -> Config:
        """The loader's verdict on a whole new text; ConfigEditError (one line) when it refuses."""
        try:
            return parse_config(text, label=self.path.name, source=str(self.path))
        except ConfigError as exc:
            raise ConfigEditError(str(exc)) from None

    def validate_entry(self, table: Mapping[str, Any], replacing: str | None = None,
                       other_ids: Iterable[str] = (), known_ids: Iterable[str] = ()) -> Validation:
        """Validate one candidate entry with the loader's rules, in this file's context.

        The loader stops at the first problem; to mark every wrong field, each pass removes the key it
        complained about and asks again, until the entry passes or a problem repeats.
        `replacing`: the id of the entry it replaces (its own id is not a duplicate);
        `other_ids`: ids of entries being added alongside it (imports);
        `known_ids`: further ids its `depends_on` may name (rows imported before it).
        """
        taken = [i for i in self.ids() if i != replacing] + list(other_ids)
        # depends_on may name any device of the file (or of the same import); cycles are judged when
        # the whole file is validated before it is written.
        known = {*self.ids(), *taken, *known_ids}
        context = {k: v for k, v in self.data.items() if k != "services"}
        candidate = _plain(table)
        errors: list[FieldError] = []
        seen: set[str] = set()
        held: set[str] = set()
        service: ServiceConfig | None = None
        for _ in range(_MAX_PASSES):
            problem, service = _check_entry(context, candidate, known)
            if problem is None:
                break
            service = None
            if problem.key in seen:
                # A required key we dropped: stand a harmless value in for it to see past it.
                if problem.key in held or not _placehold(candidate, problem.key):
                    break
                held.add(problem.key)
                continue
            seen.add(problem.key)
            errors.append(problem)
            if not problem.key or problem.key == "check.type":
                break
            if not _drop(candidate, problem.key):  # a required key that is missing
                if not _placehold(candidate, problem.key):
                    break
                held.add(problem.key)
        sid = table.get("id")
        if isinstance(sid, str) and sid in taken and "id" not in seen:
            errors.insert(0, FieldError("id", f"duplicate id '{sid}' (another device has it)"))
            service = None
        return Validation(tuple(errors), service if not errors else None)

    # ---- writing
    def write(self, text: str, *, force: bool = False, keep: int = KEEP_BACKUPS) -> ConfigFile:
        """Write `text` atomically after backing up the current file; returns the file as now written.

        Raises Conflict if the file changed on disk since it was read (unless `force`), and
        ConfigEditError (one line) if the loader refuses `text` or the write fails.
        """
        self.validate_text(text)
        try:
            current = self.path.read_bytes()
        except FileNotFoundError:
            current = None
        except OSError as exc:
            raise ConfigEditError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        if not force and (current is None or digest(current) != self.digest):
            raise Conflict(self.path)
        data = text.encode("utf-8")
        try:
            if current is not None:
                backup(self.path, current, keep)
            atomic_write(self.path, data)
        except OSError as exc:
            raise ConfigEditError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
        return ConfigFile(self.path, text, digest(data))


def _check_entry(context: Mapping[str, Any], candidate: dict[str, Any],
                 known: Iterable[str] = ()) -> tuple[FieldError | None, ServiceConfig | None]:
    """One loader pass over the file's sections and this one entry (plus a stand-in for each known
    device it depends on, so `depends_on` is judged against the file, not against the entry alone)."""
    doc = dict(context)
    parents = candidate.get("depends_on")
    known = set(known)
    stubs = [{"id": p, "endpoint": "http://127.0.0.1"} for p in dict.fromkeys(parents)
             if isinstance(p, str) and p in known and p != candidate.get("id")] \
        if isinstance(parents, list) else []
    doc["services"] = [candidate, *stubs]
    try:
        text = tomlkit.dumps(doc)
    except Exception as exc:  # noqa: BLE001 - a value TOML cannot hold (the GUI never makes one)
        return FieldError("", f"cannot be written as TOML: {exc}"), None
    try:
        config = parse_config(text, label=_LABEL)
    except ConfigError as exc:
        return _field_error(str(exc)), None
    return None, config.services[0]


def _field_error(line: str) -> FieldError:
    """`<edit>: services[0].check.port: must be …` → FieldError("check.port", "must be …")."""
    rest = line[len(_LABEL) + 2:] if line.startswith(_LABEL + ": ") else line
    m = re.match(r"services\[0\]((?:\.[A-Za-z0-9_-]+|\[\d+\]|\.\"(?:[^\"\\]|\\.)*\")*): (.*)\Z", rest)
    if m is None:
        return FieldError("", rest)
    return FieldError(m.group(1).lstrip("."), m.group(2))


def _drop(table: dict[str, Any], key: str) -> bool:
    """Remove the value at key path `key` (list indexes drop the whole list); False if absent."""
    parts = [p for p in re.split(r"\.(?![^\"]*\"$)", re.sub(r"\[\d+\]", "", key)) if p]
    node: Any = table
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    last = parts[-1] if parts else ""
    if isinstance(node, dict) and last in node:
        del node[last]
        return True
    return False


_PLACEHOLDERS: dict[str, Any] = {"id": "placeholder", "endpoint": "http://placeholder.invalid",
                                  "restart.http.url": "http://placeholder.invalid", "restart.command": ["true"]}


def _placehold(table: dict[str, Any], key: str) -> bool:
    """Put a valid stand-in at `key` (a required key whose own value was wrong); False if none known."""
    value = _PLACEHOLDERS.get(key)
    parts = key.split(".")
    if value is None and parts[0] == "check" and len(parts) == 2 and isinstance(table.get("check"), dict):
        from core.checks.registry import check_types

        ct = check_types().get(str(table["check"].get("type", "http")))
        fields = {f.name: f for f in dataclasses.fields(ct.settings)} if ct is not None else {}
        f = fields.get(parts[1])
        if f is not None and f.default is not dataclasses.MISSING and f.default not in (None, ""):
            value = f.default
    if value is None:
        return False
    node = table
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return False
    node[parts[-1]] = value
    return True


def _plain(value: Any) -> Any:
    """A deep copy as plain dicts/lists (tomlkit items unwrapped)."""
    if hasattr(value, "unwrap"):
        value = value.unwrap()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------- rendering entries

def _item(key: str, value: Any, *, top: bool) -> Any:
    """A tomlkit item: the three override sections as `[services.x]` tables, other tables inline."""
    if isinstance(value, Mapping):
        if top and key in OVERRIDABLE:
            t = tomlkit.table()
            for k, v in value.items():
                t[k] = _item(k, v, top=False)
            return t
        it = tomlkit.inline_table()
        for k, v in value.items():
            it[k] = _item(k, v, top=False)
        return it
    if isinstance(value, (list, tuple)):
        arr = tomlkit.array()
        for v in value:
            arr.append(_item("", v, top=False))
        return arr
    return tomlkit.item(value)


# Where a new entry's keys go: the order people read a device in.
_KEY_ORDER = ("id", "name", "group", "tags", "depends_on", "check", "endpoint", "health_path", "backup_endpoints",
              "tls_verify", "ca_bundle", "restart", "heartbeat_interval_seconds", *OVERRIDABLE)


def _ordered(table: Mapping[str, Any]) -> list[tuple[str, Any]]:
    rank = {k: i for i, k in enumerate(_KEY_ORDER)}
    return sorted(table.items(), key=lambda kv: rank.get(kv[0], len(rank)))


def render_entry(table: Mapping[str, Any]) -> str:
    """One new `[[services]]` entry as TOML text (ends with a newline)."""
    entry = tomlkit.table()
    for k, v in _ordered(table):
        entry[k] = _item(k, v, top=True)
    aot = tomlkit.aot()
    aot.append(entry)
    doc = tomlkit.document()
    doc["services"] = aot
    return tomlkit.dumps(doc)


def _same(item: Any, value: Any) -> bool:
    old = _plain(item)
    return bool(old == value and type(old) is type(value)) or (
        isinstance(old, list) and isinstance(value, list) and old == value)


def _merge(container: Any, new: dict[str, Any], *, top: bool) -> None:
    """Make a tomlkit table hold `new`, touching only keys whose value changed."""
    for key in [k for k in container.keys() if k not in new]:
        del container[key]
    for key, value in _ordered(new) if top else new.items():
        if key in container:
            old = container[key]
            if isinstance(value, Mapping) and isinstance(old, (Table, InlineTable)):
                _merge(old, dict(value), top=False)
                continue
            if _same(old, value):
                continue
        container[key] = _item(key, value, top=top)


# ---------------------------------------------------------------- writing files

def atomic_write(path: Path, data: bytes) -> None:
    """Temp file in the same directory, fsync, rename over `path`, fsync the directory."""
    directory = path.parent
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:  # some file systems refuse fsync on directories; the rename is done either way
        pass
    finally:
        os.close(dfd)


def backup_dir(path: Path) -> Path:
    return path.parent / f"{path.name}.bak"


def backups(path: Path) -> list[Path]:
    """Backups of `path`, oldest first."""
    directory = backup_dir(path)
    pattern = re.compile(re.escape(path.name) + r"\.~(\d+)~\Z")
    found: list[tuple[int, Path]] = []
    if directory.is_dir():
        for p in directory.iterdir():
            m = pattern.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def backup(path: Path, data: bytes, keep: int = KEEP_BACKUPS) -> Path:
    """Keep `data` (the version about to be replaced) as the newest backup; prune to `keep`."""
    directory = backup_dir(path)
    directory.mkdir(exist_ok=True)
    existing = backups(path)
    n = int(existing[-1].name.rsplit(".~", 1)[1].rstrip("~")) + 1 if existing else 1
    target = directory / f"{path.name}.~{n}~"
    atomic_write(target, data)
    for old in (existing + [target])[:-keep] if keep > 0 else []:
        try:
            old.unlink()
        except OSError:
            pass
    return target


# ---------------------------------------------------------------- edits as values

@dataclass(frozen=True, slots=True)
class Edit:
    """One edit of the services list, kept as a value so it can be redone on a newer file.

    Attributes:
        kind: add (one or more entries) | replace (one entry, by id) | remove (entries, by id).
        ids: the entry replaced, or the entries removed (empty for add).
        tables: the new entries (add) or the one new entry (replace).
    """

    kind: Literal["add", "replace", "remove"]
    ids: tuple[str, ...] = ()
    tables: tuple[Mapping[str, Any], ...] = ()

    def apply(self, cf: ConfigFile) -> str:
        if self.kind == "add":
            return cf.text_with_added(self.tables)
        if self.kind == "replace":
            return cf.text_with_replaced(self.ids[0], self.tables[0])
        current = cf
        for sid in self.ids:
            current = ConfigFile(cf.path, current.text_with_removed(sid), cf.digest)
        return current.text

    @property
    def target(self) -> str:
        """The device the journal files the edit under ("" for several)."""
        if self.kind == "add":
            return str(self.tables[0].get("id", "")) if len(self.tables) == 1 else ""
        return self.ids[0] if len(self.ids) == 1 else ""

    def describe(self) -> str:
        """For the journal: "added plc-3", "changed plc-3", "removed plc-3", "added 3 devices: …"."""
        ids = [str(t.get("id", "")) for t in self.tables] if self.kind == "add" else list(self.ids)
        verb = {"add": "added", "replace": "changed", "remove": "removed"}[self.kind]
        if self.kind == "replace":
            new_id = str(self.tables[0].get("id", ids[0]))
            return f"changed {ids[0]}" + (f" (now {new_id})" if new_id != ids[0] else "")
        if len(ids) == 1:
            return f"{verb} {ids[0]}"
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        return f"{verb} {len(ids)} devices: {shown}"

    def check(self, cf: ConfigFile) -> None:
        """Still possible on `cf` (after a reload the other edit may have taken the id)? Raises ConfigEditError."""
        ids = cf.ids()
        for sid in self.ids:
            if sid not in ids:
                raise ConfigEditError(f"{cf.path.name}: no service '{sid}' any more")
        taken = [i for i in ids if not (self.kind == "replace" and i == self.ids[0])]
        for t in self.tables:
            if t.get("id") in taken:
                raise ConfigEditError(f"{cf.path.name}: id '{t.get('id')}' is taken now")


def save(cf: ConfigFile, edit: Edit, *, force: bool = False) -> tuple[ConfigFile, Config]:
    """Apply `edit` to `cf`, validate the whole new text with the loader, write it atomically.

    Returns the file as written and its Config. Raises Conflict or ConfigEditError; on any error the
    file on disk is untouched.
    """
    edit.check(cf)
    text = edit.apply(cf)
    config = cf.validate_text(text)
    return cf.write(text, force=force), config


# ---------------------------------------------------------------- CSV and fragments

CSV_COLUMNS = ("id", "name", "group", "tags", "check_type", "endpoint", "health_path", "host", "port", "check",
               "backup_endpoints", "restart", "heartbeat_interval_seconds", "tls_verify", "ca_bundle", "overrides",
               "depends_on")
"""One column set for import and export:

- `tags`, `depends_on`, `backup_endpoints`: separated by `;` (export) or `;` and `,` (import; URLs also by
  spaces);
- `check_type`: the check's `type` (empty: http); `host`, `port`: the check's keys of those names;
  `check`: the check's other keys as a TOML inline table (`{ register = 40001, min = 0 }`);
- `restart`: `POST http://…/restart` (also GET, PUT) or a TOML inline table (`{ command = ["…"] }`);
- `overrides`: `{ fault_detection = { timeout_seconds = 2 }, recovery = { … } }`;
- other columns: the key's value as text (numbers and true/false as TOML writes them).
"""

_COLUMN_OF = {"host": "host", "port": "port", "check.host": "host", "check.port": "port", "check.type": "check_type",
              **{k: "overrides" for k in OVERRIDABLE}}


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One row of an import preview.

    Attributes:
        line: where it came from (CSV line number, or entry number in a TOML fragment).
        service_id: its id as given ("" if none).
        table: the entry it makes (also for a row with errors, for display).
        errors: what is wrong, each "column: message"; empty for a row that will be imported.
    """

    line: int
    service_id: str
    table: Mapping[str, Any]
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class ImportPreview:
    rows: tuple[ImportRow, ...] = ()
    problem: str = ""  # the whole input was unreadable (one line)

    @property
    def good(self) -> list[ImportRow]:
        return [r for r in self.rows if r.ok]

    @property
    def bad(self) -> list[ImportRow]:
        return [r for r in self.rows if not r.ok]

    def edit(self) -> Edit:
        """The edit that adds the good rows."""
        return Edit("add", tables=tuple(r.table for r in self.good))


def _split_list(text: str, spaces: bool = False) -> list[str]:
    """`a; b, c` → [a, b, c]; with `spaces` (URL lists) whitespace separates too (tags may hold spaces)."""
    return [p.strip() for p in re.split(r"[;,\s]+" if spaces else r"[;,]", text.strip()) if p.strip()]


def _toml_value(text: str, column: str) -> Any:
    """A TOML value written in a cell (`5`, `2.5`, `true`, `"x"`, `{ a = 1 }`, `[1, 2]`)."""
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError as exc:
        raise ConfigEditError(f"{column}: not a TOML value: {exc}") from None


def _inline_table(text: str, column: str) -> dict[str, Any]:
    text = text.strip()
    if not text.startswith("{"):
        text = "{ " + text + " }"
    value = _toml_value(text, column)
    if not isinstance(value, dict):  # pragma: no cover - braces always make a table
        raise ConfigEditError(f"{column}: expected a table")
    return dict(value)


def _scalar(text: str) -> Any:
    """A number or boolean if the cell is one, else the text itself (the loader judges the type)."""
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    return value if isinstance(value, (int, float, bool)) else text


def row_to_table(row: Mapping[str, str]) -> dict[str, Any]:
    """A CSV row (column → text) as an entry; ConfigEditError names the column it cannot read."""
    cell = {k: (row.get(k) or "").strip() for k in CSV_COLUMNS}
    table: dict[str, Any] = {}
    for key in ("id", "name", "group", "endpoint", "health_path", "ca_bundle"):
        if cell[key]:
            table[key] = cell[key]
    if cell["tags"]:
        table["tags"] = _split_list(cell["tags"])
    if cell["depends_on"]:
        table["depends_on"] = _split_list(cell["depends_on"])
    check: dict[str, Any] = {}
    if cell["check_type"]:
        check["type"] = cell["check_type"]
    if cell["host"]:
        check["host"] = cell["host"]
    if cell["port"]:
        check["port"] = _scalar(cell["port"])
    if cell["check"]:
        check.update(_inline_table(cell["check"], "check"))
    if check and check != {"type": "http"}:
        table["check"] = check
    if cell["backup_endpoints"]:
        table["backup_endpoints"] = _split_list(cell["backup_endpoints"], spaces=True)
    if cell["restart"]:
        m = re.match(r"(GET|POST|PUT)\s+(\S+)\Z", cell["restart"], re.IGNORECASE)
        if m:
            table["restart"] = {"http": {"method": m.group(1).upper(), "url": m.group(2)}}
        else:
            table["restart"] = _inline_table(cell["restart"], "restart")
    if cell["heartbeat_interval_seconds"]:
        table["heartbeat_interval_seconds"] = _scalar(cell["heartbeat_interval_seconds"])
    if cell["tls_verify"]:
        table["tls_verify"] = _scalar(cell["tls_verify"].lower())
    if cell["overrides"]:
        for k, v in _inline_table(cell["overrides"], "overrides").items():
            table[k] = v
    return table


def toml_inline(value: Any) -> str:
    """A value as TOML inline text, on one line (for CSV cells)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return tomlkit.item(value).as_string()
    if isinstance(value, str):
        return tomlkit.string(value).as_string()
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_key(k)} = {toml_inline(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_inline(v) for v in value) + "]"
    raise ConfigEditError(f"cannot write {type(value).__name__} as TOML")


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def table_to_row(table: Mapping[str, Any]) -> dict[str, str]:
    """An entry as a CSV row (the inverse of row_to_table)."""
    row = {k: "" for k in CSV_COLUMNS}
    for key in ("id", "name", "group", "endpoint", "health_path", "ca_bundle"):
        if key in table:
            row[key] = str(table[key])
    if table.get("tags"):
        row["tags"] = "; ".join(str(t) for t in table["tags"])
    if table.get("depends_on"):
        row["depends_on"] = "; ".join(str(p) for p in table["depends_on"])
    check = dict(table.get("check") or {})
    row["check_type"] = str(check.pop("type", "http"))
    for key in ("host", "port"):
        if key in check:
            value = check.pop(key)
            row[key] = value if isinstance(value, str) else toml_inline(value)
    if check:
        row["check"] = toml_inline(check)
    if table.get("backup_endpoints"):
        row["backup_endpoints"] = "; ".join(str(u) for u in table["backup_endpoints"])
    restart = table.get("restart")
    if isinstance(restart, Mapping):
        http = restart.get("http")
        if len(restart) == 1 and isinstance(http, Mapping) and set(http) <= {"url", "method"} and \
                isinstance(http.get("url"), str) and " " not in http["url"]:
            row["restart"] = f"{str(http.get('method', 'POST')).upper()} {http['url']}"
        else:
            row["restart"] = toml_inline(restart)
    if "heartbeat_interval_seconds" in table:
        row["heartbeat_interval_seconds"] = toml_inline(table["heartbeat_interval_seconds"])
    if "tls_verify" in table:
        row["tls_verify"] = toml_inline(table["tls_verify"])
    overrides = {k: table[k] for k in OVERRIDABLE if k in table}
    if overrides:
        row["overrides"] = toml_inline(overrides)
    return row


def export_csv(cf: ConfigFile, ids: Sequence[str] | None = None) -> str:
    """The fleet (or the entries with `ids`, in file order) as CSV text with CSV_COLUMNS."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    wanted = set(ids) if ids is not None else None
    for table in cf.services():
        if wanted is None or table.get("id") in wanted:
            writer.writerow(table_to_row(table))
    return out.getvalue()


def _column(key: str) -> str:
    """The CSV column a loader key path comes from."""
    top = re.sub(r"\[\d+\]", "", key).split(".")[0]
    if key in _COLUMN_OF:
        return _COLUMN_OF[key]
    if top == "check":
        return "check"
    return _COLUMN_OF.get(top, top)


def _preview(cf: ConfigFile, items: Iterable[tuple[int, dict[str, Any] | None, str]], *,
             csv_columns: bool) -> ImportPreview:
    rows: list[ImportRow] = []
    earlier: list[str] = []
    for line, table, problem in items:
        if table is None:
            rows.append(ImportRow(line, "", {}, (problem,)))
            continue
        sid = str(table.get("id", ""))
        verdict = cf.validate_entry(table, known_ids=earlier)
        errors = [f"{_column(e.key) if csv_columns else e.key}: {e.message}" if e.key else e.message
                  for e in verdict.errors]
        if sid and sid in earlier:
            errors.insert(0, f"id: duplicate id '{sid}' (an earlier row has it)")
        rows.append(ImportRow(line, sid, table, tuple(errors)))
        if sid:
            earlier.append(sid)
    return ImportPreview(tuple(rows))


def preview_csv(cf: ConfigFile, text: str) -> ImportPreview:
    """Every row of a CSV text, validated against `cf` (and against the rows above it)."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        return ImportPreview(problem="the file is empty")
    unknown = [c for c in reader.fieldnames if c and c.strip() not in CSV_COLUMNS]
    if unknown:
        return ImportPreview(problem=f"unknown column(s): {', '.join(unknown)} "
                                     f"(columns: {', '.join(CSV_COLUMNS)})")
    if "id" not in [c.strip() for c in reader.fieldnames]:
        return ImportPreview(problem="no 'id' column")

    def items() -> Iterable[tuple[int, dict[str, Any] | None, str]]:
        try:
            for row in reader:
                line = reader.line_num
                clean = {(k or "").strip(): v for k, v in row.items() if isinstance(v, str)}
                if not any(v.strip() for v in clean.values()):
                    continue
                try:
                    yield line, row_to_table(clean), ""
                except ConfigEditError as exc:
                    yield line, None, str(exc)
        except csv.Error as exc:
            yield reader.line_num, None, f"CSV error: {exc}"
    return _preview(cf, items(), csv_columns=True)


def preview_toml(cf: ConfigFile, text: str) -> ImportPreview:
    """A TOML fragment of `[[services]]` entries, each validated like a CSV row."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return ImportPreview(problem=f"TOML syntax error: {exc}")
    other = [k for k in data if k != "services"]
    if other:
        return ImportPreview(problem=f"only [[services]] entries are imported; found {', '.join(other)}")
    entries = data.get("services", [])
    if not isinstance(entries, list) or not entries:
        return ImportPreview(problem="no [[services]] entries found")
    return _preview(cf, ((i + 1, dict(t) if isinstance(t, dict) else None,
                          "expected a table") for i, t in enumerate(entries)), csv_columns=False)


__all__ = ["KEEP_BACKUPS", "CSV_COLUMNS", "ConfigEditError", "Conflict", "FieldError", "Validation", "ConfigFile",
           "Edit", "save", "ImportRow", "ImportPreview", "preview_csv", "preview_toml", "export_csv", "row_to_table",
           "table_to_row", "render_entry", "atomic_write", "backup", "backups", "backup_dir", "reload_after_edit", "EditableEngine"]


# ---------------------------------------------------------------- telling the engine

class EditableEngine(Protocol):
    """What an edit needs of the engine: reload the file and journal the edit as one action."""

    async def reload(self, path: str, origin: str, *, edit: str = "", service: str = "") -> CommandResult: ...


async def reload_after_edit(engine: EditableEngine, path: str, origin: str, detail: str,
                            service: str = "") -> CommandResult:
    """Reload the edited file and journal the edit as a `config_edit` action ("added plc-3").

    Runs on the engine's loop (core/runner.py EngineThread.config_edit); the engine journals the edit
    as one `config_edit` action.
    """
    result = await engine.reload(path, origin, edit=detail, service=service)
    if result.ok:
        return CommandResult(True, f"config edit: {detail} ({result.message})")
    return CommandResult(False, f"config edit saved but not applied: {result.message}")
