"""Operation handlers, one module per tag, found by the operationIds of openapi.yaml.

Each module lists its operations in ``__all__``: a handler is the function named as its
operation's operationId. The contract names operations only, never our modules.
"""

from __future__ import annotations

from collections.abc import Callable

from agentos_sessions.handlers import core, forks, health, media, sessions

MODULES = (core, forks, health, media, sessions)


def _operations() -> dict[str, Callable]:
    operations: dict[str, Callable] = {}
    for module in MODULES:
        for name in module.__all__:
            if name in operations:
                raise ImportError(
                    f"two handlers for operationId {name!r}: in {operations[name].__module__} and {module.__name__}"
                )
            operations[name] = getattr(module, name)
    return operations


OPERATIONS = _operations()


def by_operation_id(operation_id: str) -> Callable:
    """The handler of ``operation_id`` (what Connexion's resolver asks for each operation)."""
    try:
        return OPERATIONS[operation_id]
    except KeyError:
        raise AttributeError(
            f"no handler for operationId {operation_id!r}: none in agentos_sessions.handlers"
        ) from None
