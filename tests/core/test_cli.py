"""`faultwatch` argument handling that needs no engine: --check-config, --version, bad configs.

In-process through core.cli.main (fast); test_config_corpus.py runs the same as a real subprocess.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from core.cli import main

CORPUS = Path(__file__).resolve().parent / "bad_configs"


def test_check_config_good(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ok.toml"
    path.write_text('[[services]]\nid = "a"\nendpoint = "http://h"\n', encoding="utf-8")
    assert main(["--check-config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{path}: OK, 1 services in 1 groups") and err == ""


@pytest.mark.parametrize("name", ["01_syntax_unclosed_table.toml", "12_base_delay_above_max.toml",
                                  "44_endpoint_with_newline.toml", "50_not_utf8.toml"])
def test_check_config_bad_is_exit_2_and_one_line(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check-config", str(CORPUS / name)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("faultwatch: ") and name in err


def test_check_config_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check-config", str(tmp_path / "absent.toml")]) == 2
    assert capsys.readouterr().err.strip() == f"faultwatch: {tmp_path / 'absent.toml'}: no such file"


def test_headless_with_a_bad_config_is_exit_2_before_anything_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAULTWATCH_STATE_DIR", str(tmp_path / "state"))
    assert main(["--headless", "--config", str(CORPUS / "13_ftp_endpoint.toml"), "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert "services[0].endpoint: 'ftp://10.0.0.5' is not an http(s) URL" in err
    assert "Traceback" not in err
    assert not (tmp_path / "state" / "faultwatch.db").exists(), "no journal for a config that was refused"


def test_check_config_does_not_import_qt(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text("", encoding="utf-8")
    before = set(sys.modules)
    assert main(["--check-config", str(path)]) == 0
    assert not any(m.startswith(("PySide6", "gui")) for m in set(sys.modules) - before)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("faultwatch ")


def test_debug_names_categories_and_refuses_unknown_ones(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    assert main(["--headless", "--demo", "--debug", "probe,breker"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown log categories probe, breker" in err and "check" in err
    from core.logs import enable_debug
    assert enable_debug("check,breaker") == ["check", "breaker"]
    assert logging.getLogger("core.check").level == logging.DEBUG
    assert logging.getLogger("core.breaker").isEnabledFor(logging.DEBUG)


def test_without_a_window_launcher_the_console_is_one_line_and_exit_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert main(["--demo"], window=None) == 2
    assert "use --headless" in capsys.readouterr().err
