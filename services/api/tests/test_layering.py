"""The API's layers: routers parse, authorise, call the domain and shape the answer; the SQL
lives in ``hydra_api.domain`` (issue 16). A router, a request dependency (``deps``) or the
app factory (``main``) that builds a statement fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import hydra_api.routes

ROUTES = Path(hydra_api.routes.__file__).parent
ROUTERS = sorted(p for p in ROUTES.glob("*.py") if p.name != "__init__.py")
DOMAIN = sorted((ROUTES.parent / "domain").glob("*.py"))
DEPS = ROUTES.parent / "deps.py"
MAIN = ROUTES.parent / "main.py"
# The domain knows nothing of HTTP: no FastAPI, no request dependencies, no routers.
HTTP_MODULES = ("fastapi", "starlette", "hydra_api.deps", "hydra_api.routes")
# Only the session type may come from SQLAlchemy (a route's dependency hands one down).
ALLOWED_IMPORTS = {"sqlalchemy.ext.asyncio": {"AsyncSession"}}
# The app's state (in deps) also holds the engine and the session factory: types, no SQL.
STATE_IMPORTS = {"sqlalchemy.ext.asyncio": {"AsyncSession", "AsyncEngine", "async_sessionmaker"}}
STATEMENT_TEXT = ("text(", "select(", ".execute(")
# A router hands its session to the domain: it neither reads, writes nor commits with it.
SESSION_CALL = re.compile(r"\bsession\.\w+\(")


def _sqlalchemy_imports(
    tree: ast.Module, allowed_imports: dict[str, set[str]] = ALLOWED_IMPORTS
) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "sqlalchemy"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            allowed = allowed_imports.get(node.module or "", set())
            found += [f"{node.module}.{a.name}" for a in node.names if a.name not in allowed]
    return found


def test_there_are_routers_and_domain_modules_to_check() -> None:
    assert len(ROUTERS) >= 10 and len(DOMAIN) >= 10


def _builds_no_sql(path: Path, allowed_imports: dict[str, set[str]]) -> None:
    source = path.read_text()
    assert _sqlalchemy_imports(ast.parse(source), allowed_imports) == []
    assert [t for t in STATEMENT_TEXT if t in source] == []
    assert SESSION_CALL.findall(source) == []


@pytest.mark.parametrize("path", ROUTERS, ids=lambda p: p.name)
def test_routers_build_no_sql(path: Path) -> None:
    _builds_no_sql(path, ALLOWED_IMPORTS)


@pytest.mark.parametrize("path", [DEPS, MAIN], ids=lambda p: p.name)
def test_the_dependencies_and_the_app_build_no_sql(path: Path) -> None:
    """The caller's lookups (session cookie, single sign-on), the permission checks and the
    bootstrap admin are domain functions; deps wraps them for FastAPI, main calls them."""
    _builds_no_sql(path, STATE_IMPORTS)


def _imported_modules(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(node.module or "")
    return found


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: p.name)
def test_the_domain_knows_no_http(path: Path) -> None:
    imported = _imported_modules(ast.parse(path.read_text()))
    assert sorted(m for m in imported if m.startswith(HTTP_MODULES)) == []


def test_the_check_sees_a_statement() -> None:
    tree = ast.parse("import sqlalchemy as sa\nfrom sqlalchemy import select, text\n")
    assert _sqlalchemy_imports(tree) == ["sqlalchemy", "sqlalchemy.select", "sqlalchemy.text"]
    assert SESSION_CALL.findall("    await session.commit()\n") == ["session.commit("]
