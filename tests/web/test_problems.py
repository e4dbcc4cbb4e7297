"""Every error is a problem answer; a client that went away is not logged as a fault."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from web.problems import problem_middleware


async def test_a_client_gone_mid_request_is_not_an_unhandled_error(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def gone(request: web.Request) -> web.StreamResponse:
        raise ConnectionResetError("Connection lost")  # what aiohttp raises when the peer has left

    async def broken(request: web.Request) -> web.StreamResponse:
        raise ValueError("a bug")

    app = web.Application(middlewares=[problem_middleware])
    app.router.add_get("/gone", gone)
    app.router.add_get("/broken", broken)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.DEBUG, logger="web.problems"):
        assert (await client.get("/gone")).status == 499
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        resp = await client.get("/broken")
        assert resp.status == 500 and resp.content_type == "application/problem+json"
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == ["unhandled error"]
