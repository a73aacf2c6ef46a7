"""The API bearer token: where it comes from, and keeping it out of anything we print.

The token guards the API's mutating routes. An operator who wants a fixed token (a fleet of consoles,
a CI job) sets it in the environment; everyone else gets a random one generated once and kept in a
0600 file in the state directory, so it survives restarts and scripts on the same account can read it.
"""

from __future__ import annotations

import os
import stat
from core.logs import API as log
from pathlib import Path
from secrets import token_urlsafe
from typing import Iterable


TOKEN_FILENAME = "api-token"
REDACTED = "***"
KEYRING_SERVICE = "faultwatch"
KEYRING_USER = "api-token"


def keyring_secret(service: str, user: str) -> str:
    """A secret from the OS keyring, if the optional `keyring` package and a backend exist ("" if not).

    Operators who keep secrets out of files and environments store them with
    `keyring set faultwatch api-token`; a machine without a keyring simply falls through.
    """
    try:
        import keyring  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return ""
    try:
        value = keyring.get_password(service, user)
    except Exception:  # noqa: BLE001 - no backend, locked keyring, D-Bus missing: all mean "not here"
        return ""
    return (value or "").strip()


def load_or_create_token(env_var: str, state_dir: Path) -> tuple[str, str]:
    """Return (token, where): where is "$ENV_VAR" or the token file's path, for messages.

    The environment wins when the variable is set and non-empty, then the OS keyring (service
    "faultwatch", user "api-token", if the optional keyring package is installed). Otherwise `state_dir/api-token` is
    read, or created 0600 with a fresh random token. A file readable by group or others is tightened
    to 0600 with a warning: the token is as good as a password for the control API.
    """
    from_env = os.environ.get(env_var, "").strip()
    if from_env:
        return from_env, f"${env_var}"
    from_keyring = keyring_secret(KEYRING_SERVICE, KEYRING_USER)
    if from_keyring:
        return from_keyring, f"OS keyring ({KEYRING_SERVICE}/{KEYRING_USER})"

    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = state_dir / TOKEN_FILENAME
    token = _read_existing(path)
    if token:
        return token, str(path)

    token = token_urlsafe(32)
    try:
        # O_EXCL: two instances starting at once must not both write; the loser reads the winner's.
        # The mode is given at creation so there is no moment where the file is world-readable.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        existing = _read_existing(path)
        if existing:
            return existing, str(path)
        # Present but empty (a crash between create and write): take it over.
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    log.info("API token created in %s", path)
    return token, str(path)


def _read_existing(path: Path) -> str:
    """The token in `path` ("" if missing or empty), tightening loose permissions first."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return ""
    # Windows reports synthetic permission bits (0o666) that chmod cannot change; only POSIX has them.
    if os.name == "posix" and mode & 0o077:
        os.chmod(path, 0o600)
        log.warning("API token file %s was accessible to group/others (mode %04o); tightened to 0600",
                    path, stat.S_IMODE(mode))
    return path.read_text(encoding="utf-8").strip()


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each non-empty secret replaced by "***"."""
    # Longest first, so a secret that contains another is not left half-visible.
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def console_token(url: str, token_file: str | None = None, env_var: str = "FAULTWATCH_TOKEN") -> tuple[str, str]:
    """The token a console presents to the engine at `url`: (token, where), ("", "") if none.

    In order: `--token-file PATH`; the OS keyring entry for that engine (service "faultwatch", user
    the URL: `keyring set faultwatch https://rack-3:8765`); the keyring's general API token; `$env_var`.
    A token file must not be readable by others (it is a password): a loose one is refused.
    """
    if token_file:
        path = Path(token_file)
        try:
            mode = path.stat().st_mode
            if os.name == "posix" and mode & 0o077:
                raise ValueError(f"--token-file {token_file}: readable by group/others (chmod 600 it)")
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"--token-file {token_file}: {exc.strerror or exc}") from None
        if not token:
            raise ValueError(f"--token-file {token_file}: the file is empty")
        return token, token_file
    for user in (url.rstrip("/"), KEYRING_USER):
        secret = keyring_secret(KEYRING_SERVICE, user)
        if secret:
            return secret, f"OS keyring ({KEYRING_SERVICE}/{user})"
    from_env = os.environ.get(env_var, "").strip()
    if from_env:
        return from_env, f"${env_var}"
    return "", ""
