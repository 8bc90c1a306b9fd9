"""The model library: models, thresholds (permissions), confusion matrix, promotion,
rollback and the training report."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from hydra_common.db.schema import (
    AuditLog,
    KeptReason,
    Model,
    ModelEvaluation,
    ModelStatus,
    Plot,
    PlotType,
    Role,
    Split,
    Threshold,
    TrainingReport,
    TrainingSet,
    TrainingSetImage,
)
from hydra_common.ids import uuid7


async def seed_models(api: Any) -> tuple[PlotType, Model, Model, list[Plot]]:
    """A plot type with an active model (v1) and a trained one (v2) with evaluations."""
    pt = await api.plot_type(labels=("Good", "Bad"))
    good, bad = await api.class_id("Good"), await api.class_id("Bad")
    ps = [
        Plot(
            plot_type_id=pt.id,
            run_number=1,
            chunk=i,
            image_path=f"plots/{pt.name}/d/{uuid7()}.png",
            kept_reason=KeptReason.BAD,
        )
        for i in range(5)
    ]
    ts = TrainingSet(
        plot_type_id=pt.id, sampling_method="undersample", class_counts={"Good": 3, "Bad": 2}
    )
    await api.add(*ps, ts)
    await api.add(
        *(
            TrainingSetImage(
                training_set_id=ts.id,
                plot_id=p.id,
                classification_id=good,
                split=Split.TRAIN,
                copies=2,
            )
            for p in ps[:3]
        )
    )
    v1, v2 = await api.active_and_candidate(
        pt, training_set_id=ts.id, sampling_method="undersample", metrics={"accuracy": 0.8}
    )
    async with api.session() as s:
        s.add(Threshold(model_id=v2.id, classification_id=bad, threshold=0.7))
        # true Good -> predicted Good at 0.95 and 0.97, Good -> Bad at 0.55, Bad -> Bad at 0.9
        for p, t, pr, w in (
            (ps[0], good, good, 0.95),
            (ps[1], good, good, 0.97),
            (ps[2], good, bad, 0.55),
            (ps[3], bad, bad, 0.9),
        ):
            weights = {"Good": w, "Bad": 1 - w} if pr == good else {"Good": 1 - w, "Bad": w}
            s.add(
                ModelEvaluation(
                    model_id=v2.id,
                    plot_id=p.id,
                    true_classification_id=t,
                    predicted_classification_id=pr,
                    weights=weights,
                )
            )
        s.add(
            TrainingReport(
                model_id=v2.id,
                plot_id=ps[2].id,
                human_classification_id=good,
                model_classification_id=bad,
                model_weight=0.55,
            )
        )
        await s.commit()
    return pt, v1, v2, ps


async def test_models_list_detail_and_confusion(api: Any) -> None:
    pt, _v1, v2, _ = await seed_models(api)
    r = await api.client.get("/api/models", params={"plot_type": pt.name})
    items = {m["version"]: m for m in r.json()["items"]}
    assert items[1]["active"] is True and items[2]["active"] is False
    d = (await api.client.get(f"/api/models/{v2.id}")).json()
    assert d["training_set"]["size"] == 6 and d["training_set"]["sampling_method"] == "undersample"
    assert d["thresholds"] == [
        {
            "label": "Bad",
            "threshold": 0.7,
            "method": "max_f1",
            "set_by": "",
            "set_at": d["thresholds"][0]["set_at"],
        }
    ]
    c = (await api.client.get(f"/api/models/{v2.id}/confusion")).json()
    cells = {(x["true_label"], x["predicted_label"]): x for x in c["cells"]}
    assert c["total"] == 4 and c["labels"] == ["Good", "Bad"] and len(c["bin_edges"]) == 21
    assert cells[("Good", "Good")]["count"] == 2
    assert cells[("Good", "Good")]["histogram"][19] == 2  # 0.95 and 0.97
    assert cells[("Good", "Bad")]["histogram"][11] == 1  # 0.55
    assert cells[("Bad", "Bad")]["histogram"][18] == 1  # 0.9
    assert (await api.client.get("/api/models/999999999")).status_code == 404


async def test_threshold_permissions(api: Any) -> None:
    pt, _v1, v2, _ = await seed_models(api)
    url = f"/api/models/{v2.id}/thresholds/Bad"
    assert (await api.client.put(url, json={"value": 0.5})).status_code == 401
    viewer = await api.as_role(Role.VIEWER)
    assert (await viewer.put(url, json={"value": 0.5})).status_code == 403
    labeler = await api.as_role(Role.LABELER, (pt,))
    assert (await labeler.put(url, json={"value": 0.5})).status_code == 403
    other_pt = await api.plot_type()
    outsider = await api.as_role(Role.EXPERT, (other_pt,))
    assert (await outsider.put(url, json={"value": 0.5})).status_code == 403
    expert = await api.as_role(Role.EXPERT, (pt,))
    assert (await expert.put(url, json={"value": 1.5})).status_code == 422
    assert (
        await expert.put(f"/api/models/{v2.id}/thresholds/Cosmics", json={"value": 0.5})
    ).status_code == 422
    r = await expert.put(url, json={"value": 0.42})
    assert r.status_code == 200
    me = (await expert.get("/api/auth/me")).json()["username"]
    assert r.json()["method"] == "manual" and r.json()["set_by"] == me
    listed = (await api.client.get(f"/api/models/{v2.id}/thresholds")).json()["items"]
    assert listed[0]["threshold"] == 0.42
    # A new label's threshold is created.
    r = await expert.put(f"/api/models/{v2.id}/thresholds/Good", json={"value": 0.6})
    assert r.status_code == 200
    async with api.session() as s:
        entry = await s.scalar(sa.select(AuditLog).where(AuditLog.entity_id == f"{v2.id}/Bad"))
        assert entry is not None and entry.username == me
        assert entry.before == {"threshold": 0.7, "method": "max_f1"}


async def test_promote_and_rollback(api: Any) -> None:
    pt, v1, v2, _ = await seed_models(api)
    viewer = await api.as_role(Role.VIEWER)
    assert (await viewer.post(f"/api/models/{v2.id}/promote")).status_code == 403
    dev = await api.as_role(Role.DEVELOPER)
    r = await dev.post(f"/api/models/{v2.id}/promote")
    assert r.status_code == 200 and r.json()["active"] is True
    assert (await dev.post(f"/api/models/{v2.id}/promote")).status_code == 409
    async with api.session() as s:
        assert (await s.get(PlotType, pt.id)).active_model_id == v2.id
        assert (await s.get(Model, v1.id)).status == ModelStatus.RETIRED
    # v1 was never promoted through the API (no promoted_at): nothing to roll back to yet.
    assert (await dev.post(f"/api/plot-types/{pt.id}/rollback")).status_code == 409
    assert (await dev.post(f"/api/models/{v1.id}/promote")).status_code == 200
    r = await dev.post(f"/api/plot-types/{pt.id}/rollback")
    assert r.status_code == 200 and r.json()["id"] == v2.id
    async with api.session() as s:
        assert (await s.get(PlotType, pt.id)).active_model_id == v2.id
        failed = Model(
            plot_type_id=pt.id,
            name=pt.name,
            version=3,
            architecture="small",
            status=ModelStatus.FAILED,
        )
        s.add(failed)
        await s.commit()
    assert (await dev.post(f"/api/models/{failed.id}/promote")).status_code == 409


async def test_training_report_and_response(api: Any) -> None:
    pt, _v1, v2, ps = await seed_models(api)
    r = await api.client.get(f"/api/models/{v2.id}/report")
    [entry] = r.json()["items"]
    assert entry["plot_id"] == ps[2].id and entry["human_label"] == "Good"
    assert entry["model_label"] == "Bad" and entry["model_weight"] == 0.55
    url = f"/api/training-reports/{entry['id']}/response"
    labeler = await api.as_role(Role.LABELER, (pt,))
    assert (await labeler.post(url, json={"response": "dismissed"})).status_code == 403
    expert = await api.as_role(Role.EXPERT, (pt,))
    assert (await expert.post(url, json={"response": "maybe"})).status_code == 422
    r = await expert.post(url, json={"response": "model_wrong"})
    assert r.status_code == 201
    again = (await api.client.get(f"/api/models/{v2.id}/report")).json()["items"][0]
    assert [x["response"] for x in again["responses"]] == ["model_wrong"]
    still_open = await api.client.get(f"/api/models/{v2.id}/report", params={"open_only": True})
    assert still_open.json()["total"] == 0
