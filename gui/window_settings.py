"""What the console remembers between runs, and under which QSettings key: window geometry and state,
splitter positions, the table's column layout, the theme, grouping by rack, the recent config files
and the remembered engine URLs. Every key the GUI stores is named here and nowhere else.

Values are read defensively: a settings file written by another version (or edited by hand) can hold
anything, and a wrong type falls back to the default instead of breaking the window.
"""

from __future__ import annotations

from typing import Mapping

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QHeaderView, QMainWindow, QSplitter

from gui.service_model import Column

GEOMETRY_KEY = "window/geometry"
STATE_KEY = "window/state"
# Splitters by the role they play in the window (the key stays what earlier versions wrote).
SPLITTER_KEYS = {"main": "window/split_main", "right": "window/split_right", "vertical": "window/split_vertical"}
# Qt restores column widths and order by position: a layout saved with another set of columns would
# give the Check column the old Status width and so on, so each column set keeps its own key.
HEADER_KEY = f"table/header/{len(Column)}"
THEME_KEY = "view/theme"
GROUP_BY_RACK_KEY = "view/group_by_rack"
RECENT_CONFIGS_KEY = "files/recent"
ENGINES_KEY = "engines/urls"

MAX_RECENT = 8
MAX_ENGINES = 12


def read_bytes(settings: QSettings, key: str) -> QByteArray | None:
    """A saved Qt state blob, or None when absent, empty or not bytes."""
    value = settings.value(key)
    if isinstance(value, QByteArray) and not value.isEmpty():
        return value
    if isinstance(value, (bytes, bytearray)) and value:
        return QByteArray(bytes(value))
    return None


def read_bool(settings: QSettings, key: str, default: bool) -> bool:
    value = settings.value(key, default)
    if isinstance(value, str):  # INI files give back "true"/"false"
        return value.strip().lower() not in ("false", "0")
    return bool(value) if isinstance(value, (bool, int)) else default


def read_strings(settings: QSettings, key: str) -> list[str]:
    """A stored list of strings (a one-element list comes back from INI files as a bare string)."""
    value = settings.value(key, [])
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []


def push_front(settings: QSettings, key: str, item: str, limit: int) -> list[str]:
    """Put `item` first in the list at `key` (once), keep at most `limit`; returns the new list."""
    items = ([item] + [i for i in read_strings(settings, key) if i != item])[:limit]
    settings.setValue(key, items)
    return items


def recent_configs(settings: QSettings) -> list[str]:
    """Config files opened from the console, most recent first."""
    return read_strings(settings, RECENT_CONFIGS_KEY)


def remember_config(settings: QSettings, path: str) -> list[str]:
    return push_front(settings, RECENT_CONFIGS_KEY, path, MAX_RECENT)


def remembered_engines(settings: QSettings) -> list[str]:
    """Engine URLs attached before, most recent first (URLs only: tokens never go into settings)."""
    return read_strings(settings, ENGINES_KEY)


def remember_engine(settings: QSettings, url: str) -> list[str]:
    return push_front(settings, ENGINES_KEY, url, MAX_ENGINES)


def theme_name(settings: QSettings, default: str) -> str:
    value = settings.value(THEME_KEY, default)
    return value if isinstance(value, str) and value else default


class WindowLayout:
    """Saves and restores the main window's layout: geometry, dock/toolbar state, splitters, the
    table's columns, the theme name and the group-by-rack toggle.

    Attributes:
        settings: the QSettings written to.
        window: the main window (its geometry and state).
        splitters: role ("main", "right", "vertical") → splitter.
        header: the service table's horizontal header.
        group_by_rack: the checkable "Group by rack" action.
    """

    def __init__(self, settings: QSettings, window: QMainWindow, splitters: Mapping[str, QSplitter],
                 header: QHeaderView, group_by_rack: QAction) -> None:
        unknown = set(splitters) - set(SPLITTER_KEYS)
        if unknown:
            raise ValueError(f"no settings key for splitter(s) {sorted(unknown)}")
        self.settings = settings
        self.window = window
        self.splitters = dict(splitters)
        self.header = header
        self.group_by_rack = group_by_rack

    def save(self, theme: str, *, geometry: bool = True) -> None:
        """Write the layout; `geometry=False` keeps the saved geometry (wall mode's full screen is
        not the size the window should come back with)."""
        s = self.settings
        if geometry:
            s.setValue(GEOMETRY_KEY, self.window.saveGeometry())
        s.setValue(STATE_KEY, self.window.saveState())
        for role, splitter in self.splitters.items():
            s.setValue(SPLITTER_KEYS[role], splitter.saveState())
        s.setValue(HEADER_KEY, self.header.saveState())
        s.setValue(THEME_KEY, theme)
        s.setValue(GROUP_BY_RACK_KEY, self.group_by_rack.isChecked())
        s.sync()

    def restore(self) -> None:
        """Apply what was saved; anything missing or unreadable keeps the window's first-run layout."""
        s = self.settings
        if (geometry := read_bytes(s, GEOMETRY_KEY)) is not None:
            self.window.restoreGeometry(geometry)
        if (state := read_bytes(s, STATE_KEY)) is not None:
            self.window.restoreState(state)
        for role, splitter in self.splitters.items():
            if (data := read_bytes(s, SPLITTER_KEYS[role])) is not None:
                splitter.restoreState(data)
        if (header := read_bytes(s, HEADER_KEY)) is not None:
            self.header.restoreState(header)
        self.group_by_rack.setChecked(read_bool(s, GROUP_BY_RACK_KEY, True))
