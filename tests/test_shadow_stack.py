"""Shadow evaluation through the running local stack, on MariaDB.

While ``hydra up``'s processes run (model config writer, bundled model server, keeper,
balancer, predictor, feeder, API), a second model is put in shadow through the API with a
rule ("at least 6 images"). Images fed meanwhile get the active model's verdicts, kept
images, log rows and alarms only; the shadow model's verdicts land in shadow_history and
the API's figures count them; an expert's label shows up in the label agreement; promotion
is refused until the rule holds, then one click makes the next images get the new model's
verdicts and ends the shadow.

The shadow model is the active model's graph with its label order rotated, so every
verdict of the two differs (an untrained model's outputs are close to uniform, and the
active model's thresholds are set to 0 so every verdict is confirmed and a Bad one alarms).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from hydra_common import lifecycle
from hydra_testsupport import eventually
from hydra_testsupport.rows import in_session
from hydra_testsupport.stacks import running_stack, scratch_site

pytestmark = [pytest.mark.mysql, pytest.mark.tf, pytest.mark.slow]

# The life-cycle stack test's helpers: the same plot type, seed, export and model records.
from tests.test_model_lifecycle_stack import (  # noqa: E402
    QUICK_MODEL_POLLS,
    Hall,
    _export,
    _record_model,
    seed_active_model,
)

SERVICES = ("modelconfig", "modelserver", "keeper", "balancer", "predictor", "feeder", "api")
PASSWORD = "shadow-admin-password"


def _sql(url: str, query: str, **params: Any) -> list[Any]:
    stmt = sa.text(query)
    for name, value in params.items():
        if isinstance(value, list):
            stmt = stmt.bindparams(sa.bindparam(name, expanding=True))

    async def work(session: Any) -> list[Any]:
        return list((await session.execute(stmt, params)).all())

    return list(in_session(url, work))


@pytest.fixture(scope="module")
def hall() -> Iterator[Hall]:
    with scratch_site("hydra_shadow") as site:
        labels, v1 = seed_active_model(site, "shadow-stack")

        async def confirm_everything(session: Any) -> None:
            for label in labels:
                await lifecycle.set_threshold(session, v1, label, 0.0, "shadow-stack")

        in_session(site.url, confirm_everything)
        rotated = (*labels[1:], labels[0])
        _export(site.data_dir / "models", 2, rotated)
        v2 = _record_model(site.url, 2, rotated, parent=v1)
        with running_stack(
            site,
            SERVICES,
            180,
            **QUICK_MODEL_POLLS,
            HYDRA_ADMIN_PASSWORD=PASSWORD,
            HYDRA_ALARM_BAD_COUNT="1",
            HYDRA_ALARM_WINDOW="1",
            HYDRA_ALARM_REPEAT_SECONDS="0",
        ) as stack:
            yield Hall(site.url, site.data_dir, site.input_dir, stack, labels, {1: v1, 2: v2})


def _metric(hall: Hall, service: str, name: str) -> float:
    port = hall.stack.ports.metrics[service]
    try:
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return -1.0
    found = re.search(rf"^{name} (\S+)$", body, re.M)
    return float(found.group(1)) if found else -1.0


def _admin(hall: Hall) -> httpx.Client:
    client = httpx.Client(base_url=f"http://127.0.0.1:{hall.stack.ports.api}", timeout=30)
    r = client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


def test_a_candidate_in_shadow_is_measured_then_promoted(hall: Hall) -> None:
    v1, v2 = hall.models[1], hall.models[2]
    api = _admin(hall)
    assert eventually(lambda: hall.loaded_versions() == 2)  # v2 is a candidate: loaded

    r = api.post(f"/api/models/{v2}/shadow", json={"min_images": 6})
    assert r.status_code == 201, r.text
    eventually(lambda: _metric(hall, "predictor", "hydra_predictor_shadow_models") == 1)
    during = hall.feed(8)
    assert set(eventually(lambda: hall.versions_of(during)).values()) == {1}

    # The shadow model's verdicts are recorded for every image, beside v1's.
    def shadow_rows() -> list[Any] | None:
        rows = _sql(
            hall.url,
            "SELECT rh.order_id, rh.verdict, sh.verdict, sh.active_verdict, sh.agrees,"
            " sh.image_path, sh.seconds_per_image FROM run_history rh"
            " JOIN shadow_history sh ON sh.order_id = rh.order_id AND sh.model_id = :m"
            " WHERE rh.source_path IN :paths",
            m=v2,
            paths=during,
        )
        return rows if len(rows) == len(during) else None

    rows = eventually(shadow_rows)
    rotate = dict(zip(hall.labels, (*hall.labels[1:], hall.labels[0]), strict=True))
    for _oid, active, shadow, recorded_active, agrees, image, seconds in rows:
        assert recorded_active == active
        assert shadow == rotate[active]  # same graph, rotated labels
        assert agrees == 0 and image is not None and seconds > 0

    # Verdicts, kept images, log rows and alarms are v1's alone.
    history = _sql(
        hall.url,
        "SELECT order_id, model_id, verdict, confirmed FROM run_history"
        " WHERE source_path IN :paths",
        paths=during,
    )
    assert {h[1] for h in history} == {v1}
    assert all(h[3] for h in history)  # thresholds 0: every verdict confirmed
    bad_by_v1 = {h[0] for h in history if h[2] == "Bad"}
    kept = {
        r[0]
        for r in _sql(
            hall.url,
            "SELECT order_id FROM plots WHERE order_id IN :ids",
            ids=[h[0] for h in history],
        )
    }
    assert kept == bad_by_v1
    alarmed = {
        r[0]
        for r in _sql(
            hall.url,
            "SELECT rh.order_id FROM monitoring_log ml"
            " JOIN run_history rh ON rh.id = ml.run_history_id"
            " WHERE ml.alarm = 1 AND rh.source_path IN :paths",
            paths=during,
        )
    }
    assert alarmed <= bad_by_v1
    shadow_said_bad = {r[0] for r in rows if r[2] == "Bad"}
    assert not (shadow_said_bad & (kept | alarmed))

    # The figures, from the API.
    figures = eventually(
        lambda: (f := api.get(f"/api/models/{v2}/shadow").json())["images"] >= 8 and f
    )
    assert figures["in_shadow"] is True and figures["compared"] == figures["images"]
    assert figures["agreements"] == 0 and figures["agreement"] == 0.0
    assert figures["seconds_per_image"] > 0 and figures["active_seconds_per_image"] > 0
    assert figures["disagreements"], figures
    print(
        f"shadow: {figures['images']} images, agreement {figures['agreement']}, "
        f"{figures['seconds_per_image'] * 1000:.1f} ms/image in shadow vs "
        f"{figures['active_seconds_per_image'] * 1000:.1f} ms/image active (same batches)"
    )
    image = api.get(figures["disagreements"][0]["image_url"])
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")

    # An expert's label on a kept image counts in the label agreement.
    if kept:
        plot_id = _sql(hall.url, "SELECT id FROM plots WHERE order_id = :o", o=sorted(kept)[0])[0][
            0
        ]
        r = api.post("/api/labels", json=[{"plot_id": plot_id, "label": "Bad"}])
        assert r.status_code == 200, r.text
        labelled = api.get(f"/api/models/{v2}/shadow").json()
        assert labelled["labelled"] == 1
        assert labelled["active_label_agreement"] == 1.0  # v1 said Bad
        assert labelled["label_agreement"] == 0.0  # v2 said the rotated label

    # Promotion: refused until the rule holds (it does now: 8 images), then one click.
    assert figures["promotable"] is True
    r = api.post(f"/api/models/{v2}/promote")
    assert r.status_code == 200, r.text
    assert api.get(f"/api/models/{v2}/shadow").json()["in_shadow"] is False
    from tests.test_model_lifecycle_stack import _until_served_by

    _until_served_by(hall, 2)
    after = hall.feed(3)
    assert set(eventually(lambda: hall.versions_of(after)).values()) == {2}
    api.close()


def test_the_rule_refuses_an_early_promotion(hall: Hall) -> None:
    api = _admin(hall)
    v3 = _record_model(hall.url, 3, hall.labels, parent=None)
    r = api.post(f"/api/models/{v3}/shadow", json={"min_images": 1000, "min_agreement": 0.9})
    assert r.status_code == 201, r.text
    r = api.post(f"/api/models/{v3}/promote")
    assert r.status_code == 409 and "1000 images" in r.json()["detail"], r.text
    assert api.delete(f"/api/models/{v3}/shadow").json()["in_shadow"] is False
    api.close()
