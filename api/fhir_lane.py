"""The FHIR interactions served without FastAPI's per-request route search and dependency graph.

A read by id spent about a third of its server CPU in FastAPI between the middleware and the
handler: walking the included routers, solving the same small dependency graph on every request,
an exit stack per request (py-spy under wrk, bench/RESULTS.md). Every FHIR interaction route
(api/interactions/) takes its arguments from one small vocabulary: the Request, path parameters, the
parsed body, the settings, the caller and the request's repository. The lane is one route placed
first in the app's router: for a request whose route takes only that vocabulary it calls the very
same endpoint, with the arguments made by the same functions FastAPI would call (api.dependencies,
api.body), in the order FastAPI resolves them. Everything else goes on to FastAPI unchanged.

Which route answers is still decided as the router decides it, first match in the app's order: the
lane tries the routes it serves in that order (`/fhir/SearchParameter/{id}` before `read`), and
remembers, for each, the earlier routes it does not serve whose paths could overlap it
(`/fhir/$worklist`, which takes query parameters, before `search`): when one of those matches, it
steps aside. The OpenAPI document is untouched: the routes stay declared where they are, and the
lane is not an APIRoute.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound, get_route_path
from starlette.types import Receive, Scope, Send

from api import services
from api.body import PatchBody, ResourceBody, patch_body, resource_body
from api.dependencies import PrincipalDep, RepositoryDep, SettingsDep, get_principal, open_repository

_PLAN = "puente.lane"


class _Call:
    """What one request's arguments are made from; the caller is asked for once, as FastAPI caches it."""

    def __init__(self, request: Request, stack: AsyncExitStack) -> None:
        self.request = request
        self.stack = stack
        self._principal: Any = None

    async def principal(self) -> Any:
        if self._principal is None:
            self._principal = await get_principal(self.request)
        return self._principal


Source = Callable[[_Call], Awaitable[Any]]


async def _request(call: _Call) -> Any:
    return call.request


async def _settings(call: _Call) -> Any:
    return services.of(call.request).settings


async def _principal(call: _Call) -> Any:
    return await call.principal()


async def _repository(call: _Call) -> Any:
    principal = await call.principal()
    return await call.stack.enter_async_context(open_repository(call.request, principal))


async def _resource(call: _Call) -> Any:
    return await resource_body(call.request)


async def _patch(call: _Call) -> Any:
    return await patch_body(call.request)


# The dependencies the lane makes itself, by the annotation a handler declares them with.
_SOURCES: dict[Any, Source] = {
    RepositoryDep: _repository,
    SettingsDep: _settings,
    PrincipalDep: _principal,
    ResourceBody: _resource,
    PatchBody: _patch,
}


def _path_param(name: str) -> Source:
    async def source(call: _Call) -> Any:
        return call.request.scope["path_params"][name]

    return source


class _Template:
    """A route's path pattern, matched as the route itself would (its regex, its convertors), without
    the lookups through FastAPI's route context on every request."""

    def __init__(self, route: Any) -> None:
        self.route = route
        self.path: str = getattr(route, "path", "") or ""
        self.regex = getattr(route, "path_regex", None)
        self.convertors = getattr(route, "param_convertors", {})
        self.methods = route.methods

    def matches(self, scope: Scope) -> dict[str, Any] | None:
        """The path parameters when this route takes the request (path and method), else None."""
        if self.regex is None:  # not a FastAPI route (a mount): ask it
            match, child = self.route.matches(scope)
            return child.get("path_params", {}) if match is Match.FULL else None
        found = self.regex.match(get_route_path(scope))
        if found is None or (self.methods and scope["method"] not in self.methods):
            return None
        return {key: self.convertors[key].convert(value) for key, value in found.groupdict().items()}


@dataclass(frozen=True)
class _Plan:
    template: _Template  # the route as the router sees it (prefix included)
    original: APIRoute  # as declared: what FastAPI puts in scope["route"] (the metrics' label)
    arguments: tuple[tuple[str, Source], ...]
    shadows: tuple[_Template, ...]  # earlier routes that could take the same paths

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        async with AsyncExitStack() as stack:
            call = _Call(request, stack)
            kwargs = {name: await source(call) for name, source in self.arguments}
            response = await self.original.endpoint(**kwargs)
        # The repository's transaction is committed above, before a byte of the answer is sent.
        await response(scope, receive, send)


