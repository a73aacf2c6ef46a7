"""Modbus/TCP checks against a real pymodbus server on loopback: values, bounds, counters, exceptions."""

from __future__ import annotations

import struct
from typing import AsyncIterator

import pytest
from industrial_servers import Plc, free_port, make_check, plc, run_check, service  # noqa: F401 - fixture

from core.checks.base import CheckContext
from core.events import FailureType, ServiceStatus


@pytest.fixture
async def ctx() -> AsyncIterator[CheckContext]:
    context = CheckContext(environ={})
    yield context
    await context.close()


def mb(p: Plc, extra: str) -> str:
    return f'{{ type = "modbus", host = "127.0.0.1", port = {p.port}, unit = 1, {extra} }}'


async def test_holding_register_in_range_is_healthy_with_its_value(plc: Plc, ctx: CheckContext) -> None:
    plc.holding[100] = 42
    svc = service(mb(plc, 'table = "holding", address = 100, min = 0, max = 80'))
    result = await run_check(make_check(ctx, svc), svc)
    assert result.status is ServiceStatus.HEALTHY, result.error
    assert result.value == 42 and result.check == "modbus"
    assert ("bounds", "0..80") in result.detail and ("value", "42") in result.detail
    assert svc.target == f"modbus 127.0.0.1:{plc.port} unit 1 holding 100"


async def test_register_out_of_range_names_the_value_and_the_bound(plc: Plc, ctx: CheckContext) -> None:
    svc = service(mb(plc, 'table = "holding", address = 100, min = 0, max = 80'))
    check = make_check(ctx, svc)
    plc.holding[100] = 95
    result = await run_check(check, svc)
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == "value 95 above max 80" and result.value == 95
    assert result.failure_type is FailureType.DATA_CORRUPTION
    plc.holding[100] = 70
    assert (await run_check(check, svc)).ok


async def test_counter_that_stops_is_a_fault_and_one_that_goes_back_is_a_reboot(plc: Plc, ctx: CheckContext) -> None:
    svc = service(mb(plc, 'table = "input", address = 7, must_change = true'))
    check = make_check(ctx, svc)
    seen = []
    for value in (10, 11, 11, 12, 3, 4):
        plc.inputs[7] = value
        seen.append(await run_check(check, svc))
    assert [r.status for r in seen] == [ServiceStatus.HEALTHY, ServiceStatus.HEALTHY, ServiceStatus.UNHEALTHY,
                                        ServiceStatus.HEALTHY, ServiceStatus.HEALTHY, ServiceStatus.HEALTHY]
    assert seen[2].error == "value 11 stopped changing"
    assert [r.reboot for r in seen] == [None, None, None, None, "counter went back from 12 to 3", None]


async def test_signed_scaled_and_32_bit_values(plc: Plc, ctx: CheckContext) -> None:
    plc.holding[10] = 0xFFFE  # -2 as int16
    hi, lo = struct.unpack(">HH", struct.pack(">f", 21.5))
    plc.holding[20], plc.holding[21] = hi, lo
    plc.holding[30], plc.holding[31] = 0x0001, 0x0000  # 65536 as uint32, high word first
    plc.holding[40] = 215
    cases = [('address = 10, data_type = "int16"', -2),
             ('address = 20, data_type = "float32"', 21.5),
             ('address = 30, data_type = "uint32"', 65536),
             ('address = 30, data_type = "uint32", word_order = "little"', 1),
             ('address = 40, scale = 0.1', 21.5)]
    for extra, expected in cases:
        svc = service(mb(plc, extra))
        result = await run_check(make_check(ctx, svc), svc)
        assert result.value == pytest.approx(expected), extra


async def test_coils_and_discrete_inputs_read_as_booleans(plc: Plc, ctx: CheckContext) -> None:
    plc.coils[3] = True
    plc.discrete[5] = False
    coil = service(mb(plc, 'table = "coil", address = 3, equals = true'))
    assert (await run_check(make_check(ctx, coil), coil)).value is True
    di = service(mb(plc, 'table = "discrete", address = 5, equals = true'))
    result = await run_check(make_check(ctx, di), di)
    assert result.status is ServiceStatus.UNHEALTHY and result.error == "value False is not True"


