"""Protocol restart actions (modbus_write, snmp_set) through core.actions, against real servers on loopback."""

from __future__ import annotations

import logging
from typing import AsyncIterator

import pytest
from industrial_servers import (WRITABLE_OID, Plc, Snmpd, free_port, make_check, plc, run_check,  # noqa: F401
                                service, snmpd)

from core.actions import describe_action as describe, run_action
from core.checks.base import CheckContext
from core.config import ProtocolRestart


# An answered set returns at once; the budget only has to cover pysnmp building its engine (it loads
# its MIB modules), which takes seconds on a machine busy with other jobs.
SNMP_BUDGET_S = 8.0


@pytest.fixture
async def ctx() -> AsyncIterator[CheckContext]:
    context = CheckContext(environ={"PDU_RW": "set-below", "PDU_WRONG": "not-it"})
    yield context
    await context.close()


def restart(check: str, action: str) -> ProtocolRestart:
    svc = service(check, restart_toml=action)
    assert isinstance(svc.restart, ProtocolRestart)
    return svc.restart


async def test_modbus_write_sets_a_coil_and_reuses_the_checks_connection(plc: Plc, ctx: CheckContext) -> None:
    check_toml = f'{{ type = "modbus", host = "127.0.0.1", port = {plc.port}, address = 0 }}'
    svc = service(check_toml)
    check = make_check(ctx, svc)
    assert (await run_check(check, svc)).ok
    action = restart(check_toml, f'{{ modbus_write = {{ host = "127.0.0.1", port = {plc.port}, unit = 1, '
                                 'table = "coil", address = 0, value = true } }')
    assert describe(action) == f"modbus_write coil 0 = true on unit 1 at 127.0.0.1:{plc.port}"
    result = await run_action(action, ctx, 2.0)
    assert result.ok and result.detail == f"wrote coil 0 = true on unit 1 at 127.0.0.1:{plc.port}"
    assert plc.coils[0] is True and plc.writes == [(5, 0, [True])]
    assert ctx.holds() == [("modbus", "127.0.0.1", str(plc.port))]  # the check's connection, still held
    await check.close()
    assert ctx.holds() == []


async def test_modbus_write_to_a_holding_register(plc: Plc, ctx: CheckContext) -> None:
    action = restart('{ type = "modbus", host = "h", address = 0 }',
                     f'{{ modbus_write = {{ host = "127.0.0.1", port = {plc.port}, table = "holding", '
                     'address = 12, value = 3 } }')
    result = await run_action(action, ctx, 2.0)
    assert result.ok and plc.holding[12] == 3
    assert ctx.holds() == []  # an action alone does not keep a connection open


async def test_modbus_write_refused_by_the_device_is_a_failed_restart(plc: Plc, ctx: CheckContext) -> None:
    plc.fail[0] = 1
    action = restart('{ type = "modbus", host = "h", address = 0 }',
                     f'{{ modbus_write = {{ host = "127.0.0.1", port = {plc.port}, address = 0, value = false }} }}')
    result = await run_action(action, ctx, 2.0)
    assert not result.ok
    assert result.detail == (f"Modbus exception 1 (illegal function) writing coil 0 = false on unit 1 at "
                             f"127.0.0.1:{plc.port}")


async def test_modbus_write_to_nothing_is_a_failed_restart(ctx: CheckContext) -> None:
    port = free_port()
    action = restart('{ type = "modbus", host = "h", address = 0 }',
                     f'{{ modbus_write = {{ host = "127.0.0.1", port = {port}, address = 0, value = true }} }}')
    result = await run_action(action, ctx, 2.0)
    assert not result.ok and result.detail == f"cannot connect to 127.0.0.1:{port}"