def _arguments(route: Any) -> tuple[tuple[str, Source], ...] | None:
    """How to call the route's endpoint, or None when it takes anything outside the vocabulary
    (or its path has a multi-segment parameter: the lane sorts routes by their paths' depth)."""
    if ":path}" in route.path:
        return None
    params = route.param_convertors.keys()
    signature = inspect.signature(route.endpoint, eval_str=True)
    answer = signature.return_annotation
    if not (inspect.isclass(answer) and issubclass(answer, Response)):
        return None  # FastAPI would serialise whatever else it returns
    arguments: list[tuple[str, Source]] = []
    for name, parameter in signature.parameters.items():
        annotation = parameter.annotation
        if annotation is Request:
            arguments.append((name, _request))
        elif annotation is str and name in params:
            arguments.append((name, _path_param(name)))
        elif annotation in _SOURCES:
            arguments.append((name, _SOURCES[annotation]))
        else:
            return None
    return tuple(arguments)


def _segments(path: str) -> list[str]:
    return path.strip("/").split("/")


def _may_overlap(a: str | None, b: str) -> bool:
    """Whether two route templates could match one path (a parameter matches any one segment)."""
    if a is None or ":path}" in a or ":path}" in b:
        return True  # a mount or a multi-segment parameter: ask the route itself at request time
    first, second = _segments(a), _segments(b)
    return len(first) == len(second) and all(
        "{" in x or "{" in y or x == y for x, y in zip(first, second, strict=True))


class FhirLane(BaseRoute):
    def __init__(self, plans: Iterable[_Plan]) -> None:
        # By method and path depth: a read is tried against the routes of its shape only, in order.
        self._plans: dict[tuple[str, int], list[_Plan]] = {}
        for plan in plans:
            for method in plan.template.methods:
                self._plans.setdefault((method, len(_segments(plan.template.path))), []).append(plan)

    @property
    def routes_served(self) -> list[str]:
        return sorted({plan.original.name for plans in self._plans.values() for plan in plans})

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["app"].dependency_overrides:
            return Match.NONE, {}
        method = scope["method"]
        depth = len(_segments(get_route_path(scope)))
        for plan in self._plans.get((method, depth), ()):
            params = plan.template.matches(scope)
            if params is None:
                continue
            if any(earlier.matches(scope) is not None for earlier in plan.shadows):
                return Match.NONE, {}  # the router gives this path to an earlier route
            path_params = {**scope.get("path_params", {}), **params}
            return Match.FULL, {"endpoint": plan.original.endpoint, "path_params": path_params,
                                "route": plan.original, _PLAN: plan}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope[_PLAN].run(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)  # the routes it serves answer for their own names


def install(app: FastAPI) -> FhirLane:
    """Put the lane first in the app's routes, serving every /fhir route it can call directly.
    Call it after every router is included: it reads the routes' final order."""
    contexts = list(iter_route_contexts(app.routes))
    callable_ = {id(c): _arguments(c) for c in contexts
                 if isinstance(c.original_route, APIRoute) and str(c.path).startswith("/fhir")}
    plans: list[_Plan] = []
    for position, context in enumerate(contexts):
        arguments = callable_.get(id(context))
        original = context.original_route
        if arguments is None or not isinstance(original, APIRoute):
            continue
        # Earlier routes the lane serves itself are tried before this one (FhirLane.matches); the
        # others that could take the same paths are asked first.
        shadows = tuple(
            _Template(earlier) for earlier in contexts[:position]
            if callable_.get(id(earlier)) is None
            and _may_overlap(earlier.path if isinstance(earlier.original_route, APIRoute) else None, str(context.path))
            and (earlier.methods is None or bool(earlier.methods & (context.methods or set()))))
        plans.append(_Plan(_Template(context), original, arguments, shadows))
    lane = FhirLane(plans)
    app.router.routes.insert(0, lane)
    return lane
