"""dns checks against dnsmasq on loopback: answers, expectations, NXDOMAIN, SERVFAIL, REFUSED, silence."""

from __future__ import annotations

import asyncio

import pytest
from conftest import free_port, run_in_netns

from core.checks.base import CheckContext, CheckResult, execute
from core.checks.dns import CHECK, DnsCheck
from core.events import FailureType, ServiceStatus


async def _run(port: int, name: str, record: str = "A", expect: tuple[str, ...] = (),
               timeout_s: float = 2.0, server: str = "127.0.0.1") -> CheckResult:
    check = CHECK.make(DnsCheck(server, name, record, expect, port), CheckContext(), None)  # type: ignore[arg-type]
    try:
        return await execute(check, "", check_type="dns", timeout_s=timeout_s, slow_ms=1000.0)
    finally:
        await check.close()


async def test_answer_matches_expectation(dns_servers) -> None:
    result = await _run(dns_servers.port, "plc1.lab", expect=("10.1.2.3",))
    assert result.status is ServiceStatus.HEALTHY and result.check == "dns"
    assert result.value == "10.1.2.3" and ("answers", "10.1.2.3") in result.detail
    assert result.latency_ms > 0


async def test_several_answers_are_joined_and_expect_needs_each(dns_servers) -> None:
    result = await _run(dns_servers.port, "panel.lab")
    assert result.status is ServiceStatus.HEALTHY and result.value == "10.1.2.10, 10.1.2.9"
    partial = await _run(dns_servers.port, "panel.lab", expect=("10.1.2.9",))
    assert partial.status is ServiceStatus.HEALTHY
    wrong = await _run(dns_servers.port, "panel.lab", expect=("10.1.2.9", "10.1.2.11"))
    assert wrong.status is ServiceStatus.UNHEALTHY
    assert wrong.error == "panel.lab A is 10.1.2.10, 10.1.2.9, expected 10.1.2.11"
    assert wrong.failure_type is FailureType.DATA_CORRUPTION and wrong.value == "10.1.2.10, 10.1.2.9"


async def test_txt_record_compared_without_quotes(dns_servers) -> None:
    result = await _run(dns_servers.port, "info.lab", "TXT", expect=("rack 1",))
    assert result.status is ServiceStatus.HEALTHY and result.value == "rack 1"


async def test_nxdomain_is_a_clear_error(dns_servers) -> None:
    result = await _run(dns_servers.port, "plc9.lab")
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == "plc9.lab does not exist (NXDOMAIN)"
    assert result.failure_type is FailureType.CONFIGURATION_ERROR


async def test_no_record_of_that_type(dns_servers) -> None:
    result = await _run(dns_servers.port, "plc1.lab", "MX")
    assert result.status is ServiceStatus.UNHEALTHY and result.error == "no MX record for plc1.lab"


async def test_servfail_is_a_clear_error(dns_servers) -> None:
    result = await _run(dns_servers.servfail_port, "plc1.lab", timeout_s=5.0)
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == "server failed to answer for plc1.lab (SERVFAIL)"
    assert result.failure_type is FailureType.SERVICE_UNAVAILABLE


async def test_refused_is_a_clear_error(dns_servers) -> None:
    result = await _run(dns_servers.refused_port, "plc1.lab")
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == "server refused the query for plc1.lab (REFUSED)"
    assert result.failure_type is FailureType.CONFIGURATION_ERROR


async def test_no_server_on_the_port_times_out() -> None:
    # UDP to a closed port: the ICMP "port unreachable" is not reported on an unconnected socket.
    result = await _run(free_port(), "plc1.lab", timeout_s=0.3)
    assert result.status is ServiceStatus.UNHEALTHY and result.error == "timeout after 0.3 s"
    assert result.failure_type is FailureType.NETWORK_PARTITION


def test_unreachable_server(netns) -> None:
    ns = netns(lo_up=True)
    out = run_in_netns(ns, {"type": "dns", "server": ns.no_route_address, "name": "plc1.lab"})
    assert out["status"] == "unhealthy"
    assert out["error"] == "cannot ask the DNS server: no route to host"
    assert out["failure_type"] == "network_partition"


@pytest.mark.parametrize("name", ["a" * 64 + ".lab", "x" * 250 + ".lab"])
async def test_invalid_names_are_a_verdict_not_a_crash(dns_servers, name: str) -> None:
    result = await _run(dns_servers.port, name)
    assert result.status is ServiceStatus.UNHEALTHY and result.error is not None
    assert result.error.startswith("invalid name:")
    assert result.failure_type is FailureType.CONFIGURATION_ERROR


class _Garbage(asyncio.DatagramProtocol):
    """A 'DNS server' that answers every query with the query's id and then junk."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data[:2] + b"\x81\x80\xff\xff\x00\x07junk", addr)  # type: ignore[attr-defined]


async def test_malformed_answer_is_data_corruption() -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Garbage, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        result = await _run(port, "plc1.lab", timeout_s=1.0)
    finally:
        transport.close()
    assert result.status is ServiceStatus.UNHEALTHY and result.failure_type is FailureType.DATA_CORRUPTION
    assert result.error is not None and result.error.startswith("malformed DNS answer:")


async def test_truncated_answer_is_asked_again_over_tcp(dns_servers) -> None:
    result = await _run(dns_servers.port, "big.lab", expect=("10.9.0.1", "10.9.0.100"))
    assert result.status is ServiceStatus.HEALTHY
    assert isinstance(result.value, str) and len(result.value.split(", ")) == 100