async def test_snmp_set_power_cycles_the_outlet(snmpd: Snmpd, ctx: CheckContext,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ctx.environ["PDU_RW"] = snmpd.write_community
    ctx.environ["PDU_RO"] = snmpd.read_community
    action = restart(f'{{ type = "snmp", host = "127.0.0.1", port = {snmpd.port}, community_env = "PDU_RO" }}',
                     f'{{ snmp_set = {{ host = "127.0.0.1", port = {snmpd.port}, oid = "{WRITABLE_OID}", '
                     'type = "i", value = 3, community_env = "PDU_RW" } }')
    assert describe(action) == f"snmp_set {WRITABLE_OID} = 3 (i) on 127.0.0.1:{snmpd.port}"
    result = await run_action(action, ctx, SNMP_BUDGET_S)
    assert result.ok, result.detail
    assert result.detail == f"set {WRITABLE_OID} = 3 (i) on 127.0.0.1:{snmpd.port}"
    # Read it back with a check: the agent really holds the new value.
    svc = service(f'{{ type = "snmp", host = "127.0.0.1", port = {snmpd.port}, oid = "{WRITABLE_OID}", '
                  'community_env = "PDU_RO", equals = 3 }')
    assert (await run_check(make_check(ctx, svc), svc)).ok
    assert snmpd.write_community not in caplog.text and snmpd.write_community not in result.detail


async def test_snmp_set_with_the_read_community_is_refused_by_the_agent(snmpd: Snmpd, ctx: CheckContext) -> None:
    ctx.environ["PDU_RO"] = snmpd.read_community
    action = restart('{ type = "snmp", host = "h" }',
                     f'{{ snmp_set = {{ host = "127.0.0.1", port = {snmpd.port}, oid = "{WRITABLE_OID}", '
                     'value = 2, community_env = "PDU_RO" } }')
    result = await run_action(action, ctx, SNMP_BUDGET_S)
    assert not result.ok
    assert result.detail == f"SNMP error noAccess setting {WRITABLE_OID} on 127.0.0.1:{snmpd.port}"


async def test_snmp_set_of_a_read_only_object_and_a_wrong_type(snmpd: Snmpd, ctx: CheckContext) -> None:
    ctx.environ["PDU_RW"] = snmpd.write_community
    uptime = restart('{ type = "snmp", host = "h" }',
                     f'{{ snmp_set = {{ host = "127.0.0.1", port = {snmpd.port}, oid = "1.3.6.1.2.1.1.3.0", '
                     'value = 0, community_env = "PDU_RW" } }')
    assert (await run_action(uptime, ctx, SNMP_BUDGET_S)).detail == (
        f"SNMP error notWritable setting 1.3.6.1.2.1.1.3.0 on 127.0.0.1:{snmpd.port}")
    text = restart('{ type = "snmp", host = "h" }',
                   f'{{ snmp_set = {{ host = "127.0.0.1", port = {snmpd.port}, oid = "{WRITABLE_OID}", '
                   'type = "s", value = "reboot", community_env = "PDU_RW" } }')
    assert (await run_action(text, ctx, SNMP_BUDGET_S)).detail == (
        f"SNMP error wrongType setting {WRITABLE_OID} on 127.0.0.1:{snmpd.port}")


async def test_snmp_set_with_a_wrong_community_or_to_silence(snmpd: Snmpd, ctx: CheckContext) -> None:
    for port in (snmpd.port, free_port()):
        action = restart('{ type = "snmp", host = "h" }',
                         f'{{ snmp_set = {{ host = "127.0.0.1", port = {port}, oid = "{WRITABLE_OID}", '
                         'value = 3, community_env = "PDU_WRONG" } }')
        # A roomy budget: the action's own wait is 0.6 of it, the rest absorbs a busy machine.
        result = await run_action(action, ctx, 4.0)
        assert not result.ok
        assert result.detail == f"no answer from 127.0.0.1:{port} (agent down, or the write community is wrong)"
        assert "not-it" not in result.detail


async def test_snmp_set_with_an_unset_variable(ctx: CheckContext) -> None:
    action = restart('{ type = "snmp", host = "h" }',
                     '{ snmp_set = { host = "127.0.0.1", oid = "1.3.6.1.4.1.1.0", value = 3, '
                     'community_env = "PDU_NOT_SET" } }')
    result = await run_action(action, ctx, 1.0)
    assert not result.ok
    assert result.detail == "environment variable PDU_NOT_SET (the SNMP community) is not set"
