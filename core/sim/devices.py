"""Simulated devices: what one device answers, decided from its behaviour and the time.

A `Device` is plain state with no sockets: `respond(now)` and `restart(now)` return a `Reply`, a
small description of what to send (a body, a stream, a dropped connection, nothing at all), and the
server in `core.sim.server` turns it into bytes. So every timing rule here (flapping, the reboot
window, sticky faults, seeded flakiness) is tested with a fake clock and no network.

Restart is the same for every behaviour: the device is unavailable for `reboot_s` seconds, then comes
back with `after_restart` (usually "healthy"), or with the behaviour it had if it is `sticky`.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from core.clock import Clock, SystemClock

ReplyKind = Literal["body", "reset", "hang", "stream", "trickle", "redirect"]


@dataclass(frozen=True, slots=True)
class Reply:
    """What the server should do with one request.

    Attributes:
        kind: "body" (status + body), "reset" (drop the connection without a response), "hang"
            (never answer), "stream" (`size_bytes` in `chunk_bytes` pieces), "trickle" (one byte per
            `interval_s`, forever), "redirect" (302 to the request's own URL).
        delay_s: wait this long before answering (slow devices).
    """

    kind: ReplyKind
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay_s: float = 0.0
    size_bytes: int = 0
    chunk_bytes: int = 65536
    interval_s: float = 1.0


# Declared once: every behaviour and its parameters with defaults. Values are numbers.
BEHAVIOURS: dict[str, dict[str, float]] = {
    "healthy": {},
    "slow": {"delay_ms": 500.0},
    "flaky": {"p": 0.3, "seed": 0},
    "down": {},
    "reset": {},
    "flapping": {"period_s": 10.0},
    "hanging": {},
    "garbage": {},
    "huge": {"size_bytes": 50_000_000, "chunk_bytes": 65536},
    "slowloris": {"interval_s": 1.0},
    "error500": {},
    "redirect_loop": {},
    # Every device reboots on /restart; this name exists so a fleet or scenario can say so outright.
    "reboot_on_restart": {},
}
_INT_PARAMS = frozenset({"seed", "size_bytes", "chunk_bytes"})
_POSITIVE_PARAMS = frozenset({"period_s", "interval_s", "chunk_bytes"})
REBOOT_MODES = ("down", "reset")
# Behaviours during which a device is "dead" (it sends no heartbeats).
_DEAD = frozenset({"down", "reset", "hanging"})

_DOWN = Reply("body", 503, b'{"status":"down"}')
_REBOOTING = Reply("body", 503, b'{"status":"rebooting"}')
_ERROR500 = Reply("body", 500, b'{"status":"error","error":"internal"}')
_RESET = Reply("reset")
_HANG = Reply("hang")
_REDIRECT = Reply("redirect", 302)
_GARBAGE = Reply("body", 200, b"\x89<html>\x00\xff{\"status\": ok,,} \xfe\xfdnot json", "text/html")


def check_params(behaviour: str, params: Mapping[str, Any]) -> dict[str, float]:
    """Validate a behaviour's parameters; returns them with defaults filled in.

    Raises ValueError with one line naming the behaviour and the parameter.
    """
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour {behaviour!r} (expected one of {' | '.join(BEHAVIOURS)})")
    declared = BEHAVIOURS[behaviour]
    out: dict[str, float] = dict(declared)
    for key, value in params.items():
        if key not in declared:
            known = ", ".join(declared) or "none"
            raise ValueError(f"{behaviour}: unknown parameter {key!r} (known: {known})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{behaviour}: {key} must be a finite number, got {value!r}")
        if value < 0 or (key in _POSITIVE_PARAMS and value <= 0):
            raise ValueError(f"{behaviour}: {key} must be {'> 0' if key in _POSITIVE_PARAMS else '>= 0'}, "
                             f"got {value!r}")
        if key == "p" and value > 1:
            raise ValueError(f"{behaviour}: p must be at most 1, got {value!r}")
        out[key] = int(value) if key in _INT_PARAMS else float(value)
    return out


def _check_device_settings(reboot_s: float, after_restart: str, reboot_as: str) -> None:
    if isinstance(reboot_s, bool) or not isinstance(reboot_s, (int, float)) or not 0 <= reboot_s < math.inf:
        raise ValueError(f"reboot_s must be a finite number >= 0, got {reboot_s!r}")
    if after_restart not in BEHAVIOURS:
        raise ValueError(f"after_restart: unknown behaviour {after_restart!r}")
    if reboot_as not in REBOOT_MODES:
        raise ValueError(f"reboot_as must be one of {' | '.join(REBOOT_MODES)}, got {reboot_as!r}")


@dataclass(frozen=True)
class DeviceSpec:
    """How a simulated device starts.

    Attributes:
        reboot_s: how long a restart keeps it unavailable.
        after_restart: the behaviour it comes back with (unless sticky).
        sticky: it comes back with the behaviour it had before the restart (restart storms).
        reboot_as: while rebooting it answers 503 ("down") or drops connections ("reset").
        backup_of: this device is the standby of another one; configs list it as that device's
            backup endpoint instead of as a service of its own.
    """

    id: str
    behaviour: str = "healthy"
    params: Mapping[str, Any] = field(default_factory=dict)
    group: str = "rack-a"
    name: str = ""
    reboot_s: float = 2.0
    after_restart: str = "healthy"
    sticky: bool = False
    heartbeat_interval_s: float | None = None
    reboot_as: str = "down"
    backup_of: str = ""

    @property
    def display_name(self) -> str:
        return self.name or self.id


class Device:
    """One simulated device's live state.

    Attributes:
        behaviour: the current behaviour (what it does when not rebooting).
        params: that behaviour's parameters, defaults filled in.
        restarts: restart requests received.
        requests: health requests served (including failed and dropped ones).
        heartbeats: heartbeats sent successfully.
    """

    __slots__ = ("spec", "id", "behaviour", "params", "restarts", "requests", "heartbeats", "reboot_s",
                 "after_restart", "sticky", "reboot_as", "_clock", "_since", "_booted_at",
                 "_reboot_until", "_next", "_rng", "_ok_prefix", "_slow_s", "_p")

    def __init__(self, spec: DeviceSpec, clock: Clock | None = None) -> None:
        self.spec = spec
        self.id = spec.id
        self._clock: Clock = clock or SystemClock()
        now = self._clock.monotonic()
        _check_device_settings(spec.reboot_s, spec.after_restart, spec.reboot_as)
        self.reboot_s = float(spec.reboot_s)
        self.after_restart = spec.after_restart
        self.sticky = spec.sticky
        self.reboot_as = spec.reboot_as
        self.restarts = 0
        self.requests = 0
        self.heartbeats = 0
        self._booted_at = now
        self._reboot_until: float | None = None
        self._next: tuple[str, dict[str, float]] = ("healthy", {})
        self._ok_prefix = b'{"status":"ok","device":' + json.dumps(spec.id).encode() + b',"uptime_s":'
        self.behaviour = "healthy"
        self.params: dict[str, float] = {}
        self._since = now
        self._rng = random.Random(0)
        self._slow_s = 0.0
        self._p = 0.0
        self.set_behaviour(spec.behaviour, now=now, **dict(spec.params))

    # ------------------------------------------------------------ commands

    def set_behaviour(self, name: str, *, now: float | None = None, sticky: bool | None = None,
                      after_restart: str | None = None, reboot_s: float | None = None,
                      reboot_as: str | None = None, **params: Any) -> None:
        """Switch behaviour now (this also ends a reboot in progress). Raises ValueError."""
        checked = check_params(name, params)
        _check_device_settings(self.reboot_s if reboot_s is None else reboot_s,
                               self.after_restart if after_restart is None else after_restart,
                               self.reboot_as if reboot_as is None else reboot_as)
        if sticky is not None and not isinstance(sticky, bool):
            raise ValueError(f"sticky must be true or false, got {sticky!r}")
        if sticky is not None:
            self.sticky = sticky
        if after_restart is not None:
            self.after_restart = after_restart
        if reboot_s is not None:
            self.reboot_s = float(reboot_s)
        if reboot_as is not None:
            self.reboot_as = reboot_as
        self._apply(name, checked, self._clock.monotonic() if now is None else now)
        self._reboot_until = None

    def _apply(self, name: str, params: dict[str, float], now: float) -> None:
        self.behaviour = name
        self.params = params
        self._since = now
        self._slow_s = params.get("delay_ms", 0.0) / 1000.0
        self._p = params.get("p", 0.0)
        if name == "flaky":
            # Seeded per device, so a fleet's failures are reproducible and not in lockstep.
            self._rng = random.Random(f"{int(params['seed'])}:{self.id}")

    def restart(self, now: float) -> Reply:
        """A restart request: reboot for reboot_s, then come back as after_restart (or as before, if sticky)."""
        self._tick(now)
        self.restarts += 1
        if self._reboot_until is None:
            self._next = (self.behaviour, self.params) if self.sticky else (
                self.after_restart, check_params(self.after_restart, {}))
        self._reboot_until = now + self.reboot_s
        self._tick(now)
        body = b'{"status":"restarting","device":%s,"reboot_s":%s}' % (
            json.dumps(self.id).encode(), repr(self.reboot_s).encode())
        return Reply("body", 200, body)

    # ------------------------------------------------------------ queries

    def rebooting(self, now: float) -> bool:
        self._tick(now)
        return self._reboot_until is not None

    def state(self, now: float) -> str:
        """The effective state: "rebooting", "down" for a flapping device in its down half, else the behaviour."""
        self._tick(now)
        if self._reboot_until is not None:
            return "rebooting"
        if self.behaviour == "flapping" and self._flap_down(now):
            return "down"
        return self.behaviour

    def alive(self, now: float) -> bool:
        """Whether it would send heartbeats now."""
        s = self.state(now)
        return s != "rebooting" and s not in _DEAD

    def uptime(self, now: float) -> float:
        self._tick(now)
        return max(0.0, now - self._booted_at)

    def respond(self, now: float) -> Reply:
        """The reply to one health request at monotonic time `now`."""
        self.requests += 1
        if self._reboot_until is not None:
            self._tick(now)
            if self._reboot_until is not None:
                return _RESET if self.reboot_as == "reset" else _REBOOTING
        b = self.behaviour
        if b == "healthy" or b == "reboot_on_restart":
            return self._ok(now)
        if b == "slow":
            return Reply("body", 200, self._ok_body(now), delay_s=self._slow_s)
        if b == "flaky":
            return _DOWN if self._rng.random() < self._p else self._ok(now)
        if b == "down":
            return _DOWN
        if b == "flapping":
            return _DOWN if self._flap_down(now) else self._ok(now)
        if b == "reset":
            return _RESET
        if b == "hanging":
            return _HANG
        if b == "error500":
            return _ERROR500
        if b == "garbage":
            return _GARBAGE
        if b == "redirect_loop":
            return _REDIRECT
        if b == "huge":
            return Reply("stream", 200, content_type="application/json",
                         size_bytes=int(self.params["size_bytes"]),
                         chunk_bytes=int(self.params["chunk_bytes"]))
        if b == "slowloris":
            return Reply("trickle", 200, interval_s=self.params["interval_s"])
        raise AssertionError(f"unhandled behaviour {b}")  # pragma: no cover - BEHAVIOURS and this agree

    def info(self, now: float) -> dict[str, Any]:
        """A JSON-able snapshot for the control API."""
        return {
            "id": self.id, "name": self.spec.display_name, "group": self.spec.group,
            "behaviour": self.behaviour, "params": dict(self.params), "state": self.state(now),
            "restarts": self.restarts, "requests": self.requests, "heartbeats": self.heartbeats,
            "uptime_s": round(self.uptime(now), 3), "reboot_s": self.reboot_s,
            "after_restart": self.after_restart, "sticky": self.sticky, "reboot_as": self.reboot_as,
        }

    # ------------------------------------------------------------ internals

    def _tick(self, now: float) -> None:
        """Finish a reboot whose window has passed."""
        until = self._reboot_until
        if until is not None and now >= until:
            self._reboot_until = None
            self._booted_at = until
            name, params = self._next
            self._apply(name, params, until)

    def _flap_down(self, now: float) -> bool:
        # Healthy for the first period after the behaviour is set, then down, then healthy...
        return int((now - self._since) // self.params["period_s"]) % 2 == 1

    def _ok_body(self, now: float) -> bytes:
        return self._ok_prefix + b"%.1f}" % (now - self._booted_at)

    def _ok(self, now: float) -> Reply:
        return Reply("body", 200, self._ok_body(now))


# ---------------------------------------------------------------- fleets

DEFAULT_MIX: dict[str, float] = {"healthy": 0.9, "slow": 0.03, "flaky": 0.03, "flapping": 0.02, "down": 0.02}


def make_fleet(n: int, group_size: int = 40, seed: int = 0,
               mix: dict[str, float] | None = None) -> list[DeviceSpec]:
    """n devices over racks "rack-01", "rack-02"..., ids like "r01-d007", mostly healthy.

    `mix` maps behaviour names to weights (they need not sum to 1); the draw is seeded, so the same
    arguments always give the same fleet.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    weights = dict(DEFAULT_MIX if mix is None else mix)
    for name, w in weights.items():
        if name not in BEHAVIOURS:
            raise ValueError(f"mix: unknown behaviour {name!r}")
        if not isinstance(w, (int, float)) or w < 0 or not math.isfinite(w):
            raise ValueError(f"mix: weight of {name!r} must be a finite number >= 0, got {w!r}")
    if n and sum(weights.values()) <= 0:
        raise ValueError("mix: weights sum to 0")
    rng = random.Random(seed)
    names = list(weights)
    cum = list(weights.values())
    specs: list[DeviceSpec] = []
    for i in range(n):
        rack, slot = divmod(i, group_size)
        behaviour = rng.choices(names, cum)[0]
        params: dict[str, Any] = {}
        if behaviour == "slow":
            params = {"delay_ms": float(rng.randrange(150, 800, 50))}
        elif behaviour == "flaky":
            params = {"p": 0.2, "seed": seed}
        elif behaviour == "flapping":
            params = {"period_s": float(rng.randrange(20, 90, 5))}
        specs.append(DeviceSpec(
            id=f"r{rack + 1:02d}-d{slot + 1:03d}", behaviour=behaviour, params=params,
            group=f"rack-{rack + 1:02d}", name=f"Rack {rack + 1} device {slot + 1}"))
    return specs
