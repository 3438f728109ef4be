"""Small host apps (Starlette and FastAPI) and helpers for the consent-layer tests."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from consent_mw import ConsentMiddleware
from consent_mw.settings import Settings
from consent_mw.state import SCOPE_KEY, RequestContext

ORIGIN = "http://testserver"
HEAD = "<head><title>t</title></head>"
PAGE_JA = f'<!DOCTYPE html><html lang="ja">{HEAD}<body><h1>ホーム</h1></body></html>'
PAGE_EN = f'<!DOCTYPE html><html lang="en">{HEAD}<body><h1>Home</h1></body></html>'
PAGE_NOLANG = "<!DOCTYPE html><html><head><title>t</title></head><body><p>x</p></body></html>"


async def page_ja(request: Request) -> Response:
    return HTMLResponse(PAGE_JA)


async def page_en(request: Request) -> Response:
    return HTMLResponse(PAGE_EN)


async def page_nolang(request: Request) -> Response:
    return HTMLResponse(PAGE_NOLANG)


async def stream(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        yield b"<html><body><p>streamed"
        yield b"</p></body></html>"

    return StreamingResponse(body(), media_type="text/html")


async def gzipped(request: Request) -> Response:
    return Response(gzip.compress(PAGE_EN.encode()), media_type="text/html",
                    headers={"content-encoding": "gzip"})


async def not_modified(request: Request) -> Response:
    return Response(status_code=304, headers={"etag": '"x"'})


async def json_page(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def cached(request: Request) -> Response:
    return HTMLResponse(PAGE_EN, headers={"cache-control": "public, max-age=600"})


async def etagged(request: Request) -> Response:
    return HTMLResponse(PAGE_EN, headers={"etag": '"v1"', "last-modified":
                                          "Mon, 01 Jan 2024 00:00:00 GMT"})


async def context(request: Request) -> Response:
    ctx = request.scope[SCOPE_KEY]
    assert isinstance(ctx, RequestContext)
    return JSONResponse({"decided": ctx.state.decided, "categories": dict(ctx.state.categories),
                         "visitor_id": ctx.visitor_id, "session_id": ctx.session_id,
                         "gpc": ctx.state.gpc, "locale": ctx.locale})


async def excluded(request: Request) -> Response:
    return HTMLResponse(PAGE_EN)


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text("echo:" + text + ":" + str(SCOPE_KEY in websocket.scope))
    await websocket.close()


ROUTES = [
    Route("/", page_ja, methods=["GET", "HEAD"]),
    Route("/en", page_en),
    Route("/nolang", page_nolang),
    Route("/stream", stream),
    Route("/gzip", gzipped),
    Route("/notmodified", not_modified),
    Route("/json", json_page),
    Route("/cached", cached),
    Route("/ctx", context),
    Route("/etag", etagged),
    Route("/static/page.html", excluded),
    WebSocketRoute("/ws", echo),
]


def starlette_app(settings: Settings, **kwargs: Any) -> Any:
    return Starlette(routes=ROUTES,
                     middleware=[Middleware(ConsentMiddleware, settings=settings, **kwargs)])


def fastapi_app(settings: Settings, **kwargs: Any) -> Any:
    app = FastAPI(routes=list(ROUTES))

    @app.get("/api/items")
    async def items() -> dict[str, Any]:
        return {"items": [1, 2]}

    app.add_middleware(ConsentMiddleware, settings=settings, **kwargs)
    return app


APP_FACTORIES = {"starlette": starlette_app, "fastapi": fastapi_app}


def middleware_of(client: Any) -> ConsentMiddleware:
    """The ConsentMiddleware inside a test client's app (Starlette builds its middleware stack
    on the first request; building it here makes that request use this one)."""
    app = client.app
    if isinstance(app, ConsentMiddleware):
        return app
    if app.middleware_stack is None:
        app.middleware_stack = app.build_middleware_stack()
    mw = app.middleware_stack
    while not isinstance(mw, ConsentMiddleware):
        mw = mw.app
    return mw


def cookie_values(response: Any) -> dict[str, str]:
    """Set-Cookie header values by cookie name (the whole header line)."""
    out: dict[str, str] = {}
    for line in response.headers.get_list("set-cookie"):
        out[line.split("=", 1)[0]] = line
    return out


def report_shown(client: Any, *, locale: str = "ja", path: str = "/") -> Any:
    """What banner.js does once the banner is on screen: the ``shown`` report."""
    return client.post("/_consent/shown", json={"locale": locale, "path": path},
                       headers={"origin": ORIGIN})