async def test_exception_responses_are_named_errors(plc: Plc, ctx: CheckContext) -> None:
    svc = service(mb(plc, "address = 100"))
    check = make_check(ctx, svc)
    plc.fail[100] = 2
    result = await run_check(check, svc)
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == (f"Modbus exception 2 (illegal data address) reading holding 100 from unit 1 at "
                            f"127.0.0.1:{plc.port}")
    plc.fail[100] = 4
    assert "Modbus exception 4 (server device failure)" in (await run_check(check, svc)).error
    # An address the device does not have at all: the server itself answers "illegal data address".
    beyond = service(mb(plc, "address = 5000"))
    assert "Modbus exception 2 (illegal data address)" in (await run_check(make_check(ctx, beyond), beyond)).error
    del plc.fail[100]
    assert (await run_check(check, svc)).ok  # the shared connection survived the exceptions


async def test_a_wrong_unit_id_is_a_clear_error_and_the_connection_stays_usable(plc: Plc, ctx: CheckContext) -> None:
    good = service(mb(plc, "address = 1"))
    wrong = service(f'{{ type = "modbus", host = "127.0.0.1", port = {plc.port}, unit = 7, address = 1 }}')
    result = await run_check(make_check(ctx, wrong), wrong)
    assert result.status is ServiceStatus.UNHEALTHY
    # pymodbus' server answers "server device failure" for a unit it does not serve; a gateway would
    # answer 10/11 or stay silent ("no answer ... wrong unit id"): each is one named line.
    assert result.error is not None and "unit 7" in result.error and "Modbus exception" in result.error
    assert (await run_check(make_check(ctx, good), good)).ok


async def test_checks_of_one_device_share_one_connection(plc: Plc, ctx: CheckContext) -> None:
    a = service(mb(plc, "address = 1"))
    b = service(mb(plc, 'table = "input", address = 2'))
    ca, cb = make_check(ctx, a), make_check(ctx, b)
    assert (await run_check(ca, a)).ok and (await run_check(cb, b)).ok
    assert ctx.holds() == [("modbus", "127.0.0.1", str(plc.port))]
    await ca.close()
    assert ctx.holds() == [("modbus", "127.0.0.1", str(plc.port))]  # b still uses it
    await cb.close()
    assert ctx.holds() == []


async def test_a_device_that_goes_away_and_comes_back(ctx: CheckContext) -> None:
    server = Plc()
    await server.start()
    server.holding[0] = 5
    svc = service(mb(server, "address = 0"))
    check = make_check(ctx, svc)
    assert (await run_check(check, svc)).ok
    await server.stop()
    # The first check may find the old connection half-open ("no answer"); the next connects afresh.
    first, down = await run_check(check, svc), await run_check(check, svc)
    assert first.status is ServiceStatus.UNHEALTHY and first.failure_type is FailureType.NETWORK_PARTITION
    assert down.status is ServiceStatus.UNHEALTHY and down.failure_type is FailureType.NETWORK_PARTITION
    assert down.error == f"cannot connect to 127.0.0.1:{server.port}"
    await server.start(server.port)
    try:
        back = await run_check(check, svc)
        assert back.ok and back.value == 5
    finally:
        await server.stop()


async def test_nothing_listening_is_cannot_connect(ctx: CheckContext) -> None:
    svc = service(f'{{ type = "modbus", host = "127.0.0.1", port = {free_port()}, address = 0 }}')
    result = await run_check(make_check(ctx, svc), svc)
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error is not None and result.error.startswith("cannot connect to 127.0.0.1:")


async def test_a_unit_nobody_answers_for_is_no_answer_and_the_device_is_reached_again(ctx: CheckContext) -> None:
    server = Plc()
    await server.start(silent_for_other_units=True)
    try:
        server.holding[1] = 9
        wrong = service(f'{{ type = "modbus", host = "127.0.0.1", port = {server.port}, unit = 7, address = 1 }}')
        result = await run_check(make_check(ctx, wrong), wrong)
        assert result.status is ServiceStatus.UNHEALTHY and result.failure_type is FailureType.NETWORK_PARTITION
        assert result.error == f"no answer from 127.0.0.1:{server.port} (wrong unit id, or the device is busy)"
        good = service(mb(server, "address = 1"))
        assert (await run_check(make_check(ctx, good), good)).value == 9
    finally:
        await server.stop()
