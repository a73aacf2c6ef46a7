"""Presentation: the one place that decides how a service is shown — its category, shape and words.

The table's status and breaker cells, the wall's tiles and summary, the status bar's counts, the tray
and the detail panel all ask here, so one screen never tells two truths about one device (a device
failing 1 of 3 checks is *degraded* everywhere, red is kept for failed). ISA-101 wording: normal is
quiet; every state is coded twice (colour role and a shape or word).
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from typing import Callable, Iterable, Mapping

from core.describe import check_word, format_value
from core.events import BreakerState, HeartbeatStatus, ServiceStatus
from core.snapshot import ServiceSnapshot
from core.wire import is_unreachable
from gui.palette import Indicator


class Category(StrEnum):
    """What a service counts as, in the summary of a screen; one per service."""

    UNHEALTHY = "unhealthy"
    DEGRADED = "degraded"
    RECOVERING = "recovering"
    SUPPRESSED = "suppressed"
    BLOCKED = "blocked"  # behind a down parent: its parent carries the alarm (core/dependencies.py)
    UNKNOWN = "unknown"
    HEALTHY = "healthy"


ROLE_ORDER = {"critical": 0, "warning": 1, "suppressed": 2, "info": 3, "normal": 4}
_BY_ROLE = {"critical": Category.UNHEALTHY, "warning": Category.DEGRADED, "info": Category.RECOVERING,
            "suppressed": Category.SUPPRESSED}


def status_indicator(snap: ServiceSnapshot) -> Indicator:
    """The service's overall state, most important first."""
    if is_unreachable(snap):
        # Before everything else: whatever its engine said last (maintenance, failed, healthy) is not
        # live any more and must not look as if it were (an attached engine, core/remote.py).
        return Indicator("warning", "ring", "UNREACHABLE")
    if snap.maintenance:
        return Indicator("suppressed", "lock", "MAINTENANCE")
    if snap.paused:
        return Indicator("suppressed", "lock", "PAUSED")
    # Behind a down parent (core/dependencies): not failed itself, so quiet grey with its own word and
    # shape; the parent carries the alarm.
    if snap.blocked_by:
        return Indicator("normal", "square", f"BLOCKED BY {snap.blocked_by}")
    if snap.recovery is not None and snap.recovery.state.active:
        return Indicator("info", "diamond", f"RECOVERING {snap.recovery.attempt}/{snap.recovery.max_attempts}")
    if snap.failed:
        return Indicator("critical", "triangle", "FAILED")
    if snap.status is ServiceStatus.UNHEALTHY:
        # One failed check is a warning, not an alarm: red is kept for max_failures in a row, so a
        # flaky device does not flash the wall red on every dropped packet.
        return Indicator("warning", "triangle", f"FAILING {snap.consecutive_failures}/{snap.max_failures}")
    if snap.heartbeat is HeartbeatStatus.MISSED:
        return Indicator("critical", "triangle", "NO HEARTBEAT")
    if snap.status is ServiceStatus.DEGRADED:
        return Indicator("warning", "triangle", "DEGRADED")
    if snap.status is ServiceStatus.UNKNOWN:
        return Indicator("normal", "ring", "UNKNOWN")
    return Indicator("normal", "circle", "HEALTHY")


def breaker_indicator(snap: ServiceSnapshot) -> Indicator:
    b = snap.breaker
    if b.state is BreakerState.FORCED_OPEN:
        return Indicator("suppressed", "lock", "FORCED OPEN")
    if b.state is BreakerState.FORCED_CLOSED:
        return Indicator("suppressed", "lock", "FORCED CLOSED")
    # Behind a down parent the breaker opens because the path to the device is gone, not the device:
    # the words stay (a technician wants the fact) but in quiet grey, so twenty children of a dead
    # switch do not paint twenty red breakers beside the one alarm that matters.
    blocked = bool(snap.blocked_by)
    if b.state is BreakerState.OPEN:
        word = "OPEN" if b.reopen_in_s is None else f"OPEN {b.reopen_in_s:.0f}s"
        return Indicator("normal" if blocked else "critical", "circle", word)
    if b.state is BreakerState.HALF_OPEN:
        return Indicator("normal" if blocked else "warning", "triangle",
                         f"HALF-OPEN {b.half_open_successes}/{b.success_threshold}")
    return Indicator("normal", "ring", "CLOSED")


def role(snap: ServiceSnapshot, status: Indicator | None = None, breaker: Indicator | None = None) -> str:
    """The service's colour role: the more severe of its state and its breaker (indicators are
    computed unless the caller has them already)."""
    st = status or status_indicator(snap)
    br = breaker or breaker_indicator(snap)
    return br.role if ROLE_ORDER[br.role] < ROLE_ORDER[st.role] else st.role


def category(snap: ServiceSnapshot, status: Indicator | None = None, breaker: Indicator | None = None) -> Category:
    if is_unreachable(snap):
        return Category.UNKNOWN  # nothing about it is known now, not even its last breaker state
    found = _BY_ROLE.get(role(snap, status, breaker))
    if found is not None:
        return found
    if snap.blocked_by:
        return Category.BLOCKED
    return Category.UNKNOWN if snap.status is ServiceStatus.UNKNOWN else Category.HEALTHY


def counts(snaps: Iterable[ServiceSnapshot]) -> dict[Category, int]:
    """Services per category, every category present (zeros included)."""
    found = Counter(category(s) for s in snaps)
    return {c: found.get(c, 0) for c in Category}


