"""SNMP checks against a real snmpd on loopback: values, sysUpTime reboots, wrong community, silence."""

from __future__ import annotations

import logging
from typing import AsyncIterator

import pytest
from industrial_servers import (WRITABLE_OID, Snmpd, free_port, make_check, run_check, service,  # noqa: F401
                                snmpd, wait_until)

from core.checks.base import CheckContext
from core.events import FailureType, ServiceStatus

UPTIME = "1.3.6.1.2.1.1.3.0"


@pytest.fixture
async def ctx(snmpd: Snmpd) -> AsyncIterator[CheckContext]:
    context = CheckContext(environ={"RACK_SNMP": snmpd.read_community, "WRONG_SNMP": "not-the-community"})
    yield context
    await context.close()


def snmp(agent: Snmpd, extra: str, env: str = "RACK_SNMP") -> str:
    return f'{{ type = "snmp", host = "127.0.0.1", port = {agent.port}, community_env = "{env}", {extra} }}'


async def test_sysuptime_is_read_as_a_number_and_shown_as_a_duration(snmpd: Snmpd, ctx: CheckContext) -> None:
    svc = service(snmp(snmpd, f'oid = "{UPTIME}"'))
    result = await run_check(make_check(ctx, svc), svc)
    assert result.status is ServiceStatus.HEALTHY, result.error
    assert isinstance(result.value, int) and result.value >= 0 and result.check == "snmp"
    labels = dict(result.detail)
    assert labels["OID"] == UPTIME and ":" in labels["uptime"]
    assert svc.target == f"snmp 127.0.0.1:{snmpd.port} {UPTIME}"


async def test_value_conditions_apply_to_the_oid(snmpd: Snmpd, ctx: CheckContext) -> None:
    # The writable test object starts at 1 (the agent's config).
    ok = service(snmp(snmpd, f'oid = "{WRITABLE_OID}", equals = 1'))
    assert (await run_check(make_check(ctx, ok), ok)).value == 1
    bad = service(snmp(snmpd, f'oid = "{WRITABLE_OID}", min = 2'))
    result = await run_check(make_check(ctx, bad), bad)
    assert result.status is ServiceStatus.UNHEALTHY and result.error == "value 1 below min 2"


async def test_text_values_and_missing_objects(snmpd: Snmpd, ctx: CheckContext) -> None:
    name = service(snmp(snmpd, 'oid = "1.3.6.1.2.1.1.5.0"'))  # sysName
    assert isinstance((await run_check(make_check(ctx, name), name)).value, str)
    missing = service(snmp(snmpd, 'oid = "1.3.6.1.2.1.1.99.0"'))
    result = await run_check(make_check(ctx, missing), missing)
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == f"no such object 1.3.6.1.2.1.1.99.0 at 127.0.0.1:{snmpd.port}"
    assert result.failure_type is FailureType.CONFIGURATION_ERROR


async def test_a_wrong_community_is_silence_named_without_the_secret(
        snmpd: Snmpd, ctx: CheckContext, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    svc = service(snmp(snmpd, f'oid = "{UPTIME}"', env="WRONG_SNMP"), timeout_s=2.0)
    result = await run_check(make_check(ctx, svc), svc)
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == (f"no answer from 127.0.0.1:{snmpd.port} within 1.5 s "
                            "(agent down, or the community is wrong)")
    for secret in ("not-the-community", snmpd.read_community):
        assert secret not in repr(result) and secret not in caplog.text


async def test_an_unset_community_variable_is_a_configuration_error(snmpd: Snmpd, ctx: CheckContext) -> None:
    svc = service(snmp(snmpd, f'oid = "{UPTIME}"', env="NOT_SET_ANYWHERE"))
    result = await run_check(make_check(ctx, svc), svc)
    assert result.error == "environment variable NOT_SET_ANYWHERE (the SNMP community) is not set"
    assert result.failure_type is FailureType.CONFIGURATION_ERROR


async def test_silence_on_a_port_nobody_answers(ctx: CheckContext) -> None:
    port = free_port()
    svc = service(f'{{ type = "snmp", host = "127.0.0.1", port = {port}, community_env = "RACK_SNMP" }}',
                  timeout_s=2.0)
    result = await run_check(make_check(ctx, svc), svc)
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error is not None and result.error.startswith(f"no answer from 127.0.0.1:{port}")
    assert result.failure_type is FailureType.NETWORK_PARTITION


async def test_an_agent_that_restarted_is_a_reboot(snmpd: Snmpd, ctx: CheckContext) -> None:
    svc = service(snmp(snmpd, f'oid = "{WRITABLE_OID}"'))
    check = make_check(ctx, svc)
    first = await run_check(check, svc)
    assert first.ok and first.reboot is None
    # Let sysUpTime grow past a restarted agent's (ticks are 1/100 s; wait on the agent, not a clock).
    async def uptime_above(ticks: int) -> bool:
        probe = service(snmp(snmpd, f'oid = "{UPTIME}"'))
        value = (await run_check(make_check(ctx, probe), probe)).value
        return isinstance(value, int) and value > ticks

    await wait_until(lambda: uptime_above(150), "sysUpTime above 1.5 s")
    assert (await run_check(check, svc)).reboot is None
    snmpd.stop()
    snmpd.start()
    again = await run_check(check, svc)
    assert again.ok
    assert again.reboot is not None and again.reboot.startswith("sysUpTime went back from 00:00:0")
    assert (await run_check(check, svc)).reboot is None  # one reboot, reported once
