"""Fuzzing the API with schemathesis against its own OpenAPI schema, on MariaDB.

The app runs in a real HTTP server (uvicorn in a thread, lifespan and all) on a database
seeded with a hall's worth of rows (tests/security/support.py). Every operation gets
generated requests, first authenticated as an admin (a fresh session cookie and its CSRF
header for each request, so a fuzzed logout or password change cannot end the run), then as
a labeller with one plot type's permission, then anonymous, then schema-violating ones as
admin. Every answer must be no 5xx, have a status code the schema documents and a body that
conforms to it, and come within ``MAX_SECONDS``.

Not fuzzed: ``GET /api/events`` (a server-sent event stream never ends; its behaviour is
tested in services/api/tests/test_api_runtime.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from prometheus_client import CollectorRegistry
from schemathesis import GenerationMode
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from hydra_api.main import create_app
from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.db.schema import Role, User, UserPermission
from hydra_common.launcher import free_port
from hydra_testsupport.mysql import create_mysql_database, drop_mysql_database

ROOT = Path(__file__).resolve().parents[1]

from tests.security import support as sup  # noqa: E402

pytestmark = [pytest.mark.mysql, pytest.mark.slow]

EXCLUDED = {"GET /api/events"}
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Examples per operation in each part. Operations with few possible inputs (no parameters)
# run fewer, so the total is checked, not assumed.
PARTS = (
    ("admin", GenerationMode.POSITIVE, 18),
    ("labeler", GenerationMode.POSITIVE, 6),
    ("anonymous", GenerationMode.POSITIVE, 8),
    ("admin", GenerationMode.NEGATIVE, 6),
)
MIN_CASES = 1000
FUZZ_ADMIN_ID = 2_000_000_001  # far from the ids a fuzzer tries, so it never edits itself
FUZZ_LABELER_ID = 2_000_000_002
MAX_SECONDS = 10.0  # per answer, on a loaded 2-core CI machine: a hang, not a slow query


@dataclass
class Server:
    app: Any
    base_url: str
    admin: User
    labeler: User


async def _seed(url: str, tmp: Path) -> tuple[User, User]:
    engine = make_engine(url)
    try:
        sessions = make_sessionmaker(engine)
        seed = await sup.seed_hall(sessions, tmp / "storage")
        async with sessions() as s:
            admin = User(
                id=FUZZ_ADMIN_ID,
                username="fuzz_admin",
                role=Role.ADMIN,
                password_hash=sup.password_hash(),
            )
            labeler = User(
                id=FUZZ_LABELER_ID,
                username="fuzz_labeler",
                role=Role.LABELER,
                password_hash=sup.password_hash(),
            )
            s.add_all([admin, labeler])
            await s.flush()
            s.add(UserPermission(user_id=labeler.id, plot_type_id=seed.plot_type.id))
            await s.commit()
            for user in (admin, labeler):
                await s.refresh(user)
                s.expunge(user)
            return admin, labeler
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("fuzz")
    url = create_mysql_database("hydra_fuzz")
    admin, labeler = asyncio.run(_seed(url, tmp))
    app = create_app(sup.settings_for(url, tmp), CollectorRegistry())
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, lifespan="on", access_log=False
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name="fuzz-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    try:
        yield Server(app, f"http://127.0.0.1:{port}", admin, labeler)
    finally:
        uv.should_exit = True
        thread.join(30)
        drop_mysql_database(url)


def _operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_dict(app.openapi())
    ops = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    return [op for op in ops if op.label not in EXCLUDED]


def _fuzz(server: Server, op: Any, who: str, mode: GenerationMode, examples: int) -> Counter[int]:
    """Run one operation's generated cases; returns the status codes seen."""
    statuses: Counter[int] = Counter()
    http = requests.Session()
    signer = server.app.state.hydra.signer

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        headers: dict[str, str] = {}
        cookies: dict[str, str] = {}
        if who in ("admin", "labeler"):
            user = server.admin if who == "admin" else server.labeler
            token = signer.issue(user.id, user.password_hash, 600)
            claims = signer.verify(token)
            csrf = signer.csrf_token(claims.nonce)
            cookies = {"hydra_session": token, "hydra_csrf": csrf}
            headers = {"X-CSRF-Token": csrf}
        started = time.monotonic()
        response = case.call(
            base_url=server.base_url, session=http, headers=headers, cookies=cookies, timeout=60
        )
        took = time.monotonic() - started
        assert took < MAX_SECONDS, f"{case.method} {case.formatted_path}: {took:.1f} s"
        statuses[response.status_code] += 1
        if mode == GenerationMode.NEGATIVE:
            # Schema-violating requests: no 5xx is the contract (the body of a refusal is
            # FastAPI's 422 shape, which the schema documents).
            case.validate_response(response, checks=[not_a_server_error])
        else:
            case.validate_response(response, checks=CHECKS)

    try:
        run()
    finally:
        http.close()
    return statuses


def test_schema_has_the_operations(server: Server) -> None:
    labels = {op.label for op in _operations(server.app)}
    assert len(labels) >= 35
    assert {"POST /api/labels", "PATCH /api/users/{user_id}", "GET /api/files/{path}"} <= labels


@pytest.mark.parametrize(("who", "mode", "examples"), PARTS, ids=lambda v: str(v))
def test_fuzz(server: Server, who: str, mode: GenerationMode, examples: int) -> None:
    totals: Counter[int] = Counter()
    failures: dict[str, str] = {}
    for op in _operations(server.app):
        try:
            totals += _fuzz(server, op, who, mode, examples)
        except Unsatisfiable:
            # No schema-violating request exists for it (e.g. no parameters, no body).
            assert mode == GenerationMode.NEGATIVE, op.label
        except Exception as exc:  # collect every operation's failure, then report them all
            failures[op.label] = f"{type(exc).__name__}: {str(exc)[:1500]}"
    _CASES[(who, str(mode))] = sum(totals.values())
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert not [s for s in totals if s >= 500], totals
    if who == "anonymous":
        assert totals[401] > 0  # the admin-only operations refused the anonymous caller
    elif who == "labeler":
        assert totals[403] > 0  # the admin-only operations refused the labeller
        assert sum(n for s, n in totals.items() if 200 <= s < 300) > 0
    else:
        assert sum(n for s, n in totals.items() if 200 <= s < 300) > 0


_CASES: dict[tuple[str, str], int] = {}


def test_enough_cases_in_total() -> None:
    # Runs after the parts (file order); skipped alone so it never fails for the wrong reason.
    if len(_CASES) < len(PARTS):
        pytest.skip("run with the fuzzing parts")
    print(f"schemathesis cases: {_CASES} = {sum(_CASES.values())}")
    assert sum(_CASES.values()) >= MIN_CASES, _CASES
