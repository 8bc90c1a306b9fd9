"""The Labeler's suggested order: ``GET /api/plots?order=uncertainty`` on MariaDB and SQLite.

Unlabelled kept images come most uncertain first (smallest margin between the top two
weights of the inference that kept them), at most ``per_run`` images of one run per tier;
imported images without weights come last; pages do not overlap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hydra_common.db.schema import (
    InferenceStatus,
    KeptReason,
    Plot,
    PlotType,
    Role,
    RunHistory,
)
from hydra_common.ids import uuid7

# (run, chunk, Good weight, Bad weight); margin = |Good - Bad| (NoData 0).
KEPT = [
    (10, 0, 0.50, 0.50),  # margin 0.00
    (10, 1, 0.52, 0.48),  # 0.04
    (10, 2, 0.55, 0.45),  # 0.10
    (10, 3, 0.60, 0.40),  # 0.20
    (11, 0, 0.90, 0.10),  # 0.80
    (12, 0, 0.35, 0.65),  # 0.30
    (12, 1, 0.99, 0.01),  # 0.98
]


async def _seed(api: Any, pt: PlotType) -> dict[tuple[int, int], int]:
    """The kept plots (with their inferences) and one imported plot; ids by (run, chunk)."""
    plots, history = [], []
    for run, chunk, good, bad in KEPT:
        oid = str(uuid7())
        plots.append(
            Plot(
                plot_type_id=pt.id,
                run_number=run,
                chunk=chunk,
                image_path=f"plots/{pt.name}/{oid}.png",
                order_id=oid,
                kept_reason=KeptReason.UNCONFIRMED,
            )
        )
        history.append(
            RunHistory(
                order_id=oid,
                plot_type_id=pt.id,
                run_number=run,
                chunk=chunk,
                status=InferenceStatus.OK,
                verdict="Good" if good >= bad else "Bad",
                confidence=max(good, bad),
                weights={"Good": good, "Bad": bad, "NoData": 0.0},
            )
        )
    imported = Plot(
        plot_type_id=pt.id,
        run_number=0,
        image_path=f"plots/{pt.name}/imported.png",
        kept_reason=KeptReason.IMPORTED,
    )
    await api.add(*plots, imported, *history)
    ids = {(p.run_number, p.chunk): p.id for p in plots}
    ids[(0, -1)] = imported.id
    return ids


async def _check_suggested_order(api: Any) -> None:
    pt = await api.plot_type()
    ids = await _seed(api, pt)
    client = await api.as_role(Role.LABELER, (pt,))
    params = {"plot_type": pt.name, "labelled": "false", "order": "uncertainty"}

    r = await client.get("/api/plots", params=params | {"per_run": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    got = [(p["run_number"], p["chunk"]) for p in body["items"]]
    # Tier 1: the 2 most uncertain of each run, by margin (10/0, 10/1, 12/0, 11/0, 12/1);
    # tier 2: run 10's next 2 (10/2, 10/3); the imported image (no weights) last.
    assert got == [(10, 0), (10, 1), (12, 0), (11, 0), (12, 1), (10, 2), (10, 3), (0, -1)]
    assert body["total"] == 8
    margins = [p["margin"] for p in body["items"]]
    assert margins[:4] == pytest.approx([0.0, 0.04, 0.30, 0.80])
    assert margins[-1] is None

    # Pages of the order neither overlap nor skip.
    first = await client.get("/api/plots", params=params | {"per_run": 2, "limit": 3})
    second = await client.get("/api/plots", params=params | {"per_run": 2, "limit": 3, "offset": 3})
    paged = [p["id"] for p in first.json()["items"] + second.json()["items"]]
    assert paged == [ids[k] for k in got[:6]]
    assert first.json()["next"] == 3

    # Without the diversity cap, run 10's four come first.
    r = await client.get("/api/plots", params=params | {"per_run": 10})
    assert [(p["run_number"], p["chunk"]) for p in r.json()["items"]][:5] == [
        (10, 0),
        (10, 1),
        (10, 2),
        (10, 3),
        (12, 0),
    ]

    # A labelled image leaves the to-label order.
    r = await client.post("/api/labels", json=[{"plot_id": ids[(10, 0)], "label": "Bad"}])
    assert r.status_code == 200
    r = await client.get("/api/plots", params=params | {"per_run": 2})
    assert ids[(10, 0)] not in [p["id"] for p in r.json()["items"]]
    assert r.json()["items"][0]["id"] == ids[(10, 1)]

    # The order compares margins within one plot type: it needs one.
    r = await client.get("/api/plots", params={"order": "uncertainty"})
    assert r.status_code == 422 and "plot_type" in r.text
    r = await client.get("/api/plots", params=params | {"order": "sideways"})
    assert r.status_code == 422
    # The default order is unchanged: newest first, no margins.
    r = await client.get("/api/plots", params={"plot_type": pt.name, "labelled": "false"})
    assert [p["id"] for p in r.json()["items"]] == sorted(
        (i for k, i in ids.items() if k != (10, 0)), reverse=True
    )
    assert all(p["margin"] is None for p in r.json()["items"])


async def test_suggested_order_mariadb(api: Any) -> None:
    await _check_suggested_order(api)


async def test_suggested_order_sqlite(api_factory: Callable[..., Any], sqlite_url: str) -> None:
    await _check_suggested_order(await api_factory(database_url=sqlite_url))
