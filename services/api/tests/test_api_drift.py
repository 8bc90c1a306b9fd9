"""``GET /api/drift``: the keeper's drift figures per plot type, retraining suggested first,
on MariaDB and SQLite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hydra_common.db.schema import Model, ModelDrift, ModelStatus, PlotType, Role, utcnow


def _drift(pt: PlotType, model: Model, score: float, **figures: Any) -> ModelDrift:
    """The keeper's drift row of a model: 400 inferences and 90 test images, scored by the
    PSI of the top weight; ``figures`` sets the rest."""
    return ModelDrift(
        plot_type_id=pt.id,
        model_id=model.id,
        inferences=400,
        test_images=90,
        psi_top_weight=score,
        drift_score=score,
        computed_at=utcnow(),
        **figures,
    )


async def _check_drift_listing(api: Any) -> None:
    drifted, stable = await api.plot_type(), await api.plot_type()
    models = [
        Model(
            plot_type_id=pt.id,
            name=pt.name,
            version=3,
            architecture="small",
            status=ModelStatus.ACTIVE,
        )
        for pt in (drifted, stable)
    ]
    await api.add(*models)
    evidence = {"reasons": ["drift score 0.61 (PSI of the top weight) >= 0.25"]}
    await api.add(
        _drift(
            drifted,
            models[0],
            0.61,
            psi_verdicts=0.2,
            labelled=30,
            label_agreement=0.7,
            retrain_suggested=True,
            evidence=evidence,
        ),
        _drift(stable, models[1], 0.02, psi_verdicts=0.01, labelled=0, retrain_suggested=False),
    )
    viewer = await api.as_role(Role.VIEWER)
    r = await viewer.get("/api/drift", params={"plot_type": drifted.name})
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert item["plot_type"] == drifted.name and item["model_version"] == 3
    assert item["drift_score"] == 0.61 and item["label_agreement"] == 0.7
    assert item["retrain_suggested"] is True and item["evidence"] == evidence

    r = await viewer.get("/api/drift", params={"limit": 500})
    names = [i["plot_type"] for i in r.json()["items"]]
    assert names.index(drifted.name) < names.index(stable.name)  # suggested first
    r = await viewer.get("/api/drift", params={"retrain_suggested": "false", "limit": 500})
    names = [i["plot_type"] for i in r.json()["items"]]
    assert stable.name in names and drifted.name not in names
    stable_item = next(i for i in r.json()["items"] if i["plot_type"] == stable.name)
    assert stable_item["label_agreement"] is None and stable_item["evidence"] == {}

    r = await viewer.get("/api/drift", params={"plot_type": "no_such_type"})
    assert r.status_code == 404
    r = await api.client.get("/api/drift")  # not logged in: a read-only view
    assert r.status_code == (200 if api.settings.public_read else 401)


async def test_drift_listing_mariadb(api: Any) -> None:
    await _check_drift_listing(api)


async def test_drift_listing_sqlite(api_factory: Callable[..., Any], sqlite_url: str) -> None:
    await _check_drift_listing(await api_factory(database_url=sqlite_url))
