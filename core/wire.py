"""The wire format of engine values: snapshots, alerts, stats and events as JSON-able dicts and back.

An attached console and its engine may be different versions, so decoding is tolerant by design:
keys the reader does not know are ignored (a newer engine added a field), fields the writer did not
send take their declared default or an empty value of their type (an older engine lacks one), and
non-finite floats travel as null. Only the field names and types declared on the dataclasses are
used, so a field added to `ServiceSnapshot` travels without a change here.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from enum import Enum
from functools import lru_cache
from typing import Any, Callable, TypeVar, Union

from core.events import Event, ServiceStatus, event_from_record
from core.snapshot import AlertView, EngineStats, ServiceSnapshot

T = TypeVar("T")

WIRE_VERSION = 1


class WireError(ValueError):
    """A value on the wire that cannot be turned into the type it must be."""


def to_wire(value: Any) -> Any:
    """Dataclasses to dicts, enums to values, tuples to lists, non-finite floats to None."""
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encoder(type(value))(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    return value


@lru_cache(maxsize=None)
def _encoder(cls: type) -> Callable[[Any], dict[str, Any]]:
    """An encoding function for a dataclass, built once: the engine encodes every changed snapshot
    for the stream, and the generic walk cost ~60 µs a snapshot."""
    hints = typing.get_type_hints(cls)
    plain: list[str] = []  # str, int, bool (and optional ones): sent as they are
    floats: list[str] = []  # float | None: non-finite to None
    other: list[str] = []  # everything else: the generic walk
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        args = set(typing.get_args(tp)) - {type(None)} if typing.get_origin(tp) in (Union, types.UnionType) else {tp}
        if args <= {str, int, bool}:
            plain.append(f.name)
        elif args == {float}:
            floats.append(f.name)
        else:
            other.append(f.name)
    isfinite = math.isfinite

    def encode(value: Any) -> dict[str, Any]:
        out = {name: getattr(value, name) for name in plain}
        for name in floats:
            v = getattr(value, name)
            out[name] = v if v is None or isfinite(v) else None
        for name in other:
            out[name] = to_wire(getattr(value, name))
        return out
    return encode


def from_wire(cls: type[T], data: Any) -> T:
    """Rebuild a dataclass value of `cls` from its `to_wire()` shape (tolerant; see module doc)."""
    if not isinstance(data, dict):
        raise WireError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    return typing.cast(T, _decoder(typing.cast(Any, cls))(data))


_Decode = Callable[[Any], Any]


@lru_cache(maxsize=None)
def _decoder(tp: Any) -> _Decode:
    """A decoding function for `tp`, built once per type: a console decodes thousands of snapshots
    a second, and walking the type hints for each one cost ~8x the JSON parsing itself."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            return lambda value: value
        inner = _decoder(args[0])
        return lambda value: None if value is None else inner(value)
    if origin is tuple:
        item = _decoder(typing.get_args(tp)[0]) if typing.get_args(tp) else (lambda value: value)

        def decode_tuple(value: Any) -> Any:
            if not isinstance(value, list):
                raise WireError(f"expected a list, got {type(value).__name__}")
            return tuple(map(item, value))
        return decode_tuple
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_decoder(tp)
    if isinstance(tp, type) and issubclass(tp, Enum):
        enum = tp

        def decode_enum(value: Any) -> Any:
            try:
                return enum(value)
            except ValueError:
                raise WireError(f"{value!r} is not a {enum.__name__}") from None
        return decode_enum
    if tp is float:
        def decode_float(value: Any) -> Any:
            if value.__class__ is float:
                return value
            if value is None:
                return math.nan  # a non-finite float went out as null (e.g. a sparkline's timeout)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise WireError(f"expected a number, got {type(value).__name__}")
            return float(value)
        return decode_float
    for kind, word in ((int, "an integer"), (str, "a string"), (bool, "true/false")):
        if tp is kind:
            return _exact(kind, word)
    return lambda value: value


def patch_from_wire(previous: T, changes: Any) -> T:
    """`previous` with the fields in `changes` (a partial `to_wire()` shape) decoded and replaced.

    The stream sends only the fields of a snapshot that changed (most checks change three or four
    of its thirty), so a console decodes a few values instead of whole snapshots. Unknown keys are
    ignored, as in `from_wire()`.
    """
    if not isinstance(changes, dict):
        raise WireError(f"patch: expected an object, got {type(changes).__name__}")
    decoders = _field_decoders(typing.cast(Any, type(previous)))
    kwargs = {name: decoders[name](value) for name, value in changes.items() if name in decoders}
    return dataclasses.replace(previous, **kwargs) if kwargs else previous  # type: ignore[type-var]


