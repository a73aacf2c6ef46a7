"""Where Faultwatch keeps things on disk: state (journal, token), configuration, bundled resources.

Every location can be overridden from the environment, so tests, portable installs and several
instances on one machine never have to share the user's real directories.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "faultwatch"
JOURNAL_FILENAME = "faultwatch.db"
CONFIG_FILENAME = "faultwatch.toml"

STATE_DIR_ENV = "FAULTWATCH_STATE_DIR"
CONFIG_DIR_ENV = "FAULTWATCH_CONFIG_DIR"
CONFIG_FILE_ENV = "FAULTWATCH_CONFIG"


def state_dir(override: str | None = None) -> Path:
    """The state directory (journal, API token), created if missing.

    Precedence: `override` (a command-line option), then $FAULTWATCH_STATE_DIR, then the platform's
    user state directory. A new directory is created 0700 because the journal and the token file
    can hold whatever services report, including secrets; an existing one is left as the user set it.
    """
    chosen = override or os.environ.get(STATE_DIR_ENV) or ""
    # appauthor=False: otherwise Windows nests the app name twice (faultwatch\faultwatch).
    path = Path(chosen).expanduser() if chosen else Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    """The configuration directory ($FAULTWATCH_CONFIG_DIR, else the platform's); not created."""
    chosen = os.environ.get(CONFIG_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def default_config_path() -> Path:
    """$FAULTWATCH_CONFIG, else faultwatch.toml in `config_dir()`."""
    chosen = os.environ.get(CONFIG_FILE_ENV)
    if chosen:
        return Path(chosen).expanduser()
    return config_dir() / CONFIG_FILENAME


def journal_path(configured: str = "", state_override: str | None = None) -> Path:
    """The journal file: `[journal] path` if set, else faultwatch.db in `state_dir()`."""
    if configured:
        return Path(configured).expanduser()
    return state_dir(state_override) / JOURNAL_FILENAME


def resource_path(*parts: str) -> Path:
    """A file under resources/: at the repo root from source, inside the bundle when frozen.

    PyInstaller unpacks (one-file) or places (one-folder) data under sys._MEIPASS, and __file__ no
    longer points at the source tree there, so the frozen case must be asked for explicitly.
    """
    meipass = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and meipass:
        base = Path(meipass) / "resources"
    else:
        base = Path(__file__).resolve().parent.parent / "resources"
    return base.joinpath(*parts)
