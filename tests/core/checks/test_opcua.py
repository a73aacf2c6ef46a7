"""OPC UA checks against a real asyncua server on loopback: values, bad nodes, a server that restarts."""

from __future__ import annotations

from typing import AsyncIterator

import pytest
import pytest_asyncio
from industrial_servers import OpcServer, free_port, make_check, run_check, service

from core.checks.base import CheckContext
from core.events import FailureType, ServiceStatus


# One server for the module (asyncua builds its whole address space at start: seconds on a busy box);
# the test that restarts a server makes its own.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def opc() -> AsyncIterator[OpcServer]:
    server = OpcServer()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def ctx() -> AsyncIterator[CheckContext]:
    context = CheckContext(environ={})
    yield context
    await context.close()


def ua(server: OpcServer, node: str, extra: str = "") -> str:
    return f'{{ type = "opcua", url = "{server.url}", node = "{node}"' + (f", {extra}" if extra else "") + " }"


async def test_server_state_running_is_zero(opc: OpcServer, ctx: CheckContext) -> None:
    svc = service(ua(opc, "i=2259", "equals = 0"), timeout_s=3)
    result = await run_check(make_check(ctx, svc), svc)
    assert result.status is ServiceStatus.HEALTHY, result.error
    assert result.value == 0 and result.check == "opcua"
    assert "server started" in dict(result.detail)
    assert svc.target == f"opcua {opc.url} i=2259"


async def test_a_variable_out_of_range_and_back(opc: OpcServer, ctx: CheckContext) -> None:
    svc = service(ua(opc, opc.node_id, "min = 2, max = 30"), timeout_s=3)
    check = make_check(ctx, svc)
    assert (await run_check(check, svc)).value == 21.5
    await opc.set(35.25)
    hot = await run_check(check, svc)
    assert hot.status is ServiceStatus.UNHEALTHY and hot.error == "value 35.25 above max 30"
    await opc.set(21.5)
    assert (await run_check(check, svc)).ok


async def test_an_unknown_node_is_a_named_configuration_error(opc: OpcServer, ctx: CheckContext) -> None:
    svc = service(ua(opc, "ns=2;s=NoSuchThing"), timeout_s=3)
    result = await run_check(make_check(ctx, svc), svc)
    assert result.status is ServiceStatus.UNHEALTHY
    assert result.error == f"OPC UA BadNodeIdUnknown reading ns=2;s=NoSuchThing from {opc.url}"
    assert result.failure_type is FailureType.CONFIGURATION_ERROR


async def test_nodes_of_one_server_share_one_session(opc: OpcServer, ctx: CheckContext) -> None:
    a, b = service(ua(opc, "i=2259"), timeout_s=3), service(ua(opc, opc.node_id), timeout_s=3)
    ca, cb = make_check(ctx, a), make_check(ctx, b)
    assert (await run_check(ca, a)).ok and (await run_check(cb, b)).ok
    assert ctx.holds() == [("opcua", opc.url)]


async def test_a_server_that_goes_away_and_restarts_is_down_then_a_reboot(ctx: CheckContext) -> None:
    server = OpcServer()
    await server.start()
    svc = service(ua(server, "i=2259", "equals = 0"), timeout_s=3)
    check = make_check(ctx, svc)
    try:
        assert (await run_check(check, svc)).reboot is None
        await server.stop()
        down = await run_check(check, svc)
        assert down.status is ServiceStatus.UNHEALTHY and down.failure_type is FailureType.NETWORK_PARTITION
        assert down.error is not None and "127.0.0.1:" in down.error
        await server.start()
        back = await run_check(check, svc)
        assert back.ok
        assert back.reboot is not None and back.reboot.startswith("server start time changed from ")
    finally:
        await server.stop()


async def test_nothing_listening(ctx: CheckContext) -> None:
    svc = service(f'{{ type = "opcua", url = "opc.tcp://127.0.0.1:{free_port()}", node = "i=2259" }}', timeout_s=2)
    result = await run_check(make_check(ctx, svc), svc)
    assert result.status is ServiceStatus.UNHEALTHY and result.failure_type is FailureType.NETWORK_PARTITION
    assert result.error is not None and result.error.startswith("cannot connect to 127.0.0.1:")
