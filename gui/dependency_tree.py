"""The service table grouped by dependency: where each row goes and how its name is drawn.

Each parent comes with the devices behind it beneath it (indented, at any depth), trees in the
order of their roots, then a section of the services that neither depend on anything shown nor
have anything behind them. A device behind several parents is shown under the first of them it
names (`depends_on` order); its other parents are in the detail panel. Pure: the proxy
(gui/service_model.py) calls `arrange()` with the rows in their flat sort order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

CHILD_MARK = "↳"
PARENT_MARK = "▾"
_INDENT = "\u2003"  # an em space: plain spaces are too narrow in a proportional font to read as depth


@dataclass(frozen=True, slots=True)
class TreeMark:
    """Where one service sits in the grouped table.

    Attributes:
        depth: 0 for a root (a parent or a service without dependencies), n for n levels below one.
        behind: how many services are shown directly beneath it.
        parent: the service it is shown under ("" for roots).
        section_start: the first row of a tree, or of the section without dependencies.
    """

    depth: int = 0
    behind: int = 0
    parent: str = ""
    section_start: bool = False

    @property
    def in_tree(self) -> bool:
        return self.depth > 0 or self.behind > 0


def arrange(ids: Sequence[str], parents_of: Callable[[str], Sequence[str]]) -> tuple[list[str], dict[str, TreeMark]]:
    """`ids` in their flat order → (grouped order, id → TreeMark).

    Siblings and trees keep the flat order among themselves, so the column the table is sorted by
    still sorts within each level. A parent not in `ids` (removed by a reload, or an id of another
    engine) is ignored: the child is shown as if it had none.
    """
    present = set(ids)
    children: dict[str, list[str]] = {}
    shown_under: dict[str, str] = {}
    for sid in ids:
        parent = next((p for p in parents_of(sid) if p in present and p != sid), "")
        if parent:
            shown_under[sid] = parent
            children.setdefault(parent, []).append(sid)
    order: list[str] = []
    marks: dict[str, TreeMark] = {}
    placed: set[str] = set()

    def place(root: str) -> None:
        stack = [(root, 0)]
        while stack:
            sid, depth = stack.pop()
            if sid in placed:
                continue  # a cycle (refused at load, but a stale snapshot could show one): once only
            placed.add(sid)
            order.append(sid)
            below = [c for c in children.get(sid, ()) if c not in placed]
            marks[sid] = TreeMark(depth=depth, behind=len(below), parent=shown_under.get(sid, "") if depth else "",
                                  section_start=depth == 0)
            stack.extend((c, depth + 1) for c in reversed(below))

    for sid in ids:
        if sid not in shown_under and sid in children:
            place(sid)
    first_single = True
    for sid in ids:
        if sid not in placed:  # no dependencies; or caught in a cycle, shown flat
            placed.add(sid)
            order.append(sid)
            marks[sid] = TreeMark(section_start=first_single)
            first_single = False
    return order, marks


def tree_name(mark: TreeMark, name: str) -> str:
    """The Name cell: "▾ Switch 3", "  ↳ PLC 1", or the name alone outside a tree."""
    if mark.depth:
        return f"{_INDENT * mark.depth}{CHILD_MARK} {name}"
    if mark.behind:
        return f"{PARENT_MARK} {name}"
    return name


def tree_tip(mark: TreeMark, name: str) -> str:
    """The Name cell's tooltip and accessible text: the grouping in words."""
    parts = [name]
    if mark.depth:
        parts.append(f"behind {mark.parent}")
    if mark.behind:
        parts.append(f"{mark.behind} device{'s' if mark.behind != 1 else ''} behind it")
    if not mark.in_tree:
        parts.append("no dependencies")
    return " — ".join(parts)


__all__ = ["CHILD_MARK", "PARENT_MARK", "TreeMark", "arrange", "tree_name", "tree_tip"]
