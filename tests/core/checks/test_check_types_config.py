"""The network check types in the config: the issue's examples load, mistakes give one-line key-path
errors with suggestions, and reading a config loads no protocol library."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT

from core.checks.dns import DnsCheck
from core.checks.http import HttpCheck, JsonExpectation
from core.checks.ping import PingCheck
from core.checks.registry import check_types
from core.checks.tcp import TcpCheck
from core.checks.tls import TlsCheck
from core.config import ConfigError, parse_config


def _one(check: str, extra: str = "") -> object:
    return parse_config(f'[[services]]\nid = "d"\n{extra}check = {check}\n', label="rack.toml").services[0]


def _error(check: str, extra: str = "") -> str:
    with pytest.raises(ConfigError) as info:
        _one(check, extra)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_network_types_are_registered() -> None:
    assert {"http", "tcp", "ping", "dns", "tls"} <= set(check_types())
    assert list(check_types())[0] == "http"


@pytest.mark.parametrize(("toml", "settings", "target"), [
    ('{ type = "tcp", host = "10.1.2.3", port = 554 }', TcpCheck("10.1.2.3", 554), "tcp 10.1.2.3:554"),
    ('{ type = "ping", host = "10.1.2.3" }', PingCheck("10.1.2.3"), "ping 10.1.2.3"),
    ('{ type = "dns", server = "10.1.2.1", name = "plc1.lab", record = "A", expect = ["10.1.2.3"] }',
     DnsCheck("10.1.2.1", "plc1.lab", "A", ("10.1.2.3",)), "dns plc1.lab A @10.1.2.1"),
    ('{ type = "tls", host = "10.1.2.9", port = 443, warn_days = 21, critical_days = 7 }',
     TlsCheck("10.1.2.9", 443, "", 21.0, 7.0), "tls 10.1.2.9:443"),
    ('{ type = "tcp", host = "fe80::1", port = 554 }', TcpCheck("fe80::1", 554), "tcp [fe80::1]:554"),
    ('{ type = "dns", server = "10.1.2.1", port = 5353, name = "plc1.lab" }',
     DnsCheck("10.1.2.1", "plc1.lab", port=5353), "dns plc1.lab A @10.1.2.1:5353"),
])
def test_issue_examples_load_without_an_endpoint(toml: str, settings: object, target: str) -> None:
    svc = _one(toml)
    assert svc.check == settings  # type: ignore[attr-defined]
    assert svc.check_type == settings.TYPE  # type: ignore[attr-defined]
    assert svc.target == target  # type: ignore[attr-defined]
    assert svc.endpoint == ""  # type: ignore[attr-defined]


def test_issue_http_examples_load() -> None:
    extra = 'endpoint = "http://10.1.2.8"\n'
    one = _one('{ type = "http", method = "GET", expect_status = [200, 204], body_contains = "ok" }', extra)
    assert one.check == HttpCheck("GET", (200, 204), "ok")  # type: ignore[attr-defined]
    two = _one('{ type = "http", json = { path = "status.state", equals = "running" } }', extra)
    assert two.check == HttpCheck(json=JsonExpectation("status.state", "running"))  # type: ignore[attr-defined]
    assert two.target == "http://10.1.2.8"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("toml", "message"), [
    ('{ type = "tcp", hots = "h", port = 1 }', "rack.toml: services[0].check.hots: unknown key (did you mean 'host'?)"),
    ('{ type = "tls", host = "h", warn_day = 3 }',
     "rack.toml: services[0].check.warn_day: unknown key (did you mean 'warn_days'?)"),
    ('{ type = "dns", server = "s", name = "n", recrod = "A" }',
     "rack.toml: services[0].check.recrod: unknown key (did you mean 'record'?)"),
    ('{ type = "pign", host = "h" }',
     "rack.toml: services[0].check.type: 'pign' is not one of " + " | ".join(check_types()) + " (did you mean 'ping'?)"),
    ('{ type = "tcp", host = "h", port = "554" }', "rack.toml: services[0].check.port: expected an integer, got a string '554'"),
    ('{ type = "tcp", host = "h", port = 70000 }', "rack.toml: services[0].check.port: must be at most 65535, got 70000"),
    ('{ type = "tcp", host = "h" }', "rack.toml: services[0].check.port: is required"),
    ('{ type = "ping" }', "rack.toml: services[0].check.host: is required"),
    ('{ type = "ping", host = "" }', "rack.toml: services[0].check.host: must not be empty"),
    ('{ type = "ping", host = "a b" }', "rack.toml: services[0].check.host: 'a b' is not a host name or address"),
    ('{ type = "dns", server = "s", name = "n", expect = "10.1.2.3" }',
     "rack.toml: services[0].check.expect: expected an array, got a string '10.1.2.3'"),
    ('{ type = "dns", server = "s", name = "n", expect = [1] }',
     "rack.toml: services[0].check.expect[0]: expected a string, got an integer 1"),
    ('{ type = "dns", server = "s", name = "n", record = "AX" }',
     "rack.toml: services[0].check.record: 'AX' is not one of A | AAAA | CNAME | MX | NS | PTR | SOA | SRV | TXT | CAA"),
    ('{ type = "dns", server = "s" }', "rack.toml: services[0].check.name: is required"),
    ('{ type = "tls", host = "h", warn_days = true }',
     "rack.toml: services[0].check.warn_days: expected a number, got a boolean True"),
    ('{ type = "tls", host = "h", warn_days = 5 }',
     "rack.toml: services[0].check.critical_days: 7 is greater than warn_days (5)"),
    ('{ type = "tls", host = "h", critical_days = -1 }',
     "rack.toml: services[0].check.critical_days: must be at least 0, got -1.0"),
    ('"tcp"', "rack.toml: services[0].check: expected a table with 'type', got a string 'tcp'"),
])
def test_mistakes_are_one_line_key_path_errors(toml: str, message: str) -> None:
    assert _error(toml) == message


def test_http_still_needs_an_endpoint_and_others_do_not() -> None:
    assert _error('{ type = "http" }') == "rack.toml: services[0].endpoint: is required (for http checks)"
    assert _one('{ type = "tcp", host = "h", port = 1 }').endpoint == ""  # type: ignore[attr-defined]


def test_reading_a_config_loads_no_protocol_library() -> None:
    code = ("import sys; from core.config import parse_config; "
            "parse_config('[[services]]\\nid = \"d\"\\ncheck = { type = \"dns\", server = \"s\", name = \"n\" }\\n'); "
            "print(sorted(m for m in ('icmplib', 'dns', 'dns.asyncquery', 'cryptography') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
