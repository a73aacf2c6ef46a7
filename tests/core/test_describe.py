"""Wording shared by the terminal stream, the timeline and exports: check values, check types, reboots."""

from __future__ import annotations

import pytest

from core.describe import check_word, describe_event, format_value
from core.events import ProbeEvent, RebootEvent, ServiceStatus


@pytest.mark.parametrize(("value", "text"), [
    (None, "—"), (True, "true"), (False, "false"), (7, "7"), (123456789, "123,456,789"), (80.0, "80"),
    (41.56, "41.6"), (0.01234, "0.0123"), (150.25, "150.2"), (2500.4, "2,500"), (-3.5, "-3.5"),
    ("online", "online"), ("two\nlines", "two lines"), ("x" * 100, "x" * 39 + "…"),
])
def test_values_are_formatted_without_a_unit(value: float | str | bool | None, text: str) -> None:
    assert format_value(value) == text


def test_check_types_as_words() -> None:
    assert [check_word(t) for t in ("http", "tcp", "ping", "dns", "tls", "modbus", "snmp", "mqtt", "opcua")] == \
        ["HTTP", "TCP", "PING", "DNS", "TLS", "MODBUS", "SNMP", "MQTT", "OPC UA"]
    assert check_word("some_new") == "SOME NEW"  # a type added later still reads as a word


def test_a_reboot_reads_as_rebooted_by_itself_with_its_reason() -> None:
    event = RebootEvent(service="pdu", mono=0.0, wall=1.0, reason="sysUpTime went back from 9000 to 12",
                        check="snmp")
    assert describe_event(event) == ("rebooted by itself", "sysUpTime went back from 9000 to 12")


def test_a_probe_event_names_the_value_read_and_the_check() -> None:
    out_of_range = ProbeEvent(service="plc", mono=0.0, wall=1.0, status=ServiceStatus.UNHEALTHY, latency_ms=1.2,
                              error="value 93 above max 80", consecutive_failures=1, check="modbus", value=93)
    assert describe_event(out_of_range) == ("UNHEALTHY 1.2 ms, read 93 (1 consecutive failures)",
                                            "value 93 above max 80")
    back = ProbeEvent(service="plc", mono=0.0, wall=1.0, status=ServiceStatus.HEALTHY, latency_ms=1.0,
                      error=None, consecutive_failures=0, check="opcua", value=0)
    assert describe_event(back) == ("HEALTHY 1.0 ms, read 0", "OPC UA check")
    http = ProbeEvent(service="web", mono=0.0, wall=1.0, status=ServiceStatus.HEALTHY, latency_ms=3.0,
                      error=None, consecutive_failures=0, endpoint="http://x/health")
    assert describe_event(http) == ("HEALTHY 3.0 ms", "via http://x/health")
