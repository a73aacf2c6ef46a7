"""A corpus of broken configs: every one is refused with exactly one line naming the file and the key.

Each file in bad_configs/ starts with `# expect: <text>`; the ConfigError message must contain that
text (which carries the key path for every error that has one). The same files through the real
`faultwatch --check-config` give exit code 2, one line on stderr and no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import ConfigError, load_config

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "bad_configs"
REPO = HERE.parent.parent
FILES = sorted(CORPUS.glob("*.toml"))


def _expectation(path: Path) -> str:
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8")
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: ...'"
    return first[len("# expect: "):]


def test_corpus_is_big_enough() -> None:
    assert len(FILES) >= 20


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_bad_config_is_one_line_naming_file_and_key(path: Path) -> None:
    expected = _expectation(path)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    # Exactly one line, whatever the file contains (str.splitlines also splits on \x0b, \u2028...).
    assert len(message.splitlines()) == 1, repr(message)
    assert message.startswith(path.name + ":") or message.startswith(str(path) + ":"), message
    assert expected in message, f"{path.name}: {message!r} lacks {expected!r}"
    # No Python internals leak into what a user reads.
    assert "Traceback" not in message and "Error(" not in message


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: no such file$"):
        load_config(tmp_path / "nope.toml")


def test_directory_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read") as info:
        load_config(tmp_path)
    assert len(str(info.value).splitlines()) == 1


def _cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FAULTWATCH_STATE_DIR": str(tmp_path / "state"),
           "FAULTWATCH_CONFIG_DIR": str(tmp_path / "cfg")}
    env.pop("FAULTWATCH_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("name", ["10_unknown_key_close_match.toml", "02_syntax_bare_word_value.toml",
                                  "45_unknown_quoted_key_with_newline.toml"])
def test_check_config_refuses_with_exit_2_and_one_line(name: str, tmp_path: Path) -> None:
    path = CORPUS / name
    proc = _cli("--check-config", str(path), tmp_path=tmp_path)
    assert proc.returncode == 2, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("faultwatch: ") and name in lines[0]
    assert _expectation(path) in lines[0]
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_check_config_accepts_a_good_file_with_a_summary(tmp_path: Path) -> None:
    good = tmp_path / "rack.toml"
    good.write_text(
        '[fault_detection]\ncheck_interval_seconds = 5\n\n'
        '[[services]]\nid = "plc-1"\nendpoint = "http://10.0.0.5"\ngroup = "line-1"\n'
        'restart = { command = ["/usr/bin/true"] }\n\n'
        '[[services]]\nid = "plc-2"\nendpoint = "https://10.0.0.6:8443"\ngroup = "line-1"\n'
        '[services.recovery]\nmax_restart_attempts = 1\n',
        encoding="utf-8")
    proc = _cli("--check-config", str(good), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "OK, 2 services in 1 groups" in proc.stdout
    assert "group line-1: 2 services" in proc.stdout
    assert "checks every 5s" in proc.stdout
    assert "per-service overrides: plc-2" in proc.stdout
