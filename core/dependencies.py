"""Dependencies: which device sits behind which (`depends_on`), and who is blocked by whom.

A service that depends on a switch cannot be judged while the switch is down: its failures are the
switch's failure. `DependencyGraph` owns that relation as plain data (parents, children, ancestors,
descendants, cycles) and answers the one question the engine asks each time a state changes:
`blocked_by(service, is_down)`, the nearest ancestor that is down. `BlockTracker` turns successive
answers into changes (newly blocked, released), so the engine knows when to hold a child's restarts
and when to judge it afresh. Pure: no clock, no I/O, no engine state.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence


class DependencyError(ValueError):
    """A graph that cannot be used: an unknown id or a cycle, said in one line."""


class DependencyGraph:
    """Parents (`depends_on`) and children of every service, validated: known ids, no cycles.

    Attributes:
        services: every service id, in declaration order.
    """

    def __init__(self, depends_on: Mapping[str, Sequence[str]]) -> None:
        self.services: tuple[str, ...] = tuple(depends_on)
        known = set(self.services)
        self._parents: dict[str, tuple[str, ...]] = {}
        self._children: dict[str, list[str]] = {s: [] for s in self.services}
        for service, parents in depends_on.items():
            unique = tuple(dict.fromkeys(parents))  # a repeated parent is the same dependency
            for parent in unique:
                if parent not in known:
                    raise DependencyError(f"{service} depends on unknown service '{parent}'")
                if parent == service:
                    raise DependencyError(f"{service} depends on itself")
                self._children[parent].append(service)
            self._parents[service] = unique
        cycle = self.find_cycle()
        if cycle is not None:
            raise DependencyError("dependency cycle: " + " -> ".join(cycle))

    def find_cycle(self) -> list[str] | None:
        return _find_cycle(self._parents)

    def parents(self, service: str) -> tuple[str, ...]:
        return self._parents.get(service, ())

    def children(self, service: str) -> tuple[str, ...]:
        return tuple(self._children.get(service, ()))

    def ancestors(self, service: str) -> list[str]:
        """Every service this one depends on, directly or not, nearest first (breadth-first)."""
        return _walk(service, self.parents)

    def descendants(self, service: str) -> list[str]:
        """Every service that depends on this one, directly or not, nearest first."""
        return _walk(service, self.children)

    def blocked_by(self, service: str, is_down: Callable[[str], bool]) -> str | None:
        """The nearest ancestor that is down (ties: the earlier-declared parent's side), or None.

        "Down" is the caller's rule (for the engine: unhealthy or breaker open); a service is never
        blocked by itself, and its own state does not matter here.
        """
        for ancestor in self.ancestors(service):
            if is_down(ancestor):
                return ancestor
        return None

    def root_cause(self, service: str, is_down: Callable[[str], bool]) -> str | None:
        """The down ancestor furthest up a chain of down services: where a folded alert belongs.

        switch-1 down with switch-3 behind it also down: PLCs behind switch-3 are blocked by
        switch-3, but the one alert that says it all is on switch-1.
        """
        cause = self.blocked_by(service, is_down)
        seen: set[str] = set()
        while cause is not None and cause not in seen:
            seen.add(cause)
            above = self.blocked_by(cause, is_down)
            if above is None:
                return cause
            cause = above
        return cause

    def affected(self, parent: str, is_down: Callable[[str], bool]) -> list[str]:
        """Descendants whose root cause is `parent`: how many devices one folded alert stands for."""
        if not is_down(parent) or self.blocked_by(parent, is_down) is not None:
            return []
        return [d for d in self.descendants(parent) if self.root_cause(d, is_down) == parent]


def _walk(start: str, step: Callable[[str], Iterable[str]]) -> list[str]:
    seen = {start}
    order: list[str] = []
    queue = deque(step(start))
    while queue:
        node = queue.popleft()
        if node in seen:
            continue
        seen.add(node)
        order.append(node)
        queue.extend(step(node))
    return order


def _find_cycle(parents: Mapping[str, Sequence[str]]) -> list[str] | None:
    # Iterative DFS with colours: recursion would overflow on a long chain of devices.
    white, grey, black = 0, 1, 2
    colour = {s: white for s in parents}
    for root in parents:
        if colour[root] != white:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        colour[root] = grey
        while stack:
            node, index = stack[-1]
            edges = parents.get(node, ())
            if index >= len(edges):
                stack.pop()
                path.pop()
                colour[node] = black
                continue
            stack[-1] = (node, index + 1)
            nxt = edges[index]
            state = colour.get(nxt, black)  # unknown ids are not this function's business
            if state == grey:
                return [*path[path.index(nxt):], nxt]
            if state == white:
                colour[nxt] = grey
                stack.append((nxt, 0))
                path.append(nxt)
    return None


@dataclass(frozen=True, slots=True)
class BlockChange:
    """What changed since the last `BlockTracker.update()`.

    Attributes:
        blocked: service -> the parent it is now blocked by (new, or blocked by a different parent).
        released: services no longer blocked; the engine judges them afresh (reset their counts).
    """

    blocked: Mapping[str, str]
    released: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.blocked) or bool(self.released)


class BlockTracker:
    """Remembers who is blocked by whom, and reports changes."""

    def __init__(self, graph: DependencyGraph) -> None:
        self.graph = graph
        self._blocked: dict[str, str] = {}

    @property
    def blocked(self) -> Mapping[str, str]:
        return dict(self._blocked)

    def blocked_by(self, service: str) -> str | None:
        return self._blocked.get(service)

    def update(self, is_down: Callable[[str], bool]) -> BlockChange:
        now: dict[str, str] = {}
        for service in self.graph.services:
            if self.graph.parents(service):
                parent = self.graph.blocked_by(service, is_down)
                if parent is not None:
                    now[service] = parent
        changed = {s: p for s, p in now.items() if self._blocked.get(s) != p}
        released = tuple(s for s in self._blocked if s not in now)
        self._blocked = now
        return BlockChange(blocked=changed, released=released)


__all__ = ["BlockChange", "BlockTracker", "DependencyError", "DependencyGraph"]
