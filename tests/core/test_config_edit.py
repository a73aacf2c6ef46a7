"""core/config_edit.py: style-preserving edits validated by the loader, atomic writes with backups,
conflict detection, and CSV/TOML import and export."""

from __future__ import annotations

import asyncio
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from core.config import ConfigError, load_config, parse_config
from core.options import opt
from core.config_edit import (KEEP_BACKUPS, ConfigEditError, ConfigFile, Conflict, Edit, backups, export_csv,
                              preview_csv, preview_toml, save)

COMMENTED = """\
# Rack A: bench devices.   (a header comment)

[fault_detection]
check_interval_seconds = 5   # fast, on purpose
timeout_seconds = 2

# ---- PLCs -------------------------------------------------------------

[[services]]
id = "plc-1"        # the first one
name = "PLC line 1"
# the management port, not the HMI one
endpoint = "http://127.0.0.1:9000"
tags = ["line-1", "plc"]

[services.recovery]
max_restart_attempts = 2   # it is slow to boot


# ---- pumps (two blank lines above, on purpose) -------------------------
[[services]]
id = "pump-1"
endpoint = "http://127.0.0.1:9001"
restart = { http = { method = "POST", url = "http://127.0.0.1:9001/restart" } }

# alerts after the services
[alerts]
sound = false   # the lab is quiet
"""


def write(tmp_path: Path, text: str = COMMENTED, name: str = "rack.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def comment_and_blank_lines(text: str) -> list[str]:
    """Every blank line and every line with a comment on it (whole-line or trailing)."""
    return [line for line in text.splitlines() if not line.strip() or "#" in line]


def appears_in_order(needles: list[str], hay: list[str]) -> bool:
    it = iter(hay)
    return all(any(n == h for h in it) for n in needles)


NEW = {"id": "plc-3", "name": "PLC line 3", "endpoint": "http://127.0.0.1:9003", "group": "rack-a",
       "fault_detection": {"timeout_seconds": 1.5}}


# ---------------------------------------------------------------- style preservation

def test_add_keeps_every_comment_and_blank_line_and_the_file_loads(tmp_path):
    cf = ConfigFile.read(write(tmp_path))
    text = cf.text_with_added([NEW])
    assert appears_in_order(comment_and_blank_lines(COMMENTED), text.splitlines())
    config = parse_config(text)
    assert [s.id for s in config.services] == ["plc-1", "pump-1", "plc-3"]
    assert config.service("plc-3").fault_detection.timeout_seconds == 1.5
    # the new entry goes after the last one, before the comment that introduces [alerts]
    assert text.index('id = "plc-3"') < text.index("# alerts after the services")
    # everything before the insertion point is byte for byte what it was
    cut = COMMENTED.index("\n# alerts after")
    assert text.startswith(COMMENTED[:cut])


def test_replace_changes_only_what_changed_and_keeps_comments_inside_the_entry(tmp_path):
    cf = ConfigFile.read(write(tmp_path))
    table = cf.service("plc-1")
    assert table is not None
    table["name"] = "PLC line one"
    table["recovery"] = {"max_restart_attempts": 4}
    text = cf.text_with_replaced("plc-1", table)
    expected = [line.replace("= 2   # it is slow", "= 4   # it is slow")
                for line in comment_and_blank_lines(COMMENTED)]
    assert appears_in_order(expected, text.splitlines())
    assert 'id = "plc-1"        # the first one' in text
    assert "max_restart_attempts = 4   # it is slow to boot" in text
    assert parse_config(text).service("plc-1").name == "PLC line one"
    before, after = COMMENTED.splitlines(), text.splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after) and len(changed) == 2


def test_remove_takes_the_entry_and_only_the_entry(tmp_path):
    cf = ConfigFile.read(write(tmp_path))
    text = cf.text_with_removed("plc-1")
    config = parse_config(text)
    assert [s.id for s in config.services] == ["pump-1"]
    assert "# ---- PLCs" in text and "# ---- pumps" in text and "# the lab is quiet" in text
    assert "# the first one" not in text and "max_restart_attempts" not in text
    assert "\n\n\n\n" not in text
    last = cf.text_with_removed("pump-1")
    assert [s.id for s in parse_config(last).services] == ["plc-1"]
    assert "# alerts after the services" in last


