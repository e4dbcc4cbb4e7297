"""A small typed route table: validation, roles and the OpenAPI document from one place.

Each API module declares its routes in a `Routes` of its own; `create_app` joins them into one
`Api`. A handler's body and query models are read from its annotation, `Call[Body, Query]`, so
the declaration cannot disagree with the handler and mypy checks every field the handler reads.
"""

from __future__ import annotations

import inspect
import json
import re
import time
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from caserecord.audit import Actor
from caserecord.errors import Forbidden, Unauthenticated
from web.problems import ProblemError
from web.services import IDENTITY, SERVICES, Identity, Services

MAX_ID = 2**31 - 1
_PARAM = re.compile(r"\{(\w+)\}")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_ID = re.compile(r"[0-9]{1,10}")  # ASCII digits only: str.isdigit() also takes "²" and "٣"

B = TypeVar("B")
Q = TypeVar("Q")


@dataclass
class Call(Generic[B, Q]):
    """One validated API call, as handed to a handler: `body` and `query` are already models."""

    request: web.Request
    svc: Services
    identity: Identity | None
    path: dict[str, int]
    body: B
    query: Q
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def actor(self) -> Actor:
        if self.identity is None:
            raise Unauthenticated("sign in first")
        return self.identity.actor


Handler = Callable[[Call[Any, Any]], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Callable[..., Awaitable[web.StreamResponse]])
Roles = tuple[str, ...] | None  # None: no sign-in needed
Model = type[BaseModel] | None


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    roles: tuple[str, ...] | None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    many: bool = False
    status: int = 200
    media: str = "application/json"
    errors: tuple[int, ...] = ()
    tag: str = "api"


def _models(fn: Callable[..., Any]) -> tuple[type[BaseModel] | None, type[BaseModel] | None]:
    """Return the body and query models a handler's `Call[Body, Query]` parameter names."""
    first = next(iter(inspect.signature(fn).parameters))
    args = typing.get_args(typing.get_type_hints(fn)[first])
    found: list[type[BaseModel] | None] = []
    for arg in args or (None, None):
        if arg is None or arg is type(None):
            found.append(None)
        elif isinstance(arg, type) and issubclass(arg, BaseModel):
            found.append(arg)
        else:
            raise TypeError(f"{fn.__name__}: Call[...] takes pydantic models or None, not {arg!r}")
    return found[0], found[1]


class Routes:
    """The routes one module declares (nothing is mounted until `create_app` builds the Api)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.routes: list[Route] = []

    def get(self, path: str, roles: Roles, response: Model = None, **kw: Any) -> Callable[[H], H]:
        """Declare a GET route; its summary in the OpenAPI document is the handler's docstring."""
        return self._add("GET", path, roles, response, **kw)

    def post(self, path: str, roles: Roles, response: Model = None, **kw: Any) -> Callable[[H], H]:
        return self._add("POST", path, roles, response, **kw)

    def patch(self, path: str, roles: Roles, response: Model = None, **kw: Any) -> Callable[[H], H]:
        return self._add("PATCH", path, roles, response, **kw)

    def delete(self, path: str, roles: Roles, response: Model = None, **kw: Any) -> Callable[[H], H]:
        return self._add("DELETE", path, roles, response, **kw)

    def _add(self, method: str, path: str, roles: Roles, response: Model, **kw: Any) -> Callable[[H], H]:
        """Declare a route; `kw` are Route's options (many, status, media, errors, tag)."""
        kw["tag"] = kw.get("tag") or self.tag

        def deco(fn: H) -> H:
            doc = inspect.getdoc(fn)
            if not doc:
                raise TypeError(f"{fn.__name__}: an API handler's docstring is its summary")
            body, query = _models(fn)
            summary = doc.splitlines()[0].removesuffix(".")
            self.routes.append(Route(method, path, fn, summary, roles, body, query, response, **kw))
            return fn

        return deco


def parse_id(raw: str) -> int | None:
    """Return `raw` as a record id (ASCII digits, 1 to MAX_ID), or None."""
    return int(raw) if _ID.fullmatch(raw) and 1 <= int(raw) <= MAX_ID else None


def client_ip(request: web.Request) -> str | None:
    """Return the peer address (a proxy's X-Forwarded-For is not trusted by default)."""
    return request.remote


def json_response(model: BaseModel | Sequence[BaseModel] | None, status: int = 200) -> web.Response:
    """Serialize a pydantic model (or list of them) as JSON."""
    if model is None:
        return web.Response(status=status)
    if not isinstance(model, BaseModel):
        text = "[" + ",".join(m.model_dump_json() for m in model) + "]"
    else:
        text = model.model_dump_json()
    return web.Response(status=status, text=text, content_type="application/json")