@lru_cache(maxsize=None)
def _field_decoders(cls: type) -> dict[str, _Decode]:
    hints = typing.get_type_hints(cls)
    return {f.name: _decoder(hints[f.name]) for f in dataclasses.fields(cls) if f.init}


def _exact(kind: type, word: str) -> _Decode:
    def decode(value: Any) -> Any:
        if value.__class__ is not kind:  # exact: True is not an int here, 1 is not a bool
            raise WireError(f"expected {word}, got {type(value).__name__}")
        return value
    return decode


def _dataclass_decoder(cls: type) -> _Decode:
    hints = typing.get_type_hints(cls)
    fields = [(f.name, _decoder(hints[f.name]),
               f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, hints[f.name])
              for f in dataclasses.fields(cls) if f.init]

    def decode(value: Any) -> Any:
        if not isinstance(value, dict):
            raise WireError(f"{cls.__name__}: expected an object, got {type(value).__name__}")
        kwargs: dict[str, Any] = {}
        for name, decode_field, required, hint in fields:
            if name in value:
                kwargs[name] = decode_field(value[name])
            elif required:
                kwargs[name] = _empty(hint)
        return cls(**kwargs)
    return decode


def _empty(tp: Any) -> Any:
    """The value of a field an older writer did not send: None when optional, else empty/zero."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType) and type(None) in typing.get_args(tp):
        return None
    if origin is tuple:
        return ()
    if isinstance(tp, type) and issubclass(tp, Enum):
        return next(iter(tp))
    for kind, empty in ((bool, False), (int, 0), (float, 0.0), (str, "")):
        if tp is kind:
            return empty
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _decoder(tp)({})
    return None


# ---------------------------------------------------------------- the engine's values

def snapshot_to_wire(snapshot: ServiceSnapshot) -> dict[str, Any]:
    return typing.cast(dict[str, Any], to_wire(snapshot))


def snapshot_from_wire(data: Any) -> ServiceSnapshot:
    return from_wire(ServiceSnapshot, data)


def alert_to_wire(alert: AlertView) -> dict[str, Any]:
    return typing.cast(dict[str, Any], to_wire(alert))


def alert_from_wire(data: Any) -> AlertView:
    return from_wire(AlertView, data)


def stats_to_wire(stats: EngineStats) -> dict[str, Any]:
    return typing.cast(dict[str, Any], to_wire(stats))


def stats_from_wire(data: Any) -> EngineStats:
    return from_wire(EngineStats, data)


def event_to_wire(event: Event) -> dict[str, Any]:
    """The documented record (docs/events.md) plus `wall` as a number, so no precision is lost."""
    record = event.to_record()
    record["wall"] = event.wall
    return typing.cast(dict[str, Any], to_wire(record))


def event_from_wire(data: Any) -> Event:
    """An event from `event_to_wire()`; raises WireError for an unknown kind or a broken record."""
    if not isinstance(data, dict):
        raise WireError(f"event: expected an object, got {type(data).__name__}")
    wall = data.get("wall")
    if not isinstance(wall, (int, float)) or isinstance(wall, bool):
        raise WireError("event: missing its wall time")
    try:
        return event_from_record(data, mono=0.0, wall=float(wall))
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"event: {exc}") from None


# ---------------------------------------------------------------- an engine that cannot be reached

UNREACHABLE = "engine unreachable"


def format_age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    return f"{s // 3600} h"


def unreachable_view(snap: ServiceSnapshot, age_s: float | None) -> ServiceSnapshot:
    """What a service of an unreachable engine shows: nothing live, and how old the data is.

    ServiceSnapshot has no field for "the engine behind this is gone" (it is being rebuilt), so the
    mark is the status UNKNOWN + stale + this error text, and `is_unreachable()` reads it back.
    """
    when = "no data yet" if age_s is None else f"last data {format_age(age_s)} ago"
    return dataclasses.replace(snap, status=ServiceStatus.UNKNOWN, stale=True, failed=False,
                               last_error=f"{UNREACHABLE} ({when})")


def is_unreachable(snap: ServiceSnapshot) -> bool:
    return snap.stale and snap.status is ServiceStatus.UNKNOWN and (snap.last_error or "").startswith(UNREACHABLE)
