"""`faultwatch --attach` argument handling and the exposed-listener refusal as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from core.token import console_token

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("args, message", [
    (["--attach", "ftp://rack:21"], "--attach: 'ftp://rack:21' is not an http(s):// engine URL"),
    (["--attach", "https://rack:99999"], "--attach: 'https://rack:99999' has a bad port"),
    (["--attach", "https://rack:8765", "--headless"], "--attach opens a console"),
])
def test_bad_attach_arguments_are_one_line_and_exit_2(args: list[str], message: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"faultwatch: {message}")


def test_attach_without_any_token_is_refused(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("FAULTWATCH_TOKEN", raising=False)
    monkeypatch.setattr("core.token.keyring_secret", lambda service, user: "")
    assert main(["--attach", "https://127.0.0.1:8765"]) == 2
    assert "no token for https://127.0.0.1:8765" in capsys.readouterr().err


def test_console_token_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keyring = {("faultwatch", "https://rack-a:8765"): "from-keyring-a"}
    monkeypatch.setattr("core.token.keyring_secret", lambda service, user: keyring.get((service, user), ""))
    monkeypatch.setenv("FAULTWATCH_TOKEN", "from-env")
    path = tmp_path / "token"
    path.write_text("from-file\n", encoding="utf-8")
    path.chmod(0o600)
    assert console_token("https://rack-a:8765", str(path)) == ("from-file", str(path))
    assert console_token("https://rack-a:8765/")[0] == "from-keyring-a"
    assert console_token("https://rack-b:8765") == ("from-env", "$FAULTWATCH_TOKEN")
    path.chmod(0o644)
    with pytest.raises(ValueError, match="readable by group/others"):
        console_token("https://rack-a:8765", str(path))
    with pytest.raises(ValueError, match="no such file|No such file"):
        console_token("https://rack-a:8765", str(tmp_path / "absent"))


@pytest.mark.slow
def test_headless_engine_refuses_an_exposed_listener_without_tls(tmp_path: Path) -> None:
    config = tmp_path / "exposed.toml"
    config.write_text('[api]\nlisten = "0.0.0.0:0"\n[[services]]\nid = "a"\nendpoint = "http://127.0.0.1:9"\n',
                      encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAULTWATCH_")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-m", "core.cli", "--headless", "--config", str(config), "--state-dir",
                           str(tmp_path / "state"), "--duration", "5"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [(
        "faultwatch: [api] listen 0.0.0.0:0 is not loopback: set [api] tls_cert and tls_key "
        "(or allow_insecure = true to send tokens in clear text)")]
    assert not (tmp_path / "state" / "faultwatch.db").exists()  # refused before the engine started