def _validation_problem(exc: ValidationError, where: str) -> ProblemError:
    errors = [
        {"loc": ".".join(str(p) for p in e["loc"]) or where, "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]
    first = errors[0] if errors else {"loc": where, "msg": "invalid"}
    at = "" if first["loc"] == where else f"{first['loc']}: "  # not "body: body: ..." for the whole body
    return ProblemError(422, "Unprocessable request", f"{where}: {at}{first['msg']}", errors=errors)


class Api:
    """The app's route table: mounts every declared route and writes the OpenAPI document."""

    def __init__(self, groups: Iterable[Routes]) -> None:
        self.routes: list[Route] = [r for g in groups for r in g.routes]

    def install(self, app: web.Application) -> None:
        for route in self.routes:
            app.router.add_route(route.method, route.path, self._wrap(route), name=_route_name(route))

    def _wrap(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            svc = request.app[SERVICES]
            started = time.perf_counter()
            status = 500
            try:
                resp = await self._dispatch(route, request, svc)
                status = resp.status
                return resp
            except ProblemError as exc:
                status = exc.response.status
                raise
            except web.HTTPException as exc:
                status = exc.status
                raise
            except Exception as exc:
                status = getattr(exc, "status", 500)
                raise
            finally:
                svc.metrics.requests.labels(route.method, route.path, str(status)).inc()
                svc.metrics.latency.labels(route.path).observe(time.perf_counter() - started)

        return handle

    async def _dispatch(self, route: Route, request: web.Request, svc: Services) -> web.StreamResponse:
        identity = request.get(IDENTITY)
        if route.roles is not None:
            if identity is None:
                raise Unauthenticated("sign in first (session cookie or bearer token)")
            if identity.actor.role not in route.roles:
                raise Forbidden(f"this needs the role {' or '.join(route.roles)}")
        path: dict[str, int] = {}
        tokens: dict[str, str] = {}
        for name in _PARAM.findall(route.path):
            raw = request.match_info.get(name, "")
            if name.endswith("_token"):  # a secret string in the path (a join link)
                if not _TOKEN.fullmatch(raw):
                    raise ProblemError(404, "Not found", f"{name} is not a valid link")
                tokens[name] = raw
                continue
            found = parse_id(raw)
            if found is None:
                raise ProblemError(404, "Not found", f"{name} must be a positive whole number, not {raw!r}")
            path[name] = found
        query: BaseModel | None = None
        if route.query is not None:
            try:
                query = route.query.model_validate(dict(request.query))
            except ValidationError as exc:
                raise _validation_problem(exc, "query") from exc
        body = await _read_body(request, route.body) if route.body is not None else None
        return await route.handler(Call(request, svc, identity, path, body, query, tokens))

    def openapi(self) -> dict[str, Any]:
        """Return the OpenAPI 3.1 document for every route."""
        models: list[tuple[type[BaseModel], Any]] = [(Problem, "serialization")]
        for r in self.routes:
            if r.body is not None:
                models.append((r.body, "validation"))
            if r.response is not None:
                models.append((r.response, "serialization"))
        _, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
        paths: dict[str, dict[str, Any]] = {}
        for r in self.routes:
            paths.setdefault(r.path, {})[r.method.lower()] = _operation(r)
        return {
            "openapi": "3.1.0",
            "info": {
                "title": "Lastmile API",
                "version": "0.1.0",
                "description": "Office hours, bookings and visits. Errors are application/problem+json.",
            },
            "paths": paths,
            "components": {
                "schemas": defs.get("$defs", {}),
                "securitySchemes": {
                    "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "lastmile_session"},
                    "bearerAuth": {"type": "http", "scheme": "bearer"},
                },
            },
        }


class Problem(BaseModel):
    """An error: RFC 9457 problem details."""

    type: str = "about:blank"
    status: int
    title: str
    detail: str


async def _read_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    ctype = request.content_type
    if ctype != "application/json":
        raise ProblemError(415, "Unsupported Media Type", f"send application/json, not {ctype or 'nothing'}")
    raw = await request.read()  # aiohttp answers 413 past client_max_size
    try:
        json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ProblemError(400, "Malformed JSON", f"the body is not valid JSON: {exc}") from exc
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise _validation_problem(exc, "body") from exc


def _route_name(route: Route) -> str:
    return route.handler.__name__


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


_ERROR_TEXT: Mapping[int, str] = {
    400: "Malformed request",
    401: "Not signed in",
    403: "Not allowed for this caller",
    404: "No such record (or not visible to the caller)",
    409: "Conflicts with the current state",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Invalid input",
}


def _operation(r: Route) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": r.summary, "operationId": _route_name(r), "tags": [r.tag]}
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": _TOKEN.pattern}
            if name.endswith("_token")
            else {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        }
        for name in _PARAM.findall(r.path)
    ]
    if r.query is not None:
        schema = r.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    if params:
        op["parameters"] = params
    if r.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(r.body)}}}
    op["security"] = [{"cookieAuth": []}, {"bearerAuth": []}] if r.roles is not None else []
    ok: dict[str, Any] = {"description": r.summary}
    if r.response is not None:
        schema = {"type": "array", "items": _ref(r.response)} if r.many else _ref(r.response)
        ok["content"] = {r.media: {"schema": schema}}
    elif r.media != "application/json":
        ok["content"] = {r.media: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(r.status): ok}
    codes = set(r.errors)
    if r.roles is not None:
        codes |= {401, 403}
    if r.body is not None:
        codes |= {400, 413, 415, 422}
    if r.query is not None:
        codes.add(422)
    if _PARAM.search(r.path):
        codes.add(404)
    for code in sorted(codes):
        responses[str(code)] = {
            "description": _ERROR_TEXT.get(code, "Error"),
            "content": {"application/problem+json": {"schema": _ref(Problem)}},
        }
    op["responses"] = responses
    return op