def test_an_empty_file_gets_its_first_device(tmp_path):
    cf = ConfigFile.read(write(tmp_path, "# nothing yet\n"))
    text = cf.text_with_added([NEW])
    assert text.startswith("# nothing yet\n\n[[services]]")
    assert parse_config(text).service("plc-3") is not None


def test_a_layout_the_editor_cannot_follow_is_refused_not_guessed(tmp_path):
    cf = ConfigFile.read(write(tmp_path, 'services = [ { id = "a", endpoint = "http://127.0.0.1:1" } ]\n'))
    with pytest.raises(ConfigEditError, match="cannot change safely"):
        cf.text_with_added([NEW])


# ---------------------------------------------------------------- validation (the loader's rules)

def test_every_wrong_field_is_named_with_the_loaders_message(tmp_path):
    cf = ConfigFile.read(write(tmp_path))
    bad = {"id": "plc-9", "endpoint": "ftp://x", "tags": ["a", 3], "check": {"type": "http", "method": "PUT"},
           "fault_detection": {"timeout_seconds": -1}, "heartbeat_interval_seconds": 0}
    v = cf.validate_entry(bad)
    assert not v.ok and v.service is None
    by_key = {e.key: e.message for e in v.errors}
    assert by_key["endpoint"] == "'ftp://x' is not an http(s) URL"
    assert by_key["tags[1]"].startswith("expected a string")
    assert "not one of GET | HEAD | POST" in by_key["check.method"]
    assert by_key["fault_detection.timeout_seconds"].startswith("must be greater than 0")
    assert by_key["heartbeat_interval_seconds"].startswith("must be greater than 0")
    # the same words as the loader gives for the same entry in a file
    with pytest.raises(ConfigError) as exc:
        parse_config('[[services]]\nid = "x"\nendpoint = "ftp://x"\n', label="f")
    assert exc.value.args[0] == "f: services[0].endpoint: 'ftp://x' is not an http(s) URL"


def test_missing_required_keys_and_duplicate_ids(tmp_path):
    cf = ConfigFile.read(write(tmp_path))
    v = cf.validate_entry({"name": "no id, no endpoint"})
    assert {e.key for e in v.errors} == {"id", "endpoint"}
    dup = cf.validate_entry({"id": "pump-1", "endpoint": "http://127.0.0.1:1"})
    assert [e.key for e in dup.errors] == ["id"] and "duplicate" in dup.errors[0].message
    same = cf.validate_entry({"id": "pump-1", "endpoint": "http://127.0.0.1:1"}, replacing="pump-1")
    assert same.ok and same.service is not None and same.service.id == "pump-1"


def test_rules_between_keys_use_the_files_global_sections(tmp_path):
    text = COMMENTED.replace("[alerts]", "[recovery]\nrestart_max_delay_seconds = 5\n\n[alerts]")
    cf = ConfigFile.read(write(tmp_path, text))
    v = cf.validate_entry({"id": "x", "endpoint": "http://127.0.0.1:1",
                           "recovery": {"restart_base_delay_seconds": 10}})
    assert v.errors[0].key == "recovery.restart_base_delay_seconds"
    assert "greater than restart_max_delay_seconds (5)" in v.errors[0].message


# ---------------------------------------------------------------- writing

def test_a_bad_edit_never_reaches_the_file(tmp_path):
    p = write(tmp_path)
    cf = ConfigFile.read(p)
    with pytest.raises(ConfigEditError, match=r"services\[2\]\.endpoint"):
        save(cf, Edit("add", tables=({"id": "x", "endpoint": "ftp://nope"},)))
    assert p.read_text(encoding="utf-8") == COMMENTED
    assert not backups(p)


def test_atomic_write_keeps_the_last_ten_versions(tmp_path):
    p = write(tmp_path)
    os.chmod(p, 0o640)
    cf = ConfigFile.read(p)
    versions = [COMMENTED]
    for i in range(KEEP_BACKUPS + 3):
        cf, _config = save(cf, Edit("add", tables=({"id": f"dev-{i}", "endpoint": f"http://127.0.0.1:{9100 + i}"},)))
        versions.append(p.read_text(encoding="utf-8"))
    kept = backups(p)
    assert len(kept) == KEEP_BACKUPS
    # newest backup = the version before the last write; the ten kept are the ten before the current one
    assert [b.read_text(encoding="utf-8") for b in kept] == versions[-KEEP_BACKUPS - 1:-1]
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    assert len(load_config(p).services) == 2 + KEEP_BACKUPS + 3


