"""The package's imports point down: the command line on top, then the app factory, then the
HTTP layers (contract, middleware, handlers), then persistence; nothing imports upward."""

from __future__ import annotations

import ast
from pathlib import Path

import agentos_sessions

PACKAGE = Path(agentos_sessions.__file__).parent
FOUNDATION = {"settings", "errors", "context", "jsoncodec", "observability"}

# What each part of the package may import of the package (besides itself).
ALLOWED = {
    "cli": {"app", "checks", "contract", "persistence", "security", "server"} | FOUNDATION,
    "checks": {"contract", "handlers", "persistence"} | FOUNDATION,
    "app": {"contract", "handlers", "middleware", "persistence", "security"} | FOUNDATION,
    "server": FOUNDATION,
    "contract": {"persistence"} | FOUNDATION,
    "middleware": FOUNDATION,
    "handlers": {"persistence", "security"} | FOUNDATION,
    "security": FOUNDATION,
    "persistence": {"settings", "jsoncodec"},
    **{name: FOUNDATION for name in FOUNDATION},
}


def _part(module: str) -> str:
    return module.removeprefix("agentos_sessions.").split(".")[0]


def _imports(path: Path) -> set[str]:
    """The parts of the package a module imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("agentos_sessions"):
            if node.module == "agentos_sessions":
                found |= {alias.name for alias in node.names}
            else:
                found.add(_part(node.module))
        elif isinstance(node, ast.Import):
            found |= {_part(alias.name) for alias in node.names if alias.name.startswith("agentos_sessions.")}
    return found


def test_every_module_imports_only_what_lies_below_it():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative == Path("__init__.py"):
            continue
        part = relative.parts[0].removesuffix(".py")
        assert part in ALLOWED, f"{relative}: a part of the package this test does not know"
        upward += [f"{relative} imports {name}" for name in sorted(_imports(path) - ALLOWED[part] - {part})]
    assert upward == []


def test_only_the_command_line_builds_the_app():
    importers = sorted(
        str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if {"app", "cli"} & _imports(path)
    )
    assert importers == ["cli.py"]
