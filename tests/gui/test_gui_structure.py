"""The shape of gui/: no module reaches into another object's private members. A widget or controller
offers public methods and signals; `other._x`, `getattr(other, "_x")` and `from gui.m import _x` are how
a window ends up depending on another widget's insides (the private-slot calls this test replaced).

Access on `self` and `cls` is the object's own business and allowed. ALLOWED lists the exceptions, each
with its reason; it is empty, and an entry needs a reason a reviewer accepts.
"""

from __future__ import annotations

import ast
from pathlib import Path

GUI = Path(__file__).resolve().parents[2] / "gui"

# (file name, the expression as ast.unparse writes it) → why it is allowed.
ALLOWED: dict[tuple[str, str], str] = {}

OWN = ("self", "cls")
REFLECTION = ("getattr", "setattr", "hasattr", "delattr")


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def is_own(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in OWN


def private_uses(source: str, filename: str) -> list[tuple[int, str]]:
    """(line, expression) for every use of another object's or module's private name."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Attribute) and is_private(node.attr) and not is_own(node.value):
            found.append((node.lineno, ast.unparse(node)))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in REFLECTION
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
              and isinstance(node.args[1].value, str) and is_private(node.args[1].value)
              and not is_own(node.args[0])):
            found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if is_private(alias.name):
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
    return found


def test_the_check_finds_what_it_is_meant_to_find() -> None:
    source = '''
from gui.wall import _helper
class W:
    def f(self, other):
        self._mine()
        cls_thing = type(self)
        other._theirs()
        self.table._x = 1
        getattr(other, "_slot")()
        setattr(self, "_own", 1)
        other.__class__
        other.public()
'''
    assert sorted(expr for _line, expr in private_uses(source, "x.py")) == sorted([
        "from gui.wall import _helper", "other._theirs", "self.table._x", "getattr(other, '_slot')"])


def test_no_private_access_across_objects_in_gui() -> None:
    offenders = []
    for path in sorted(GUI.glob("*.py")):
        for line, expr in private_uses(path.read_text(encoding="utf-8"), str(path)):
            if (path.name, expr) not in ALLOWED:
                offenders.append(f"gui/{path.name}:{line}: {expr}")
    assert offenders == [], "use a public method or signal instead:\n" + "\n".join(offenders)


def test_every_allowed_entry_is_still_needed_and_says_why() -> None:
    used = set()
    for path in sorted(GUI.glob("*.py")):
        used.update((path.name, expr) for _line, expr in private_uses(path.read_text(encoding="utf-8"), str(path)))
    for entry, why in ALLOWED.items():
        assert entry in used, f"{entry} is allowed but no longer used: drop it"
        assert len(why.split()) >= 4, f"{entry}: say why it is allowed"
