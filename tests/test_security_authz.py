"""Authorization matrix: every mutating route x every role (and anonymous), on MariaDB.

The expected policy is written out below (``POLICY``), derived from services/api's deps and
the design: labelling per plot type; thresholds, promotion, rollback, training (and cancelling
it) and answers to the training report need an expert with the plot type's permission, a
developer or an admin; users, permissions, the hall's labels and a plot type's valid labels
and settings are the admin's; news belongs to admins, developers and liaisons; run
conditions to developers, admins and the hall's service token; a shadow model like promotion;
acknowledging an alarm to every logged-in role but a viewer. A role the table allows must
get its 2xx; any other gets 403 (401 when anonymous) and changes nothing: every watched table
is compared before and after. A new mutating route that is not in the table fails the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute

ROOT = Path(__file__).resolve().parents[1]

from hydra_common.db.schema import (  # noqa: E402
    AlarmState,
    Classification,
    ModelShadow,
    ModelStatus,
    News,
    RunCondition,
    TrainingRun,
    TrainingRunStatus,
    User,
    UserPermission,
    utcnow,
)
from hydra_common.labels import plot_type_labels  # noqa: E402
from hydra_testsupport.names import unique  # noqa: E402
from tests.security import support as sup  # noqa: E402
from tests.security.support import Harness  # noqa: E402

pytestmark = [pytest.mark.mysql]

# support.WATCHED, and the tables the label routes change.
TABLES = (
    *sup.WATCHED,
    "classifications",
    "plot_type_classifications",
    "plot_type_masks",
    "model_shadows",
    "alarm_states",
    "monitoring_log",
)

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
ANYONE = "anyone"  # no login needed
ANONYMOUS = "anonymous"

LABEL = frozenset({"admin", "developer", "expert+perm", "labeler+perm"})
MODEL = frozenset({"admin", "developer", "expert+perm"})
ADMIN = frozenset({"admin"})
MASKS = frozenset({"admin", "expert+perm"})  # masks of accepted problems
NEWS = frozenset({"admin", "developer", "liaison"})
RUN_CONDITIONS = frozenset({"admin", "developer"})
CREW = frozenset(set(sup.ROLES) - {"viewer"})  # acknowledging an alarm
ANY_USER = frozenset(sup.ROLES)

# (method, route path) -> roles allowed (keys of support.ROLES), or ANYONE.
POLICY: dict[tuple[str, str], frozenset[str] | str] = {
    ("POST", "/api/auth/login"): ANYONE,
    ("POST", "/api/auth/logout"): ANY_USER,
    ("POST", "/api/labels"): LABEL,
    ("POST", "/api/models/{model_id}/promote"): MODEL,
    ("POST", "/api/models/{model_id}/shadow"): MODEL,
    ("DELETE", "/api/models/{model_id}/shadow"): MODEL,
    ("POST", "/api/alarms/{plot_type}/acknowledge"): CREW,
    ("PUT", "/api/models/{model_id}/thresholds/{label}"): MODEL,
    ("POST", "/api/plot-types/{plot_type_id}/rollback"): MODEL,
    ("POST", "/api/training-runs"): MODEL,
    ("POST", "/api/training-runs/{run_id}/cancel"): MODEL,
    ("POST", "/api/training-reports/{report_id}/response"): MODEL,
    ("PATCH", "/api/plot-types/{plot_type_id}"): ADMIN,
    ("PUT", "/api/plot-types/{plot_type_id}/labels"): ADMIN,
    ("PUT", "/api/plot-types/{plot_type_id}/masks"): MASKS,
    ("POST", "/api/classifications"): ADMIN,
    ("PATCH", "/api/classifications/{classification_id}"): ADMIN,
    ("POST", "/api/users"): ADMIN,
    ("PATCH", "/api/users/{user_id}"): ADMIN,
    ("PUT", "/api/users/{user_id}/permissions"): ADMIN,
    ("PUT", "/api/users/{user_id}/permissions/{plot_type_id}"): ADMIN,
    ("DELETE", "/api/users/{user_id}/permissions/{plot_type_id}"): ADMIN,
    ("POST", "/api/news"): NEWS,
    ("PATCH", "/api/news/{news_id}"): NEWS,
    ("DELETE", "/api/news/{news_id}"): NEWS,
    ("POST", "/api/run-conditions"): RUN_CONDITIONS,
    ("DELETE", "/api/run-conditions/{run_condition_id}"): ADMIN,
}


@dataclass
class Call:
    """One request: method, URL, JSON body, and the status an allowed caller gets."""

    method: str
    url: str
    json: Any = None
    ok: int = 200


Builder = Callable[[Harness], Awaitable[Call]]


async def _labels(h: Harness) -> Call:
    plot = sup.new_plot(h.seed.plot_type, chunk=7)
    await h.add(plot)
    return Call("POST", "/api/labels", [{"plot_id": plot.id, "label": "Bad"}])


async def _promote(h: Harness) -> Call:
    model = sup.new_model(h.seed.plot_type)
    await h.add(model)
    return Call("POST", f"/api/models/{model.id}/promote")


async def _no_shadow(h: Harness) -> None:
    """The seeded plot type runs no shadow model (one at a time per plot type)."""
    async with h.sessionmaker() as s:
        await s.execute(
            sa.delete(ModelShadow).where(ModelShadow.plot_type_id == h.seed.plot_type.id)
        )
        await s.commit()


async def _start_shadow(h: Harness) -> Call:
    await _no_shadow(h)
    model = sup.new_model(h.seed.plot_type)
    await h.add(model)
    return Call("POST", f"/api/models/{model.id}/shadow", {}, ok=201)


async def _stop_shadow(h: Harness) -> Call:
    await _no_shadow(h)
    model = sup.new_model(h.seed.plot_type)
    await h.add(model)
    pt_id = h.seed.plot_type.id
    await h.add(ModelShadow(plot_type_id=pt_id, model_id=model.id, started_by="authz"))
    return Call("DELETE", f"/api/models/{model.id}/shadow")


async def _acknowledge(h: Harness) -> Call:
    pt = h.seed.plot_type
    async with h.sessionmaker() as s:
        await s.execute(sa.delete(AlarmState).where(AlarmState.plot_type_id == pt.id))
        s.add(AlarmState(plot_type_id=pt.id, state="raised", raised_at=utcnow()))
        await s.commit()
    return Call("POST", f"/api/alarms/{pt.name}/acknowledge")


async def _threshold(h: Harness) -> Call:
    return Call("PUT", f"/api/models/{h.seed.model.id}/thresholds/Bad", {"value": 0.7})


async def _rollback(h: Harness) -> Call:
    model = sup.new_model(h.seed.plot_type, ModelStatus.RETIRED, promoted_at=utcnow())
    await h.add(model)
    return Call("POST", f"/api/plot-types/{h.seed.plot_type.id}/rollback")


async def _training(h: Harness) -> Call:
    body = {"plot_type": h.seed.plot_type.name, "epochs": 1}
    return Call("POST", "/api/training-runs", body, ok=201)


async def _cancel(h: Harness) -> Call:
    # Running, with no process or Job here: cancelling only changes the row.
    run = TrainingRun(
        plot_type_id=h.seed.plot_type.id,
        status=TrainingRunStatus.RUNNING,
        requested_by="authz",
    )
    await h.add(run)
    return Call("POST", f"/api/training-runs/{run.id}/cancel")


async def _create_label(h: Harness) -> Call:
    body = {"name": unique("Lbl"), "alarm": True}
    return Call("POST", "/api/classifications", body, ok=201)


async def _update_label(h: Harness) -> Call:
    label = Classification(name=unique("Lbl"), color="#123456")
    await h.add(label)
    return Call("PATCH", f"/api/classifications/{label.id}", {"color": "#abcdef", "alarm": True})


async def _plot_type_labels(h: Harness) -> Call:
    label = Classification(name=unique("Lbl"), color="#123456")
    await h.add(label)
    async with h.sessionmaker() as s:
        current = [c.name for c in await plot_type_labels(s, h.seed.plot_type.id)]
    body = {"labels": [*current, label.name]}
    return Call("PUT", f"/api/plot-types/{h.seed.plot_type.id}/labels", body)


async def _masks(h: Harness) -> Call:
    mask = {"x0": 0.1, "y0": 0.1, "x1": 0.3, "y1": 0.4, "reason": "dead channel", "until_run": 9}
    return Call("PUT", f"/api/plot-types/{h.seed.plot_type.id}/masks", {"masks": [mask]})


async def _report(h: Harness) -> Call:
    url = f"/api/training-reports/{h.seed.report_id}/response"
    return Call("POST", url, {"response": "model_wrong"}, ok=201)


async def _plot_type(h: Harness) -> Call:
    return Call("PATCH", f"/api/plot-types/{h.seed.plot_type.id}", {"collect_percent": 12.5})


async def _create_user(h: Harness) -> Call:
    return Call("POST", "/api/users", {"username": unique("new"), "role": "viewer"}, ok=201)


async def _target_user(h: Harness) -> User:
    user = User(username=unique("target"), role=sup.ROLES["viewer"][0])
    await h.add(user)
    return user


async def _update_user(h: Harness) -> Call:
    user = await _target_user(h)
    return Call("PATCH", f"/api/users/{user.id}", {"role": "labeler", "display_name": "T"})


async def _permissions(h: Harness) -> Call:
    user = await _target_user(h)
    body = {"plot_types": [h.seed.plot_type.name]}
    return Call("PUT", f"/api/users/{user.id}/permissions", body)


async def _grant(h: Harness) -> Call:
    user = await _target_user(h)
    return Call("PUT", f"/api/users/{user.id}/permissions/{h.seed.plot_type.id}")


async def _revoke(h: Harness) -> Call:
    user = await _target_user(h)
    await h.add(UserPermission(user_id=user.id, plot_type_id=h.seed.plot_type.id))
    return Call("DELETE", f"/api/users/{user.id}/permissions/{h.seed.plot_type.id}")


async def _news(h: Harness) -> Call:
    return Call("POST", "/api/news", {"title": "magnet quench", "severity": "warning"}, ok=201)


async def _delete_news(h: Harness) -> Call:
    item = News(title=unique("old news"), author="admin")
    await h.add(item)
    return Call("DELETE", f"/api/news/{item.id}")


async def _expire_news(h: Harness) -> Call:
    item = News(title=unique("old news"), author="admin")
    await h.add(item)
    return Call("PATCH", f"/api/news/{item.id}", {"expires_at": utcnow().isoformat()})


async def _delete_run_conditions(h: Harness) -> Call:
    rc = RunCondition(run_number=4244, beam_current=1.0)
    await h.add(rc)
    return Call("DELETE", f"/api/run-conditions/{rc.id}")


async def _run_conditions(h: Harness) -> Call:
    body = {"run_number": 4243, "beam_current": 10.0, "run_type": "production"}
    return Call("POST", "/api/run-conditions", body, ok=201)


async def _logout(h: Harness) -> Call:
    return Call("POST", "/api/auth/logout")


BUILDERS: dict[tuple[str, str], Builder] = {
    ("POST", "/api/auth/logout"): _logout,
    ("POST", "/api/labels"): _labels,
    ("POST", "/api/models/{model_id}/promote"): _promote,
    ("POST", "/api/models/{model_id}/shadow"): _start_shadow,
    ("DELETE", "/api/models/{model_id}/shadow"): _stop_shadow,
    ("POST", "/api/alarms/{plot_type}/acknowledge"): _acknowledge,
    ("PUT", "/api/models/{model_id}/thresholds/{label}"): _threshold,
    ("POST", "/api/plot-types/{plot_type_id}/rollback"): _rollback,
    ("POST", "/api/training-runs"): _training,
    ("POST", "/api/training-runs/{run_id}/cancel"): _cancel,
    ("POST", "/api/training-reports/{report_id}/response"): _report,
    ("PATCH", "/api/plot-types/{plot_type_id}"): _plot_type,
    ("PUT", "/api/plot-types/{plot_type_id}/labels"): _plot_type_labels,
    ("PUT", "/api/plot-types/{plot_type_id}/masks"): _masks,
    ("POST", "/api/classifications"): _create_label,
    ("PATCH", "/api/classifications/{classification_id}"): _update_label,
    ("POST", "/api/users"): _create_user,
    ("PATCH", "/api/users/{user_id}"): _update_user,
    ("PUT", "/api/users/{user_id}/permissions"): _permissions,
    ("PUT", "/api/users/{user_id}/permissions/{plot_type_id}"): _grant,
    ("DELETE", "/api/users/{user_id}/permissions/{plot_type_id}"): _revoke,
    ("POST", "/api/news"): _news,
    ("PATCH", "/api/news/{news_id}"): _expire_news,
    ("DELETE", "/api/news/{news_id}"): _delete_news,
    ("POST", "/api/run-conditions"): _run_conditions,
    ("DELETE", "/api/run-conditions/{run_condition_id}"): _delete_run_conditions,
}


@pytest.fixture(scope="module")
async def harness(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    async with sup.mysql_harness("hydra_authz", tmp_path_factory.mktemp("authz")) as h:
        yield h


def mutating_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route that can change something, hidden ones included."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found.update((m, prefix + route.path) for m in (route.methods or set()) & MUTATING)
            elif hasattr(route, "original_router"):  # FastAPI >= 0.165: included lazily
                walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif hasattr(route, "routes"):  # a mount
                walk(route.routes, prefix + getattr(route, "path", ""))

    walk(app.routes, "")
    return found


async def test_policy_table_covers_every_mutating_route(harness: Harness) -> None:
    routes = mutating_routes(harness.app)
    assert routes == set(POLICY), (
        f"routes not in the policy table: {sorted(routes - set(POLICY))}; "
        f"in the table but gone: {sorted(set(POLICY) - routes)}"
    )
    assert set(BUILDERS) == {k for k, v in POLICY.items() if v != ANYONE}


async def _send(client: Any, call: Call) -> Any:
    return await client.request(call.method, call.url, json=call.json)


@pytest.mark.parametrize("route", sorted(BUILDERS), ids=lambda r: f"{r[0]} {r[1]}")
async def test_matrix(harness: Harness, route: tuple[str, str]) -> None:
    allowed = POLICY[route]
    assert isinstance(allowed, frozenset)
    wrong: list[str] = []
    for who in [ANONYMOUS, *sup.ROLES]:
        call = await BUILDERS[route](harness)
        client = harness.client() if who == ANONYMOUS else harness.as_role(who)
        before = await harness.snapshot(TABLES)
        r = await _send(client, call)
        if who in allowed:
            if r.status_code != call.ok:
                wrong.append(f"{who}: wanted {call.ok}, got {r.status_code} {r.text[:200]}")
            continue
        want = 401 if who == ANONYMOUS else 403
        if r.status_code != want:
            wrong.append(f"{who}: wanted {want}, got {r.status_code} {r.text[:200]}")
        after = await harness.snapshot(TABLES)
        changed = [t for t in before if before[t] != after[t]]
        if changed:
            wrong.append(f"{who}: refused but changed {changed}")
    assert not wrong, wrong


@pytest.mark.parametrize("route", sorted(BUILDERS), ids=lambda r: f"{r[0]} {r[1]}")
async def test_admin_without_csrf_header_is_refused(
    harness: Harness, route: tuple[str, str]
) -> None:
    call = await BUILDERS[route](harness)
    client = harness.as_role("admin", csrf_header=False)
    before = await harness.snapshot(TABLES)
    r = await _send(client, call)
    assert r.status_code == 403 and "CSRF" in r.json()["detail"], r.text
    assert await harness.snapshot(TABLES) == before


async def test_csrf_token_of_another_session_is_refused(harness: Harness) -> None:
    call = await _news(harness)
    client = harness.as_role("admin", csrf_header=False)
    _cookies, foreign = harness.session_cookies(harness.seed.users["developer"])
    client.headers["X-CSRF-Token"] = foreign
    before = await harness.snapshot()
    r = await _send(client, call)
    assert r.status_code == 403
    assert await harness.snapshot() == before


async def test_run_conditions_service_token(harness: Harness) -> None:
    call = await _run_conditions(harness)
    anon = harness.client()
    before = await harness.snapshot()
    for token in ("", "wrong", sup.SERVICE_TOKEN[:-1], sup.SERVICE_TOKEN + "x"):
        r = await anon.post(call.url, json=call.json, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (token, r.text)
    assert await harness.snapshot() == before
    r = await anon.post(
        call.url, json=call.json, headers={"Authorization": f"Bearer {sup.SERVICE_TOKEN}"}
    )
    assert r.status_code == 201


async def test_login_is_open_to_anyone_but_only_with_the_password(harness: Harness) -> None:
    user = harness.seed.users["viewer"]
    anon = harness.client()
    r = await anon.post("/api/auth/login", json={"username": user.username, "password": "nope"})
    assert r.status_code == 401
    r = await anon.post(
        "/api/auth/login", json={"username": user.username, "password": sup.PASSWORD}
    )
    assert r.status_code == 200 and r.json()["role"] == "viewer"


async def test_scoped_permission_is_per_plot_type(harness: Harness) -> None:
    """A labeler allowed on one plot type may not label a batch that also holds another's."""
    mine = sup.new_plot(harness.seed.plot_type, chunk=11)
    theirs = sup.new_plot(harness.seed.other_plot_type, chunk=12)
    await harness.add(mine, theirs)
    body = [{"plot_id": mine.id, "label": "Bad"}, {"plot_id": theirs.id, "label": "Bad"}]
    client = harness.as_role("labeler+perm")
    before = await harness.snapshot()
    r = await client.post("/api/labels", json=body)
    assert r.status_code == 403
    assert await harness.snapshot() == before
