"""What the security tests share: an API app on MariaDB with seeded data, a client per role
(session cookie and CSRF header), and snapshots of the tables a mutation could change.

The app runs in process through httpx's ASGI transport with its lifespan started, exactly
as services/api/tests does. Sessions are minted with the app's own signer rather than
through the login endpoint (argon2 costs most of a second per login on this machine; the
login itself is tested in test_security_sessions and services/api/tests/test_api_auth).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hydra_api.main import create_app
from hydra_api.security import hash_password
from hydra_api.settings import ApiSettings
from hydra_common.db.schema import (
    Classification,
    InferenceStatus,
    KeptReason,
    Label,
    Model,
    ModelStatus,
    News,
    Plot,
    PlotType,
    PlotTypeClassification,
    Role,
    RunCondition,
    RunHistory,
    RunTime,
    Threshold,
    TrainingReport,
    TrainingRun,
    User,
    UserPermission,
    utcnow,
)
from hydra_common.ids import uuid7
from hydra_testsupport.names import unique
from hydra_testsupport.rows import add_logged

PASSWORD = "correct horse battery staple"
SECRET_KEY = "security-tests-" + "k" * 40
SERVICE_TOKEN = "hall-service-token-0123456789"

# Every role of the design, the scoped ones with and without the plot type's permission.
# key -> (role, has permission on the seeded plot type)
ROLES: dict[str, tuple[Role, bool]] = {
    "admin": (Role.ADMIN, False),
    "developer": (Role.DEVELOPER, False),
    "expert+perm": (Role.EXPERT, True),
    "expert": (Role.EXPERT, False),
    "labeler+perm": (Role.LABELER, True),
    "labeler": (Role.LABELER, False),
    "viewer": (Role.VIEWER, False),
    "liaison": (Role.LIAISON, False),
}

# The tables a mutating route may change: compared before and after every refused request.
WATCHED = (
    "audit_log",
    "label_history",
    "labels",
    "models",
    "news",
    "plot_types",
    "plots",
    "run_conditions",
    "run_history",
    "thresholds",
    "training_report_responses",
    "training_runs",
    "user_permissions",
    "users",
)


@functools.cache
def password_hash() -> str:
    """One argon2 hash for every seeded user (hashing is deliberately slow)."""
    return hash_password(PASSWORD)


@dataclass
class Seed:
    """The rows the tests aim at."""

    plot_type: PlotType  # scoped roles "+perm" may label it and change its models
    other_plot_type: PlotType  # scoped roles without "+perm" have this one instead
    model: Model  # the plot type's active model
    report_id: int
    news_id: int
    users: dict[str, User] = field(default_factory=dict)
    plots: list[Plot] = field(default_factory=list)


@dataclass
class Harness:
    """A started app, its seed, and clients."""

    app: Any
    settings: ApiSettings
    seed: Seed
    _lifespan: Any
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return self.app.state.hydra.sessionmaker  # type: ignore[no-any-return]

    def client(self, **kw: Any) -> httpx.AsyncClient:
        """A client with its own cookie jar (anonymous until given a session)."""
        c = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver", **kw
        )
        self._clients.append(c)
        return c

    def session_cookies(self, user: User) -> tuple[dict[str, str], str]:
        """Fresh session and CSRF cookies for the user, and the CSRF token."""
        signer = self.app.state.hydra.signer
        token = signer.issue(user.id, user.password_hash, 3600)
        claims = signer.verify(token)
        assert claims is not None
        csrf = signer.csrf_token(claims.nonce)
        return {"hydra_session": token, "hydra_csrf": csrf}, csrf

    def as_user(self, user: User, csrf_header: bool = True) -> httpx.AsyncClient:
        """A client logged in as the user (a new session each time)."""
        cookies, csrf = self.session_cookies(user)
        c = self.client(cookies=cookies)
        if csrf_header:
            c.headers["X-CSRF-Token"] = csrf
        return c

    def as_role(self, key: str, csrf_header: bool = True) -> httpx.AsyncClient:
        """A client of the seeded user of a ROLES key."""
        return self.as_user(self.seed.users[key], csrf_header)

    async def add(self, *rows: Any) -> None:
        """Insert rows (their ids are set afterwards)."""
        async with self.sessionmaker() as s:
            s.add_all(rows)
            await s.commit()

    async def snapshot(self, tables: tuple[str, ...] = WATCHED) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the watched tables, ordered, for before/after comparisons."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        async with self.app.state.hydra.engine.connect() as conn:
            for table in tables:
                rows = await conn.execute(sa.text(f"SELECT * FROM {table}"))
                out[table] = sorted(tuple(map(repr, r)) for r in rows.all())
        return out

    async def close(self) -> None:
        """Close the clients and run the app's shutdown."""
        for c in self._clients:
            await c.aclose()
        await self._lifespan.__aexit__(None, None, None)


def settings_for(url: str, tmp: Path, **overrides: Any) -> ApiSettings:
    """Test settings: own storage, no front end, training Jobs aimed at no cluster."""
    values: dict[str, Any] = {
        "database_url": url,
        "data_dir": tmp,
        "storage_dir": tmp / "storage",
        "secret_key": SECRET_KEY,
        "static_dir": str(tmp / "no-frontend"),
        "sse_poll_seconds": 0.2,
        "service_token": SERVICE_TOKEN,
        # No Kubernetes API server exists here: a Job launch fails and the run is FAILED,
        # which is all these tests need (no training process starts).
        "training_backend": "kubernetes",
        "kubernetes_host": "http://127.0.0.1:9",
        "keeper_address": "",  # no keeper here: dial none (the default port may be taken)
    }
    values.update(overrides)
    return ApiSettings(**values)


