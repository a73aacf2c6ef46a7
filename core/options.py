"""Options: how one setting is declared (default, one-line doc, range), shared by every settings class.

It sits apart from core/config.py so a check type's settings (core/checks/) can declare their keys the
same way without importing the loader that imports them.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any, Callable


def opt(default: Any, doc: str, *, min: float | None = None, max: float | None = None,
        positive: bool = False, factory: Callable[[], Any] | None = None, required: bool = False,
        secret_env: bool = False) -> Any:
    """Declare one setting: default, one-line doc, and its range.

    `required` keys must be given in the file (the default only types the field); `secret_env` marks a
    key that names an environment variable holding a secret (documented as such, never the secret).
    """
    meta = {"doc": doc, "min": min, "max": max, "positive": positive, "required": required,
            "secret_env": secret_env}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)
