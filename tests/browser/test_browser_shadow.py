"""Shadow evaluation in the Library: an admin puts a trained model in shadow with a rule,
the real keeper records shadow results as reports arrive, the page shows the agreement,
the cost per image and the disagreements as images, and one click promotes the model once
the rule holds."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from hydra.v1 import order_pb2, report_pb2
from PIL import Image
from playwright.sync_api import expect

from hydra_common.db.engine import make_engine
from hydra_common.db.schema import (
    Classification,
    Model,
    ModelStatus,
    PlotType,
    PlotTypeClassification,
)
from hydra_common.ids import uuid7
from hydra_testsupport.rows import inserted_id
from tests.browser.browser_support import Hall, Tab, run_async

pytestmark = [pytest.mark.browser, pytest.mark.mysql]

LABELS = ["Good", "Bad"]


async def _plot_type_with_two_models(url: str) -> tuple[str, int, int]:
    """A plot type of this test's own: v1 active, v2 trained."""
    name = f"SHADOW_{uuid.uuid4().hex[:8]}"
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            pid = inserted_id(
                await conn.execute(sa.insert(PlotType).values(name=name, detector="FCAL"))
            )
            for label in LABELS:
                cid = await conn.scalar(
                    sa.select(Classification.id).where(Classification.name == label)
                )
                await conn.execute(
                    sa.insert(PlotTypeClassification).values(
                        plot_type_id=pid, classification_id=cid
                    )
                )
            ids = []
            for version, status in ((1, ModelStatus.ACTIVE), (2, ModelStatus.TRAINED)):
                result = await conn.execute(
                    sa.insert(Model).values(
                        plot_type_id=pid,
                        name=name.lower(),
                        version=version,
                        architecture="small",
                        label_order=LABELS,
                        status=status,
                    )
                )
                ids.append(inserted_id(result))
            await conn.execute(
                sa.update(PlotType).where(PlotType.id == pid).values(active_model_id=ids[0])
            )
    finally:
        await engine.dispose()
    return name, ids[0], ids[1]


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (48, 32), (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def _report(
    plot_type: str, active: tuple[int, float], shadow: tuple[int, float], chunk: int
) -> report_pb2.Report:
    """A report whose active model (id, weight of Bad) and shadow model (id, weight of Bad)
    answered for one image."""
    now = time.time_ns()
    order = order_pb2.InferenceOrder(
        order_id=uuid7(),
        plot_type=plot_type,
        run_number=72400,
        chunk=chunk,
        source_path=f"Run072400/{plot_type}_{chunk:04d}.png",
        image=_png(),
        stages=order_pb2.StageTimestamps(file_ns=now - 1_000_000, reported_ns=now),
    )
    return report_pb2.Report(
        order=order,
        status=report_pb2.REPORT_STATUS_OK,
        model_id=active[0],
        model_name=plot_type.lower(),
        model_version=1,
        labels=LABELS,
        weights=[1 - active[1], active[1]],
        predictor_id="browser-test",
        shadow=report_pb2.ShadowResult(
            model_id=shadow[0],
            model_name=plot_type.lower(),
            model_version=2,
            status=report_pb2.REPORT_STATUS_OK,
            labels=LABELS,
            weights=[1 - shadow[1], shadow[1]],
            seconds_per_image=0.0042,
            active_seconds_per_image=0.0031,
        ),
    )


def test_admin_runs_a_model_in_shadow_reads_the_figures_and_promotes_it(
    hall: Hall, open_page: Callable[..., Tab]
) -> None:
    name, v1, v2 = run_async(_plot_type_with_two_models(hall.url))
    tab = open_page(f"/library?plot_type={name}&model={v2}", who="admin")
    page = tab.page
    panel = page.get_by_test_id("shadow-panel")
    expect(panel).to_have_attribute("data-in-shadow", "false")
    page.get_by_test_id("shadow-min-images").fill("4")
    page.get_by_test_id("shadow-start").click()
    expect(panel).to_have_attribute("data-in-shadow", "true")
    expect(page.get_by_test_id("shadow-rule")).to_contain_text("at least 4 images")
    expect(page.get_by_test_id("shadow-promote")).to_be_disabled()

    # Four images through the real keeper: the shadow agrees on two, calls two others Bad.
    reports = [
        _report(name, (v1, 0.1), (v2, 0.2), 1),
        _report(name, (v1, 0.9), (v2, 0.8), 2),
        _report(name, (v1, 0.1), (v2, 0.9), 3),
        _report(name, (v1, 0.2), (v2, 0.7), 4),
    ]
    assert hall.record(reports) == [r.order.order_id for r in reports]
    expect(page.get_by_test_id("shadow-images")).to_contain_text("4 seen, 4 compared")
    expect(page.get_by_test_id("shadow-agreement")).to_contain_text("50.0 %")
    expect(page.get_by_test_id("shadow-cost")).to_contain_text("shadow 4.2 ms, active 3.1 ms")
    tiles = page.get_by_test_id("shadow-disagreement")
    expect(tiles).to_have_count(2)
    expect(tiles.first).to_contain_text("shadow Bad · active Good")
    expect(tiles.first.locator("img")).to_have_js_property("complete", True)
    assert tiles.first.locator("img").evaluate("img => img.naturalWidth") == 48
    # The verdicts stayed the active model's.
    verdicts = hall.sql(
        "SELECT DISTINCT rh.verdict, rh.model_id FROM run_history rh"
        " JOIN plot_types pt ON pt.id = rh.plot_type_id WHERE pt.name = :n",
        n=name,
    )
    assert sorted(verdicts) == [("Bad", v1), ("Good", v1)]

    # The rule holds (4 images): one click promotes, and the Library shows v2 active.
    promote = page.get_by_test_id("shadow-promote")
    expect(promote).to_be_enabled()
    promote.click()
    expect(page.locator(f"[data-testid=model-row][data-model-id='{v2}']")).to_have_attribute(
        "data-active", "true"
    )
    expect(page.get_by_test_id("shadow-panel")).to_have_count(0)  # an active model has none
    active = hall.sql("SELECT active_model_id FROM plot_types WHERE name = :n", n=name)
    assert active == [(v2,)]
    admin = hall.username("admin")
    audit = hall.sql(
        "SELECT username, action FROM audit_log WHERE entity = 'model' AND entity_id = :m",
        m=str(v2),
    )
    assert (admin, "shadow_start") in audit
    tab.assert_no_console_errors()