def test_a_file_changed_on_disk_since_it_was_read_is_a_conflict(tmp_path):
    p = write(tmp_path)
    cf = ConfigFile.read(p)
    external = COMMENTED.replace("sound = false", "sound = true")
    p.write_text(external, encoding="utf-8")
    edit = Edit("add", tables=(NEW,))
    with pytest.raises(Conflict):
        save(cf, edit)
    assert p.read_text(encoding="utf-8") == external
    # reload and redo: both edits survive
    redone, _ = save(ConfigFile.read(p), edit)
    text = p.read_text(encoding="utf-8")
    assert "sound = true" in text and 'id = "plc-3"' in text
    assert redone.digest != cf.digest


def test_overwrite_after_a_conflict_keeps_the_other_version_as_a_backup(tmp_path):
    p = write(tmp_path)
    cf = ConfigFile.read(p)
    external = COMMENTED + "\n# someone else's note\n"
    p.write_text(external, encoding="utf-8")
    save(cf, Edit("add", tables=(NEW,)), force=True)
    assert "someone else's note" not in p.read_text(encoding="utf-8")
    assert backups(p)[-1].read_text(encoding="utf-8") == external


def test_an_edit_that_no_longer_fits_the_reloaded_file_is_refused(tmp_path):
    p = write(tmp_path)
    cf = ConfigFile.read(p)
    edit = Edit("replace", ids=("pump-1",), tables=({"id": "pump-1", "endpoint": "http://127.0.0.1:2"},))
    p.write_text(ConfigFile.read(p).text_with_removed("pump-1"), encoding="utf-8")
    with pytest.raises(ConfigEditError, match="no service 'pump-1' any more"):
        save(ConfigFile.read(p), edit)
    assert save(cf, Edit("remove", ids=("plc-1",)), force=True)[1].services[0].id == "pump-1"


def test_edits_describe_themselves_for_the_journal():
    assert Edit("add", tables=({"id": "plc-3"},)).describe() == "added plc-3"
    assert Edit("remove", ids=("plc-3",)).describe() == "removed plc-3"
    assert Edit("replace", ids=("a",), tables=({"id": "b"},)).describe() == "changed a (now b)"
    many = Edit("add", tables=tuple({"id": f"d{i}"} for i in range(7)))
    assert many.describe() == "added 7 devices: d0, d1, d2, d3, d4 and 2 more" and many.target == ""


# ---------------------------------------------------------------- import / export

CSV_3_GOOD_2_BAD = """\
id,name,group,tags,check_type,endpoint,health_path,restart,heartbeat_interval_seconds
plc-10,PLC 10,rack-c,plc;line-3,http,http://127.0.0.1:9010,/status,POST http://127.0.0.1:9010/restart,
plc-11,PLC 11,rack-c,,,http://127.0.0.1:9011,,,15
pump-1,Duplicate,rack-c,,,http://127.0.0.1:9012,,,
plc-12,PLC 12,rack-c,,,ftp://127.0.0.1:9012,,,
plc-13,PLC 13,rack-c,,http,http://127.0.0.1:9013,,"{ command = [""/bin/true""] }",
"""


def test_csv_with_three_good_and_two_bad_rows_adds_three_and_reports_two(tmp_path):
    p = write(tmp_path)
    cf = ConfigFile.read(p)
    preview = preview_csv(cf, CSV_3_GOOD_2_BAD)
    assert not preview.problem
    assert [r.service_id for r in preview.good] == ["plc-10", "plc-11", "plc-13"]
    bad = {r.service_id: r.errors for r in preview.bad}
    assert bad["pump-1"] == ("id: duplicate id 'pump-1' (another device has it)",)
    assert bad["plc-12"] == ("endpoint: 'ftp://127.0.0.1:9012' is not an http(s) URL",)
    assert [r.line for r in preview.bad] == [4, 5]
    save(cf, preview.edit())
    config = load_config(p)
    assert [s.id for s in config.services] == ["plc-1", "pump-1", "plc-10", "plc-11", "plc-13"]
    plc10 = config.service("plc-10")
    assert plc10.tags == ("plc", "line-3") and plc10.health_path == "/status"
    assert plc10.restart is not None and config.service("plc-11").heartbeat_interval_seconds == 15


