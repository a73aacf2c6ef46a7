"""Config of the industrial check types and protocol restart actions: the issue's examples parse, mistakes
are one line with the key path, and docs/config.md documents every key."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.checks.modbus import ModbusCheck, ModbusWrite
from core.checks.mqtt import MqttCheck
from core.checks.opcua import OpcuaCheck
from core.checks.snmp import SnmpCheck, SnmpSet
from core.config import ConfigError, ProtocolRestart, parse_config, render_docs

DOCS = Path(__file__).resolve().parents[3] / "docs" / "config.md"


def one(check: str = "", restart: str = "") -> object:
    text = '[[services]]\nid = "d"\n' + (f"check = {check}\n" if check else 'endpoint = "http://h"\n') + (
        f"restart = {restart}\n" if restart else "")
    return parse_config(text, label="f.toml").services[0]


def error(check: str = "", restart: str = "") -> str:
    with pytest.raises(ConfigError) as info:
        one(check, restart)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_the_issues_examples_parse() -> None:
    a = one('{ type = "modbus", host = "10.1.2.4", port = 502, unit = 1, table = "holding", address = 100, '
            'min = 0, max = 80 }')
    assert a.check == ModbusCheck(min=0.0, max=80.0, host="10.1.2.4", port=502, unit=1, table="holding",  # type: ignore[attr-defined]
                                  address=100)
    assert a.target == "modbus 10.1.2.4:502 unit 1 holding 100"  # type: ignore[attr-defined]
    b = one('{ type = "modbus", host = "10.1.2.4", unit = 1, table = "input", address = 7, must_change = true }')
    assert b.check.must_change and b.check.table == "input"  # type: ignore[attr-defined]
    c = one('{ type = "snmp", host = "10.1.2.5", port = 161, community_env = "RACK_SNMP", '
            'oid = "1.3.6.1.2.1.1.3.0" }')
    assert c.check == SnmpCheck(host="10.1.2.5", port=161, community_env="RACK_SNMP",  # type: ignore[attr-defined]
                                oid="1.3.6.1.2.1.1.3.0")
    d = one('{ type = "mqtt", broker = "mqtt://10.1.2.6:1883", topic = "lab/plc1/status", max_age_seconds = 30, '
            'equals = "online" }')
    assert d.check == MqttCheck(equals="online", broker="mqtt://10.1.2.6:1883",  # type: ignore[attr-defined]
                                topic="lab/plc1/status", max_age_seconds=30.0)
    e = one('{ type = "opcua", url = "opc.tcp://10.1.2.7:4840", node = "i=2259", equals = 0 }')
    assert e.check == OpcuaCheck(equals=0.0, url="opc.tcp://10.1.2.7:4840", node="i=2259")  # type: ignore[attr-defined]
    f = one('{ type = "opcua", url = "opc.tcp://h:4840", node = "i=2259" }',
            '{ snmp_set = { host = "10.1.2.8", oid = "1.3.6.1.4.1.318.1.1.4.4.2.1.3.5", type = "i", value = 3, '
            'community_env = "PDU_RW" } }')
    assert f.restart == ProtocolRestart("snmp_set", SnmpSet(  # type: ignore[attr-defined]
        host="10.1.2.8", oid="1.3.6.1.4.1.318.1.1.4.4.2.1.3.5", type="i", value=3, community_env="PDU_RW"))
    g = one('{ type = "opcua", url = "opc.tcp://h:4840", node = "i=2259" }',
            '{ modbus_write = { host = "10.1.2.4", unit = 1, table = "coil", address = 0, value = true } }')
    assert g.restart == ProtocolRestart("modbus_write", ModbusWrite(  # type: ignore[attr-defined]
        host="10.1.2.4", unit=1, table="coil", address=0, value=True))


@pytest.mark.parametrize("check, restart, expected", [
    ('{ type = "modbus", host = "h", adress = 1 }', "",
     "f.toml: services[0].check.adress: unknown key (did you mean 'address'?)"),
    ('{ type = "modbus", host = "h" }', "", "f.toml: services[0].check.address: is required"),
    ('{ type = "modbus", host = "h", address = 70000 }', "",
     "f.toml: services[0].check.address: must be at most 65535, got 70000"),
    ('{ type = "modbus", host = "h", address = 1, table = "holdings" }', "",
     "f.toml: services[0].check.table: 'holdings' is not one of holding | input | coil | discrete"),
    ('{ type = "modbus", host = "h", address = 1, unit = "1" }', "",
     "f.toml: services[0].check.unit: expected an integer, got a string '1'"),
    ('{ type = "modbus", host = "h", address = 1, table = "coil", max = 3 }', "",
     "f.toml: services[0].check.max: a coil is true or false; use equals"),
    ('{ type = "modbus", host = "h", address = 65535, data_type = "float32" }', "",
     "f.toml: services[0].check.address: 65535 + 2 registers runs past 65535"),
    ('{ type = "snmp", host = "h", oid = "sysUpTime.0" }', "",
     "f.toml: services[0].check.oid: 'sysUpTime.0' is not a numeric OID (like 1.3.6.1.2.1.1.3.0)"),
    ('{ type = "snmp", host = "h", community = "public" }', "",
     "f.toml: services[0].check.community: unknown key (did you mean 'community_env'?)"),
    ('{ type = "snmp", host = "" }', "", "f.toml: services[0].check.host: must not be empty"),
    ('{ type = "mqtt", broker = "tcp://h:1883", topic = "t" }', "",
     "f.toml: services[0].check.broker: 'tcp://h:1883' is not mqtt://host[:port] or mqtts://host[:port]"),
    ('{ type = "mqtt", broker = "mqtt://u:p@h", topic = "t" }', "",
     "f.toml: services[0].check.broker: 'mqtt://u:p@h': give only scheme, host and port (credentials go in "
     "username / password_env)"),
    ('{ type = "mqtt", broker = "mqtt://h", topic = "a/#/b" }', "",
     "f.toml: services[0].check.topic: 'a/#/b': '#' must be a whole last level"),
    ('{ type = "mqtt", broker = "mqtt://h", topic = "t", max_age_seconds = 0 }', "",
     "f.toml: services[0].check.max_age_seconds: must be greater than 0, got 0.0"),
    ('{ type = "mqtt", broker = "mqtt://h" }', "", "f.toml: services[0].check.topic: is required"),
    ('{ type = "opcua", url = "http://h:4840", node = "i=1" }', "",
     "f.toml: services[0].check.url: 'http://h:4840' is not opc.tcp://host[:port][/path]"),
    ('{ type = "opcua", url = "opc.tcp://h:4840", node = "2259" }', "",
     "f.toml: services[0].check.node: '2259' is not a node id (like i=2259 or ns=2;s=Line1.Temperature)"),
    ('{ type = "modbuss", host = "h" }', "",
     "f.toml: services[0].check.type: 'modbuss' is not one of "),
    ('{ type = ["modbus"], host = "h" }', "",
     "f.toml: services[0].check.type: ['modbus'] is not one of "),
    ("", '{ modbus_write = { host = "h", address = 0, value = 7 } }',
     "f.toml: services[0].restart.modbus_write.value: a coil takes true or false, got 7"),
    ("", '{ modbus_write = { host = "h", table = "holding", address = 0, value = true } }',
     "f.toml: services[0].restart.modbus_write.value: a holding register takes an integer 0..65535, got True"),
    ("", '{ modbus_write = { host = "h", address = 0 } }',
     "f.toml: services[0].restart.modbus_write.value: is required"),
    ("", '{ snmp_set = { host = "h", oid = "1.3.6.1.4.1.1.0", value = "3", community_env = "X" } }',
     "f.toml: services[0].restart.snmp_set.value: type 'i' takes an integer, got '3'"),
    ("", '{ snmp_set = { host = "h", oid = "1.3.6.1.4.1.1.0", value = 3 } }',
     "f.toml: services[0].restart.snmp_set.community_env: is required"),
    ("", '{ snmp_set = { host = "h", oid = "1.3.6.1.4.1.1.0", value = 3, community = "private" } }',
     "f.toml: services[0].restart.snmp_set.community: unknown key (did you mean 'community_env'?)"),
    ("", '{ snmp_sett = { host = "h" } }',
     "f.toml: services[0].restart.snmp_sett: unknown key (did you mean 'snmp_set'?)"),
])
def test_mistakes_are_one_line_with_the_key_path(check: str, restart: str, expected: str) -> None:
    got = error(check or '{ type = "opcua", url = "opc.tcp://h", node = "i=1" }', restart)
    assert got.startswith(expected), got


def test_docs_describe_every_key_and_are_current() -> None:
    docs = render_docs()
    for heading in ('### type = "modbus"', '### type = "snmp"', '### type = "mqtt"', '### type = "opcua"',
                    "### modbus_write", "### snmp_set"):
        assert heading in docs
    for key in ("`community_env`", "`max_age_seconds`", "`password_env`", "`word_order`", "`must_change`"):
        assert key in docs
    assert DOCS.read_text(encoding="utf-8") == docs
