"""Fixtures of the API tests: an app on the shared MariaDB database, clients, seed helpers.

Each test makes its own plot types and users (unique names), so tests share one migrated
database without seeing each other's rows.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.main import create_app
from hydra_api.security import hash_password
from hydra_api.settings import ApiSettings
from hydra_common.db.schema import (
    Classification,
    KeptReason,
    Model,
    ModelStatus,
    Plot,
    PlotType,
    PlotTypeClassification,
    Role,
    User,
    UserPermission,
)
from hydra_common.ids import uuid7
from hydra_testsupport.names import unique
from hydra_testsupport.polling import eventually_async

PASSWORD = "correct horse battery"


@functools.cache
def password_hash() -> str:
    """One argon2 hash for every test user (hashing is deliberately slow)."""
    return hash_password(PASSWORD)


@pytest.fixture
def settings_factory(mysql_url: str, tmp_path: Path) -> Callable[..., ApiSettings]:
    """Settings on the shared test database with a temporary data directory."""

    def make(**overrides: Any) -> ApiSettings:
        values: dict[str, Any] = {
            "database_url": mysql_url,
            "data_dir": tmp_path,
            "storage_dir": tmp_path / "storage",
            "secret_key": "k" * 48,
            "sse_poll_seconds": 0.1,
            "static_dir": str(tmp_path / "no-frontend"),
            # No keeper to subscribe to: the default (127.0.0.1:50052) would dial whatever
            # listens there (a developer's own `hydra up`); the push tests set their keeper.
            "keeper_address": "",
        }
        values.update(overrides)
        return ApiSettings(**values)

    return make


@dataclass
class Api:
    """A running app, a client on it, and helpers to seed the database."""

    app: Any
    client: httpx.AsyncClient
    settings: ApiSettings
    registry: CollectorRegistry
    clients: list[httpx.AsyncClient]

    @property
    def sessionmaker(self) -> Any:
        return self.app.state.hydra.sessionmaker

    def session(self) -> AsyncSession:
        return self.sessionmaker()  # type: ignore[no-any-return]

    async def plot_type(
        self, labels: tuple[str, ...] = ("Good", "Bad", "NoData"), detector: str = "CDC", **kw: Any
    ) -> PlotType:
        async with self.session() as s:
            pt = PlotType(name=unique("pt"), detector=detector, **kw)
            s.add(pt)
            await s.flush()
            ids = (
                await s.execute(sa.select(Classification.id).where(Classification.name.in_(labels)))
            ).scalars()
            s.add_all(PlotTypeClassification(plot_type_id=pt.id, classification_id=c) for c in ids)
            await s.commit()
            return pt

    async def user(self, role: Role, plot_types: tuple[PlotType, ...] = ()) -> User:
        async with self.session() as s:
            u = User(username=unique(role.value), role=role, password_hash=password_hash())
            s.add(u)
            await s.flush()
            s.add_all(UserPermission(user_id=u.id, plot_type_id=pt.id) for pt in plot_types)
            await s.commit()
            return u

    async def add(self, *rows: Any) -> None:
        async with self.session() as s:
            s.add_all(rows)
            await s.commit()

    def unique(self, prefix: str) -> str:
        return unique(prefix)

    def new_client(self, **kw: Any) -> httpx.AsyncClient:
        """Another client on the same app (its own cookie jar)."""
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver", **kw
        )
        self.clients.append(client)
        return client

    async def login(
        self, client: httpx.AsyncClient, username: str, password: str = PASSWORD
    ) -> str:
        """Log the client in; returns the CSRF token (also set on the client's headers)."""
        r = await client.post("/api/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        token: str = r.json()["csrf_token"]
        client.headers["X-CSRF-Token"] = token
        return token

    async def as_role(self, role: Role, plot_types: tuple[PlotType, ...] = ()) -> httpx.AsyncClient:
        """A new client with a session of a new user of the role.

        The session cookie is minted with the app's signer rather than through the login
        endpoint (argon2 costs most of a second per login here; test_api_auth covers login).
        """
        user = await self.user(role, plot_types)
        signer = self.app.state.hydra.signer
        token = signer.issue(user.id, user.password_hash, 3600)
        csrf = signer.csrf_token(signer.verify(token).nonce)
        client = self.new_client(cookies={"hydra_session": token, "hydra_csrf": csrf})
        client.headers["X-CSRF-Token"] = csrf
        return client

    async def active_and_candidate(self, pt: PlotType, **candidate: Any) -> tuple[Model, Model]:
        """Two models of the plot type: v1 active (served), v2 trained (with ``candidate``'s
        columns)."""
        common: dict[str, Any] = {
            "plot_type_id": pt.id,
            "name": pt.name,
            "architecture": "small",
            "label_order": ["Good", "Bad"],
        }
        v1 = Model(**common, version=1, status=ModelStatus.ACTIVE)
        v2 = Model(**common, version=2, status=ModelStatus.TRAINED, **candidate)
        await self.add(v1, v2)
        async with self.session() as s:
            row = await s.get(PlotType, pt.id)
            assert row is not None
            row.active_model_id = v1.id
            await s.commit()
        return v1, v2

    async def plots(self, pt: PlotType, n: int, run: int = 100) -> list[Plot]:
        """n kept plots of the plot type, runs run, run+1, ..."""
        rows = [
            Plot(
                plot_type_id=pt.id,
                run_number=run + i,
                chunk=i,
                image_path=f"plots/{pt.name}/2024-05-01/{uuid7()}.png",
                kept_reason=KeptReason.UNBIASED,
            )
            for i in range(n)
        ]
        await self.add(*rows)
        return rows

    async def class_id(self, name: str) -> int:
        async with self.session() as s:
            cid = await s.scalar(sa.select(Classification.id).where(Classification.name == name))
            assert cid is not None
            return cid


@pytest.fixture
async def api_factory(
    settings_factory: Callable[..., ApiSettings],
) -> AsyncIterator[Callable[..., Any]]:
    """Start apps (lifespan run) with given settings; all are stopped after the test."""
    stack: list[Any] = []

    async def start(**overrides: Any) -> Api:
        settings = settings_factory(**overrides)
        registry = CollectorRegistry()
        app = create_app(settings, registry)
        ctx = app.router.lifespan_context(app)
        await ctx.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        result = Api(app, client, settings, registry, [client])
        stack.append((ctx, result))
        return result

    yield start
    for ctx, started in reversed(stack):
        for client in started.clients:
            await client.aclose()
        await ctx.__aexit__(None, None, None)


@pytest.fixture
async def api(api_factory: Callable[..., Any]) -> Api:
    """An app with default test settings."""
    result: Api = await api_factory()
    return result


@dataclass
class Served:
    """An app served by uvicorn on a loopback port of its own (the SSE tests read their
    streams from a real server)."""

    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]

    async def stop(self) -> None:
        """Ask the server to exit and wait until it has (the app's lifespan ends with it)."""
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 30)


async def _serve(app: Any) -> Served:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await eventually_async(lambda: server.started, "the API started")
    return Served(f"http://127.0.0.1:{sock.getsockname()[1]}", server, task)


@pytest.fixture
def serve() -> Callable[[Any], Awaitable[Served]]:
    """Serve an app on a free loopback port: returns once it accepts connections; the test
    stops it (``Served.stop``) when it is done with it."""
    return _serve
