"""`agentos-sessions check`: is the contract, the code and the database in agreement?

Three questions, each answered with a list of mismatches (empty: in agreement):

* the contract: ``openapi.yaml`` is a valid OpenAPI 3.1 document;
* the handlers: each operationId names a handler (``handlers.OPERATIONS``), whose parameters
  are the operation's path and query parameters and its body, optional where the contract
  makes them optional (Connexion silently passes a handler only the arguments it declares, so
  a parameter added to the YAML alone would be accepted, validated, then ignored);
* the database: the tables have every column the models use, are migrated to this release's
  newest revision and carry our indexes (read only: ``migrate`` changes, ``check`` does not).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from connexion.decorators.parameter import sanitized
from connexion.exceptions import InvalidSpecification
from sqlalchemy import create_engine, make_url

from agentos_sessions import handlers
from agentos_sessions.contract.spec import load_document
from agentos_sessions.persistence import schema
from agentos_sessions.persistence.database import psycopg_url, table_schema
from agentos_sessions.persistence.models import models_for
from agentos_sessions.settings import DatabaseSettings

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def run(spec: Traversable, databases: dict[str, DatabaseSettings]) -> list[str]:
    """Every mismatch between the contract at ``spec``, the handlers and ``databases``."""
    document, problems = contract_mismatches(spec)
    if document is not None:
        problems += handler_mismatches(document)
    for db_id, settings in databases.items():
        problems += database_mismatches(db_id, settings)
    return problems


def contract_mismatches(path: Traversable) -> tuple[dict | None, list[str]]:
    """The document at ``path`` (None if unusable) and what is wrong with it."""
    try:
        return load_document(path), []
    except (OSError, InvalidSpecification) as error:
        return None, [f"{path}: {error}"]
    except ValueError as error:  # YAML that does not parse
        return None, [f"{path}: not YAML: {error}"]


def handler_mismatches(document: dict) -> list[str]:
    """Operations whose handler is missing or takes other parameters than the operation has."""
    problems = []
    for method, path, operation in _operations(document):
        where = f"{method.upper()} {path} ({operation.get('operationId')})"
        handler, problem = _handler(operation)
        if handler is None:
            problems.append(f"{where}: {problem}")
            continue
        problems += [f"{where}: {problem}" for problem in _signature_mismatches(document, operation, path, handler)]
    return problems


def _operations(document: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in document.get("paths", {}).items():
        for method in HTTP_METHODS:
            if method in item:
                yield method, path, item[method]


def _handler(operation: dict) -> tuple[Callable | None, str]:
    operation_id = operation.get("operationId")
    if not operation_id:
        return None, "no operationId"
    handler = handlers.OPERATIONS.get(operation_id)
    if handler is None:
        return None, f"no handler: no module of agentos_sessions.handlers lists {operation_id} in its __all__"
    return handler, ""


def _signature_mismatches(document: dict, operation: dict, path: str, handler: Callable) -> Iterator[str]:
    """How the handler's parameters differ from what Connexion will pass it for ``operation``."""
    expected: dict[str, bool] = {}  # argument name -> always passed
    for parameter in _parameters(document, operation, path):
        if parameter["in"] in ("path", "query"):
            has_default = "default" in _schema_of(document, parameter)
            expected[sanitized(parameter["name"])] = parameter.get("required", False) or has_default
    body = _resolved(document, operation.get("requestBody"))
    if body is not None:
        expected["body"] = body.get("required", False)
    signature = inspect.signature(handler)
    declared = {
        name: parameter
        for name, parameter in signature.parameters.items()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }
    name = handler.__qualname__
    for argument, always in expected.items():
        parameter = declared.get(argument)
        if parameter is None:
            yield f"{name}() has no parameter {argument!r}: Connexion would drop it"
        elif not always and parameter.default is parameter.empty:
            yield f"{name}() requires {argument!r}, which the contract makes optional (give it a default)"
    for argument in declared.keys() - expected.keys():
        yield f"{name}() takes {argument!r}, which the operation does not have"


def _parameters(document: dict, operation: dict, path: str) -> list[dict]:
    """The operation's parameters, its path item's included (the operation's win)."""
    item = document["paths"][path]
    parameters = {}
    for parameter in [*item.get("parameters", []), *operation.get("parameters", [])]:
        parameter = _resolved(document, parameter)
        parameters[(parameter["name"], parameter["in"])] = parameter
    return list(parameters.values())


def _schema_of(document: dict, parameter: dict) -> dict:
    if "schema" in parameter:
        return _resolved(document, parameter["schema"])
    return _resolved(document, next(iter(parameter.get("content", {}).values()), {}).get("schema", {}))


def _resolved(document: dict, node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def database_mismatches(db_id: str, settings: DatabaseSettings) -> list[str]:
    """What keeps a configured database from being served as this release expects."""
    url = make_url(settings.url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        return [f"database {db_id!r}: no SQLite file {url.database!r} (agentos-sessions migrate creates it)"]
    m = models_for(settings.session_table, settings.runs_table, table_schema(settings))
    engine = create_engine(psycopg_url(url))
    try:
        with engine.connect() as db:
            return [f"database {db_id!r}: {problem}" for problem in schema.differences(db, m)]
    finally:
        engine.dispose()
