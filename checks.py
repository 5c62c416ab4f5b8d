"""`agentos-sessions check`: is the contract, the code and the database in agreement?

Three questions, each answered with a list of mismatches (empty: in agreement):

* the contract: ``openapi.yaml`` is a valid OpenAPI 3.1 document;
* the handlers: each operationId names a function in its controller module, whose parameters
  are the operation's path and query parameters and its body, optional where the contract
  makes them optional (Connexion silently passes a handler only the arguments it declares, so
  a parameter added to the YAML alone would be accepted, validated, then ignored);
* the database: the tables have every column the models use, are migrated to this release's
  newest revision and carry our indexes (read only: ``migrate`` changes, ``check`` does not).
"""

from __future__ import annotations

import importlib
import inspect
import keyword
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from connexion.exceptions import InvalidSpecification
from sqlalchemy import create_engine, make_url

import openapi31
from persistence import schema
from persistence.database import psycopg_url, table_schema
from persistence.models import models_for
from settings import DatabaseSettings

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def run(spec: Path, databases: dict[str, DatabaseSettings]) -> list[str]:
    """Every mismatch between the contract at ``spec``, the handlers and ``databases``."""
    document, problems = contract_mismatches(spec)
    if document is not None:
        problems += handler_mismatches(document)
    for db_id, settings in databases.items():
        problems += database_mismatches(db_id, settings)
    return problems


def contract_mismatches(path: Path) -> tuple[dict | None, list[str]]:
    """The document at ``path`` (None if unusable) and what is wrong with it."""
    try:
        return openapi31.load_document(path), []
    except (OSError, InvalidSpecification) as error:
        return None, [f"{path}: {error}"]
    except ValueError as error:  # YAML that does not parse
        return None, [f"{path}: not YAML: {error}"]


def handler_mismatches(document: dict) -> list[str]:
    """Operations whose handler is missing or takes other parameters than the operation has."""
    problems = []
    for method, path, operation, controller in _operations(document):
        where = f"{method.upper()} {path} ({operation.get('operationId')})"
        handler, problem = _handler(operation, controller)
        if handler is None:
            problems.append(f"{where}: {problem}")
            continue
        problems += [f"{where}: {problem}" for problem in _signature_mismatches(document, operation, path, handler)]
    return problems


def _operations(document: dict) -> Iterator[tuple[str, str, dict, str | None]]:
    for path, item in document.get("paths", {}).items():
        for method in HTTP_METHODS:
            if method in item:
                operation = item[method]
                controller = operation.get("x-openapi-router-controller", item.get("x-openapi-router-controller"))
                yield method, path, operation, controller


def _handler(operation: dict, controller: str | None) -> tuple[Callable | None, str]:
    operation_id = operation.get("operationId")
    if not operation_id:
        return None, "no operationId"
    module_name, _, function = (f"{controller}.{operation_id}" if controller else operation_id).rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        return None, f"module {module_name} cannot be imported: {error}"
    handler = getattr(module, function, None)
    if not callable(handler):
        return None, f"{module_name} has no function {function}"
    return handler, ""


def _signature_mismatches(document: dict, operation: dict, path: str, handler: Callable) -> Iterator[str]:
    """How the handler's parameters differ from what Connexion will pass it for ``operation``."""
    expected: dict[str, bool] = {}  # argument name -> always passed
    for parameter in _parameters(document, operation, path):
        if parameter["in"] in ("path", "query"):
            has_default = "default" in _schema_of(document, parameter)
            expected[_argument(parameter["name"])] = parameter.get("required", False) or has_default
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


def _argument(name: str) -> str:
    """The Python argument Connexion passes a parameter as (its ``pythonic`` sanitiser)."""
    argument = name.replace("-", "_").replace("[", "_").replace("]", "")
    return f"{argument}_" if keyword.iskeyword(argument) else argument


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