async def start(url: str, tmp: Path, **overrides: Any) -> Harness:
    """Create the app on url, run its start-up and seed the database."""
    settings = settings_for(url, tmp, **overrides)
    app = create_app(settings, CollectorRegistry())
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    seed = await seed_hall(app.state.hydra.sessionmaker, settings.storage_root)
    return Harness(app, settings, seed, lifespan)


@contextlib.asynccontextmanager
async def mysql_harness(prefix: str, tmp: Path, **overrides: Any) -> AsyncIterator[Harness]:
    """A harness on a fresh MariaDB database, dropped afterwards."""
    from hydra_testsupport.mysql import create_mysql_database, drop_mysql_database

    # Both run their own event loop (asyncio.run): keep them off the test's loop.
    url = await asyncio.to_thread(create_mysql_database, prefix)
    h = await start(url, tmp, **overrides)
    try:
        yield h
    finally:
        await h.close()
        await asyncio.to_thread(drop_mysql_database, url)


async def _class_ids(s: AsyncSession) -> dict[str, int]:
    rows = await s.execute(sa.select(Classification.name, Classification.id))
    return dict(rows.tuples().all())


async def new_plot_type(s: AsyncSession, labels: tuple[str, ...] = ("Good", "Bad")) -> PlotType:
    """A plot type with valid labels (flushed)."""
    ids = await _class_ids(s)
    pt = PlotType(name=unique("sec"), detector="SEC", collect_percent=10.0)
    s.add(pt)
    await s.flush()
    s.add_all(PlotTypeClassification(plot_type_id=pt.id, classification_id=ids[n]) for n in labels)
    return pt


def new_model(pt: PlotType, status: ModelStatus = ModelStatus.TRAINED, **kw: Any) -> Model:
    """A model row of the plot type (a version number nobody else uses)."""
    return Model(
        plot_type_id=pt.id,
        name=pt.name,
        version=int(uuid.uuid4().int % 2_000_000_000),
        architecture="small",
        label_order=["Good", "Bad"],
        status=status,
        **kw,
    )


def new_plot(pt: PlotType, chunk: int = 0) -> Plot:
    """A kept image row of the plot type."""
    return Plot(
        plot_type_id=pt.id,
        run_number=4242,
        chunk=chunk,
        image_path=f"plots/{pt.name}/2026-01-01/{uuid7()}.png",
        kept_reason=KeptReason.BAD,
    )


async def seed_hall(sessionmaker: async_sessionmaker[AsyncSession], storage: Path) -> Seed:
    """Plot types, models, images, labels, inferences, news and one user per role."""
    async with sessionmaker() as s:
        ids = await _class_ids(s)
        pt = await new_plot_type(s, ("Good", "Bad", "NoData"))
        other = await new_plot_type(s)
        model = new_model(pt, ModelStatus.ACTIVE, promoted_at=utcnow())
        s.add(model)
        await s.flush()
        pt.active_model_id = model.id
        s.add(Threshold(model_id=model.id, classification_id=ids["Bad"], threshold=0.6))
        plots = [new_plot(pt, i) for i in range(4)]
        s.add_all(plots)
        await s.flush()
        s.add(Label(plot_id=plots[0].id, plot_type_id=pt.id, classification_id=ids["Good"]))
        report = TrainingReport(
            model_id=model.id,
            plot_id=plots[1].id,
            human_classification_id=ids["Good"],
            model_classification_id=ids["Bad"],
            model_weight=0.8,
        )
        s.add(report)
        for i, verdict in enumerate(("Good", "Bad")):
            rh = RunHistory(
                order_id=uuid7(),
                plot_type_id=pt.id,
                status=InferenceStatus.OK,
                verdict=verdict,
                confidence=0.9,
                confirmed=True,
                weights={"Good": 0.9, "Bad": 0.1},
                thresholds={"Bad": 0.6},
                run_number=4242,
                chunk=i,
                model_id=model.id,
                source_path=f"Run4242/{pt.name}_{i:04d}.png",
            )
            await add_logged(s, rh, transition=True)
        s.add(
            RunTime(
                plot_type_id=pt.id,
                run_history_id=rh.id,
                order_id=rh.order_id,
                verdict="Bad",
                confidence=0.9,
                confirmed=True,
                run_number=4242,
                chunk=1,
                image_path=f"live/{pt.name}/{rh.order_id}.png",
                updated_at=utcnow() - timedelta(seconds=5),
            )
        )
        news = News(title="beam studies tonight", body="expect NoData", author="admin")
        s.add_all([news, RunCondition(run_number=4242, beam_current=50.0, run_type="production")])
        s.add(TrainingRun(plot_type_id=pt.id, architecture="small", requested_by="admin"))
        users: dict[str, User] = {}
        for key, (role, _perm) in ROLES.items():
            users[key] = User(
                username=unique(key.replace("+", "_")), role=role, password_hash=password_hash()
            )
        s.add_all(users.values())
        await s.flush()
        for key, (role, perm) in ROLES.items():
            if role in (Role.EXPERT, Role.LABELER):
                target = pt if perm else other
                s.add(UserPermission(user_id=users[key].id, plot_type_id=target.id))
        await s.commit()
        seed = Seed(pt, other, model, report.id, news.id, users, plots)
    # A stored image and a secret outside the storage root (for the traversal tests).
    image = storage / plots[0].image_path
    image.parent.mkdir(parents=True, exist_ok=True)
    image.write_bytes(b"\x89PNG\r\n\x1a\n stored image")
    return seed
