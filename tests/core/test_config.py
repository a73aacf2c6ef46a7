"""The config loader on good input: defaults, per-service overrides, normalisation, the shipped examples.

Broken input is covered by test_config_corpus.py (one file per mistake) and test_config_fuzz.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import (CommandRestart, Config, ConfigError, FaultDetectionConfig, HttpRestart, RecoveryConfig,
                         load_config, parse_config, parse_listen, summary)

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "resources" / "examples").glob("*.toml"))


def test_empty_file_is_all_defaults() -> None:
    config = parse_config("")
    assert config == Config()
    assert config.api.listen == "127.0.0.1:8765"
    assert config.recovery.storm_max_restarts == 5


def test_service_overrides_merge_key_by_key_over_the_global_section() -> None:
    config = parse_config("""
[fault_detection]
check_interval_seconds = 10
timeout_seconds = 2
[[services]]
id = "a"
endpoint = "http://h/"
[services.fault_detection]
timeout_seconds = 4
[[services]]
id = "b"
endpoint = "http://h2"
""")
    a, b = config.services
    assert a.fault_detection == FaultDetectionConfig(check_interval_seconds=10.0, timeout_seconds=4.0)
    assert b.fault_detection == config.fault_detection
    assert a.endpoint == "http://h"  # trailing slash dropped, so endpoint + health_path is one slash
    assert a.name == "a" and a.group == "default" and a.health_path == "/health"


def test_integers_are_accepted_where_numbers_are_and_become_floats() -> None:
    config = parse_config("[recovery]\nrestart_base_delay_seconds = 2\n")
    assert config.recovery.restart_base_delay_seconds == 2.0
    assert isinstance(config.recovery.restart_base_delay_seconds, float)


def test_restart_actions() -> None:
    config = parse_config("""
[[services]]
id = "a"
endpoint = "http://h"
restart = { http = { url = "http://h/restart", method = "put" } }
[[services]]
id = "b"
endpoint = "http://h"
restart = { command = ["/usr/bin/systemctl", "restart", "b; rm -rf /"] }
""")
    assert config.services[0].restart == HttpRestart(url="http://h/restart", method="PUT")
    assert config.services[1].restart == CommandRestart(argv=("/usr/bin/systemctl", "restart", "b; rm -rf /"))


def test_equal_base_and_max_delay_is_fine() -> None:
    assert parse_config("[recovery]\nrestart_base_delay_seconds = 5\nrestart_max_delay_seconds = 5\n"
                        ).recovery == RecoveryConfig(restart_base_delay_seconds=5.0, restart_max_delay_seconds=5.0)


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:8765", ("127.0.0.1", 8765)), ("[::1]:80", ("::1", 80)), ("0.0.0.0:0", ("0.0.0.0", 0)),
])
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["localhost", ":80", "h:", "h:65536", "h:-1", "h:²", "h:١٢"])
def test_parse_listen_refuses(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_listen(text)


def test_ids_are_whole_slugs() -> None:
    # "$" in the old pattern matched before a trailing newline; the id must be the whole string.
    for bad in ("web\n", "web\r", "-web", "web/1", "a" * 65):
        with pytest.raises(ConfigError, match=r"services\[0\]\.id"):
            parse_config(f'[[services]]\nid = {bad!r}\nendpoint = "http://h"\n'.replace("'", '"'))
    assert parse_config('[[services]]\nid = "r01-d001.x_y"\nendpoint = "http://h"\n').services[0].id == "r01-d001.x_y"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_shipped_examples_load(path: Path) -> None:
    config = load_config(path)
    assert config.services
    assert summary(config).startswith(f"{path}: OK, {len(config.services)} services")


def test_a_check_type_that_is_not_a_string_is_one_line() -> None:
    """Found by the fuzz test: `check = { type = [] }` raised TypeError (unhashable) instead."""
    import pytest as _pytest

    from core.config import ConfigError as _ConfigError
    from core.config import parse_config as _parse

    with _pytest.raises(_ConfigError, match=r"^x\.toml: services\[0\]\.check\.type: \[\] is not one of "):
        _parse('[[services]]\nid = "a"\nendpoint = "http://127.0.0.1:1"\ncheck = { type = [] }\n', label="x.toml")
