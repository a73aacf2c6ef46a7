"""A client that goes away mid-answer is not an engine error (core/api.py's error middleware)."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from core.api import _errors


async def test_a_client_gone_during_the_answer_is_no_error_log(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(_request: web.Request) -> web.StreamResponse:
        # What ws.prepare raises when the console quit while its stream was being set up.
        raise aiohttp.ClientConnectionResetError("Cannot write to closing transport")

    with caplog.at_level(logging.DEBUG, logger="core.api"):
        response = await _errors(make_mocked_request("GET", "/api/stream"), handler)
    assert response.status == 503
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_real_failure_is_still_logged_and_answered_500(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(_request: web.Request) -> web.StreamResponse:
        raise KeyError("bug")

    with caplog.at_level(logging.DEBUG, logger="core.api"):
        response = await _errors(make_mocked_request("GET", "/api/services"), handler)
    assert response.status == 500
    assert [r for r in caplog.records if r.levelno == logging.ERROR]