def status_keys(snap: ServiceSnapshot, status: Indicator | None = None,
                breaker: Indicator | None = None) -> tuple[str, ...]:
    """What one service adds to the status bar's counts: its category, and "forced", "maintenance"
    and "paused" when they apply (those are counted within the categories, not beside them)."""
    keys: tuple[str, ...] = (str(category(snap, status, breaker)),)
    if snap.breaker.state.forced:
        keys += ("forced",)
    if snap.maintenance:
        keys += ("maintenance",)
    if snap.paused:
        keys += ("paused",)
    return keys


def identity_diff(old: Mapping[str, ServiceSnapshot],
                  new: Mapping[str, ServiceSnapshot]) -> tuple[dict[str, ServiceSnapshot], list[str]]:
    """(services of `new` that are not the very object `old` has, ids of `old` missing from `new`).

    Snapshots are frozen and the engine replaces the ones that change, so identity is the cheap and
    sufficient test for consumers that keep something derived per service.
    """
    get = old.get
    changed = {sid: s for sid, s in new.items() if get(sid) is not s}
    # Every id of `old` is in `new` unless old has more ids than new has unchanged ones.
    removed = [sid for sid in old if sid not in new] if len(old) > len(new) - len(changed) else []
    return changed, removed


class Tally:
    """Counts of keys over a fleet that changes a few services at a time.

    A service's keys are computed when its snapshot changes (snapshots are frozen, so identity says
    "unchanged"), never on every poll: counting 5,000 services from scratch took 14 ms of a 30 ms
    bridge poll, while about a quarter of them change per poll at 1 s checks (docs/benchmarks.md).

    Attributes:
        version: grows by one whenever the counts change (consumers redraw only then).
    """

    def __init__(self, keys: Callable[[ServiceSnapshot], Iterable[str]], always: Iterable[str] = ()) -> None:
        self._keys = keys
        self._always = tuple(always)  # keys present in counts() even at zero
        self._seen: dict[str, ServiceSnapshot] = {}
        self._of: dict[str, tuple[str, ...]] = {}
        self._counts: Counter[str] = Counter()
        self.version = 0

    def update(self, changed: Mapping[str, ServiceSnapshot], removed: Iterable[str] = ()) -> bool:
        """Apply services that changed or appeared and ids that disappeared; True if a count moved."""
        delta: dict[str, int] = {}
        for sid in removed:
            self._seen.pop(sid, None)
            for k in self._of.pop(sid, ()):
                delta[k] = delta.get(k, 0) - 1
        seen, of = self._seen, self._of
        for sid, snap in changed.items():
            if seen.get(sid) is snap:
                continue
            seen[sid] = snap
            new = tuple(self._keys(snap))
            old = of.get(sid)
            if old == new:
                continue
            of[sid] = new
            for k in old or ():
                delta[k] = delta.get(k, 0) - 1
            for k in new:
                delta[k] = delta.get(k, 0) + 1
        moved = False
        counts = self._counts
        for k, d in delta.items():
            if d:
                counts[k] += d
                moved = True
        if moved:
            self.version += 1
        return moved

    def sync(self, snaps: Mapping[str, ServiceSnapshot]) -> bool:
        """Make the tally describe exactly `snaps` (an identity pass: cheap when little changed)."""
        return self.update(*identity_diff(self._seen, snaps))

    def counts(self) -> dict[str, int]:
        """Services per key (every key of `always` included, zeros too; no key with zero otherwise)."""
        out = {k: 0 for k in self._always}
        out.update((k, n) for k, n in self._counts.items() if n)
        return out

    def keys_of(self, service_id: str) -> tuple[str, ...]:
        return self._of.get(service_id, ())

    def __len__(self) -> int:
        return len(self._of)


STATUS_KEYS = tuple(str(c) for c in Category) + ("forced", "maintenance", "paused")


def format_duration(seconds: float) -> str:
    """A short human duration: "45 s", "12 min", "3 h", "2 d"."""
    s = max(0.0, seconds)
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 36 * 3600:
        return f"{s / 3600:.0f} h"
    return f"{s / 86400:.0f} d"


def format_age(seconds: float | None) -> str:
    return "never" if seconds is None else f"{format_duration(seconds)} ago"


def check_text(snap: ServiceSnapshot) -> str:
    """The service's check type as a word: "HTTP", "MODBUS", "OPC UA"."""
    return check_word(snap.check_type)


def value_text(snap: ServiceSnapshot) -> str:
    """The last value the check read, unit-less ("" when the check reads none, as HTTP)."""
    return "" if snap.value is None else format_value(snap.value)


def numeric_value(snap: ServiceSnapshot) -> float | None:
    """The last value when it is a number to chart or sort by (booleans and text are not)."""
    v = snap.value
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return None


def has_numeric_values(snap: ServiceSnapshot) -> bool:
    """Whether the service's check reads numbers (a value chart is worth showing)."""
    return bool(snap.values) or numeric_value(snap) is not None


REBOOT_RECENT_S = 3600.0  # a reboot is shown in amber this long; after that it is history


def reboot_recent(snap: ServiceSnapshot, now: float) -> bool:
    """Whether the device restarted by itself recently enough to draw the eye."""
    return snap.last_reboot_wall is not None and now - snap.last_reboot_wall < REBOOT_RECENT_S
