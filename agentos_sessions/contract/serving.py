"""Connexion's AsyncApp, serving the OpenAPI 3.1 contract with its handlers found by operationId."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import connexion
from connexion.apps.asynchronous import AsyncApi, AsyncOperation
from connexion.context import receive, scope
from connexion.decorators import StarletteDecorator
from connexion.jsonifier import Jsonifier
from connexion.middleware.main import API

from agentos_sessions import jsoncodec
from agentos_sessions.contract.spec import OpenAPI31Specification, for_connexion


class ContractApp(connexion.AsyncApp):
    """Connexion's AsyncApp for an OpenAPI 3.1 document.

    Connexion's ``add_api`` checks a document against its bundled 3.0 meta-schema as it loads it
    and so refuses 3.1 (spec-first/connexion#1396). This one registers the document as an
    :class:`OpenAPI31Specification`, checked by openapi-spec-validator, with the same options;
    Connexion's classes are not changed for anything else in the process.
    """

    def __init__(self, import_name: str, **kwargs: Any):
        super().__init__(import_name, **kwargs)
        # Operations whose handlers are decorated once (_DecoratedOnce).
        self._middleware_app.api_cls = _Api

    def add_api(
        self, document: dict[str, Any], *, base_path: str | None = None, name: str | None = None, **options: Any
    ) -> None:
        middleware = self.middleware
        if middleware.middleware_stack is not None:
            raise RuntimeError("Cannot add api after an application has started")
        # As Connexion's own: YAML's integer keys (an unquoted 200:) as JSON's strings; Connexion's
        # options replaced, any other keyword passed on to the middlewares.
        specification = OpenAPI31Specification(for_connexion(_string_keys(document)))
        known = {field.name for field in dataclasses.fields(middleware.options)}
        api_options = middleware.options.replace(**{key: value for key, value in options.items() if key in known})
        extra = {key: value for key, value in options.items() if key not in known}
        middleware.apis.append(API(specification, base_path=base_path, name=name, **api_options.__dict__, **extra))


def _string_keys(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(key): _string_keys(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_string_keys(item) for item in node]
    return node


class CompactJson(Jsonifier):
    """JSON as FastAPI writes it: compact, UTF-8, no trailing newline (through orjson)."""

    def dumps(self, data, **kwargs) -> bytes:
        return jsoncodec.dumps_compact(data)


class _DecoratedOnce(StarletteDecorator):
    """Connexion's decorator of a handler, with the wrapping done once, not for every request.

    Connexion 3.3 wraps the handler in its parameter and response decorators, inspecting its
    signature, and builds the operation's URI parser, again on every request (12% of the CPU of
    a get of one session). Neither depends on the request: an instance serves one operation."""

    def __call__(self, function: Callable) -> Callable:
        decorated = self.decorate(function)
        uri_parser = None

        @functools.wraps(function)
        async def wrapper(*args, **kwargs):
            nonlocal uri_parser
            uri_parser = uri_parser or self.uri_parser
            return await decorated(self.framework.get_request(uri_parser=uri_parser, scope=scope, receive=receive))

        return wrapper


class _Operation(AsyncOperation):
    @functools.cached_property
    def fn(self) -> Callable:
        return _DecoratedOnce(pythonic_params=self.pythonic_params, jsonifier=self.jsonifier)(self._fn)


class _Api(AsyncApi):
    def make_operation(self, operation) -> AsyncOperation:
        return _Operation.from_operation(operation, pythonic_params=self.pythonic_params, jsonifier=self.jsonifier)