def test_csv_problems_are_one_line_each(tmp_path):
    cf = ConfigFile.read(write(tmp_path))
    assert "unknown column(s): colour" in preview_csv(cf, "id,colour\na,red\n").problem
    assert preview_csv(cf, "").problem
    rows = preview_csv(cf, 'id,endpoint,check\na,http://127.0.0.1:1,"{ broken"\n').rows
    assert rows[0].errors[0].startswith("check: not a TOML value")
    dup = preview_csv(cf, "id,endpoint\nz,http://127.0.0.1:1\nz,http://127.0.0.1:2\n")
    assert [r.ok for r in dup.rows] == [True, False] and "earlier row" in dup.rows[1].errors[0]


FLEET = """\
[fault_detection]
timeout_seconds = 2

[[services]]
id = "plc-1"
name = "PLC, line 1"
group = "rack-a"
tags = ["plc", "line 1"]
endpoint = "http://127.0.0.1:9000"
health_path = "/status"
backup_endpoints = ["http://127.0.0.1:9100", "http://127.0.0.1:9101"]
tls_verify = false
restart = { http = { method = "PUT", url = "http://127.0.0.1:9000/restart" } }
heartbeat_interval_seconds = 7.5
check = { type = "http", method = "HEAD", expect_status = [200, 204], json = { path = "status.ok", equals = true } }

[services.fault_detection]
max_failures = 5

[services.circuit_breaker]
window = "count"

[[services]]
id = "relay"
endpoint = "http://127.0.0.1:9001"
restart = { command = ["/usr/local/bin/relay-cycle", "--port", "3", "a b"] }
"""


def test_export_then_import_round_trips(tmp_path):
    src = ConfigFile.read(write(tmp_path, FLEET, "fleet.toml"))
    csv_text = export_csv(src)
    assert csv_text.splitlines()[0].startswith("id,name,group,tags,check_type,endpoint")
    target = write(tmp_path, "[fault_detection]\ntimeout_seconds = 2\n", "empty.toml")
    preview = preview_csv(ConfigFile.read(target), csv_text)
    assert [r.ok for r in preview.rows] == [True, True], [r.errors for r in preview.rows]
    save(ConfigFile.read(target), preview.edit())
    assert load_config(target).services == parse_config(FLEET).services
    only = export_csv(src, ["relay"])
    assert len(only.splitlines()) == 2 and "relay" in only


def test_toml_fragment_import(tmp_path):
    cf = ConfigFile.read(write(tmp_path))
    fragment = ('[[services]]\nid = "a"\nendpoint = "http://127.0.0.1:1"\n\n'
                '[[services]]\nid = "b"\nendpoint = "http://127.0.0.1:2"\ncolour = "red"\n')
    preview = preview_toml(cf, fragment)
    assert [r.ok for r in preview.rows] == [True, False]
    assert preview.rows[1].errors == ("colour: unknown key",)
    assert "only [[services]]" in preview_toml(cf, "[alerts]\nsound = true\n").problem
    assert "TOML syntax error" in preview_toml(cf, "[[services]\n").problem


# ---------------------------------------------------------------- the engine side

def test_reload_after_edit_journals_a_config_edit_action(tmp_path):
    from core.assembly import open_engine
    from core.config_edit import reload_after_edit
    from core.events import ActionEvent

    p = write(tmp_path, COMMENTED.replace('"http://127.0.0.1:9000"', '"http://127.0.0.1:9"'))

    async def go() -> list[ActionEvent]:
        engine = open_engine(load_config(p), state_dir=str(tmp_path / "state"))
        await engine.start()
        try:
            cf = ConfigFile.read(p)
            save(cf, Edit("add", tables=(NEW,)))
            result = await reload_after_edit(engine, str(p), "gui", "added plc-3", "plc-3")
            assert result.ok and "plc-3" in engine.snapshots()
            return [e for e in await engine.journal_events("plc-3") if isinstance(e, ActionEvent)]
        finally:
            await engine.stop()

    actions = asyncio.run(go())
    assert [(a.command, a.origin, a.detail) for a in actions] == [("config_edit", "gui", "added plc-3")]


