"""The contract: the OpenAPI 3.1 document, checked, and Connexion's view of it.

Connexion 3.3 refuses 3.1 documents (its bundled meta-schema only admits 3.0,
spec-first/connexion#1396). :class:`OpenAPI31Specification` is Connexion's specification of a
document checked by openapi-spec-validator instead; :class:`~.serving.ContractApp` registers
the contract as one, so nothing else in the process changes.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import orjson
import yaml
from connexion.exceptions import InvalidSpecification
from connexion.spec import OpenAPISpecification
from openapi_spec_validator import OpenAPIV31SpecValidator
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

# The contract this server serves, shipped inside the package (in a checkout, a link to the
# repository's openapi.yaml, where it is edited).
CONTRACT: Traversable = resources.files("agentos_sessions") / "openapi.yaml"

# libyaml's parser when PyYAML was built with it (its wheels are), ~10x faster than the Python one.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_document(path: Traversable = CONTRACT) -> dict[str, Any]:
    """Read an OpenAPI 3.1 document and check it with openapi-spec-validator."""
    with path.open(encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=_YamlLoader)
    check_document(document)
    return document


# Digests of the documents found valid in this process. Checking one takes ~0.3 s, and every
# app checks two (the contract, then the copy made for Connexion): a process that builds apps
# again (the test suite builds hundreds) checks each content once.
_valid_documents: set[bytes] = set()


def check_document(document: dict[str, Any]) -> None:
    """Raise InvalidSpecification unless ``document`` is a valid OpenAPI 3.1 document."""
    digest = hashlib.blake2b(orjson.dumps(document, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)).digest()
    if digest in _valid_documents:
        return
    try:
        OpenAPIV31SpecValidator(document).validate()
    except OpenAPIValidationError as error:
        raise InvalidSpecification(f"Invalid OpenAPI 3.1 document: {error.message}") from error
    _valid_documents.add(digest)


def for_connexion(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` that Connexion can route: each parameter declared by ``content``
    (a JSON value in the query string) is declared as a string instead, its media type and schema
    kept as JSON Schema's ``contentMediaType`` and ``contentSchema``, which :class:`Parameters`
    validates. Connexion reads a parameter's ``schema`` only, and fails on one without."""
    document = copy.deepcopy(document)
    operations = [op for item in document["paths"].values() for op in item.values() if isinstance(op, dict)]
    declared = [*document.get("components", {}).get("parameters", {}).values()]
    declared += [param for op in operations for param in op.get("parameters", [])]
    for param in declared:
        if "content" in param:
            [(media_type, content)] = param.pop("content").items()
            param["schema"] = {
                "type": "string",
                "contentMediaType": media_type,
                "contentSchema": content.get("schema", {}),
            }
    return document


class OpenAPI31Specification(OpenAPISpecification):
    """Connexion's specification of an OpenAPI 3.1 document, checked by openapi-spec-validator
    (Connexion's own check, against the 3.0 meta-schema, refuses 3.1). The copies Connexion makes
    for each of its middlewares are of this class too."""

    @classmethod
    def _validate_spec(cls, spec: dict[str, Any]) -> None:
        check_document(spec)


def quiet_media_type_warnings() -> None:
    """Connexion warns on every request to an operation that declares several request media types
    ("this operation accepts multiple content types, using ..."), although it then picks the
    request's own: PATCH /sessions/{id} takes JSON and merge patches, by design. (Idempotent.)"""
    if _quiet_media_types not in _operation_logger.filters:
        _operation_logger.addFilter(_quiet_media_types)


_operation_logger = logging.getLogger("connexion.operations.openapi3")


def _quiet_media_types(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("this operation accepts multiple content types")