# ---------------------------------------------------------------- a check type with host and port

@dataclass(frozen=True, slots=True)
class PortCheck:
    TYPE: ClassVar[str] = "port"
    host: str = opt("", "Host name or address.", required=True)
    port: int = opt(0, "TCP port.", min=1, max=65535, required=True)
    send: str = opt("", "Bytes to send first.")

    def target(self) -> str:
        return f"{self.host}:{self.port}"


@pytest.fixture
def port_type(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.config
    from core.checks import registry
    from core.checks.base import CheckType

    types_ = {**registry.check_types(), "port": CheckType("port", PortCheck, lambda s, c, v: None, "A TCP port.")}
    monkeypatch.setattr(core.config, "check_types", lambda: types_)
    monkeypatch.setattr(registry, "check_types", lambda: types_)


def test_csv_host_and_port_columns_feed_the_checks_own_keys(tmp_path, port_type):
    p = write(tmp_path)
    cf = ConfigFile.read(p)
    text = ("id,check_type,host,port,check\n"
            'relay-1,port,127.0.0.1,502,"{ send = ""hi"" }"\n'
            "relay-2,port,127.0.0.1,70000,\n"
            "relay-3,port,,502,\n")
    preview = preview_csv(cf, text)
    assert [r.ok for r in preview.rows] == [True, False, False]
    assert preview.rows[1].errors == ("port: must be at most 65535, got 70000",)
    assert preview.rows[2].errors == ("host: is required",)
    save(cf, preview.edit())
    config = load_config(p)
    assert config.service("relay-1").check == PortCheck(host="127.0.0.1", port=502, send="hi")
    assert config.service("relay-1").endpoint == ""  # not needed for a port check
    row = export_csv(ConfigFile.read(p), ["relay-1"]).splitlines()[1]
    assert row.startswith("relay-1,,,,port,,,127.0.0.1,502,")
    again = preview_csv(ConfigFile.read(write(tmp_path, "", "empty.toml")), export_csv(ConfigFile.read(p)))
    assert all(r.ok for r in again.rows)
    assert [r.table.get("check") for r in again.rows if r.service_id == "relay-1"] == [
        {"type": "port", "host": "127.0.0.1", "port": 502, "send": "hi"}]


def test_dependencies_survive_csv_export_and_import(tmp_path):
    fleet = ('[[services]]\nid = "switch-3"\nendpoint = "http://127.0.0.1:9000"\n\n'
             '[[services]]\nid = "plc-1"\nendpoint = "http://127.0.0.1:9001"\ndepends_on = ["switch-3"]\n')
    csv_text = export_csv(ConfigFile.read(write(tmp_path, fleet, "line.toml")))
    assert csv_text.splitlines()[0].endswith(",depends_on")
    target = write(tmp_path, "", "empty.toml")
    preview = preview_csv(ConfigFile.read(target), csv_text)  # the parent is an earlier row
    assert [r.ok for r in preview.rows] == [True, True], [r.errors for r in preview.rows]
    save(ConfigFile.read(target), preview.edit())
    assert [s.depends_on for s in load_config(target).services] == [(), ("switch-3",)]


def test_an_entry_may_depend_on_devices_of_the_file_but_not_on_unknown_ones(tmp_path):
    fleet = '[[services]]\nid = "switch-3"\nendpoint = "http://127.0.0.1:9000"\n'
    cf = ConfigFile.read(write(tmp_path, fleet, "line.toml"))
    ok = cf.validate_entry({"id": "plc-1", "endpoint": "http://127.0.0.1:9001", "depends_on": ["switch-3"]})
    assert ok.errors == () and ok.service is not None and ok.service.depends_on == ("switch-3",)
    bad = cf.validate_entry({"id": "plc-1", "endpoint": "http://127.0.0.1:9001", "depends_on": ["switch-4"]})
    assert [(e.key, e.message) for e in bad.errors] == [
        ("depends_on[0]", "unknown service 'switch-4'")]
