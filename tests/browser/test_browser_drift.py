"""Drift, end to end in a real browser: the hall's running keeper measures a plot type whose
active model now sees other plots than its test split, and the Status page and the Library
show the drift score, the label agreement and the "retraining suggested" mark with its
evidence.

The plot type, its model, test split and recent inferences are added by this test (and
removed after it), so the shared hall's other pages keep their counts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.db.schema import (
    Classification,
    InferenceStatus,
    KeptReason,
    Label,
    Model,
    ModelEvaluation,
    ModelStatus,
    Plot,
    PlotType,
    PlotTypeClassification,
    RunHistory,
    Split,
    utcnow,
)
from hydra_common.ids import uuid7
from tests.browser.browser_seed import remove_plot_type
from tests.browser.browser_support import Hall, Tab, run_async

pytestmark = [pytest.mark.browser, pytest.mark.mysql]
LABELS = ("Good", "Bad", "NoData")


@dataclass
class Drifted:
    name: str
    plot_type_id: int
    model_id: int


async def _seed(hall: Hall) -> Drifted:
    """Test split: sure and mostly Good. Last hour: unsure, a third Bad, and experts
    disagreeing with half of the 24 verdicts they labelled."""
    name = f"DRIFT_{uuid.uuid4().hex[:6]}"
    engine = make_engine(hall.url)
    try:
        async with make_sessionmaker(engine)() as s:
            ids = dict((await s.execute(sa.select(Classification.name, Classification.id))).all())
            pt = PlotType(name=name, detector="DRIFT")
            s.add(pt)
            await s.flush()
            s.add_all(
                PlotTypeClassification(plot_type_id=pt.id, classification_id=ids[x]) for x in LABELS
            )
            model = Model(
                plot_type_id=pt.id,
                name=name.lower(),
                version=1,
                architecture="small",
                label_order=list(LABELS),
                status=ModelStatus.ACTIVE,
                promoted_at=utcnow() - timedelta(days=2),
            )
            s.add(model)
            await s.flush()
            pt.active_model_id = model.id
            for i in range(60):
                verdict = "Bad" if i % 10 == 0 else "Good"
                plot = Plot(
                    plot_type_id=pt.id,
                    image_path=f"test/{uuid7()}.png",
                    kept_reason=KeptReason.IMPORTED,
                )
                s.add(plot)
                await s.flush()
                top = 0.9 + (i % 10) / 100
                other = "Good" if verdict == "Bad" else "Bad"
                s.add(
                    ModelEvaluation(
                        model_id=model.id,
                        plot_id=plot.id,
                        true_classification_id=ids[verdict],
                        predicted_classification_id=ids[verdict],
                        weights={verdict: top, other: round(1 - top, 2), "NoData": 0.0},
                        split=Split.TEST,
                    )
                )
            now = utcnow()
            for i in range(90):
                oid = str(uuid7())
                verdict = "Bad" if i % 3 == 0 else "Good"
                top = 0.5 + (i % 10) / 100
                s.add(
                    RunHistory(
                        order_id=oid,
                        plot_type_id=pt.id,
                        run_number=80000 + i // 10,
                        chunk=i % 10,
                        status=InferenceStatus.OK,
                        model_id=model.id,
                        verdict=verdict,
                        confidence=top,
                        weights={verdict: top, "Good" if verdict == "Bad" else "Bad": 1 - top},
                        created_at=now - timedelta(seconds=30 * i),
                    )
                )
                if i < 24:
                    plot = Plot(
                        plot_type_id=pt.id,
                        run_number=80000 + i // 10,
                        chunk=i % 10,
                        image_path=f"kept/{oid}.png",
                        order_id=oid,
                        kept_reason=KeptReason.UNCONFIRMED,
                    )
                    s.add(plot)
                    await s.flush()
                    label = verdict if i % 2 else ("Good" if verdict == "Bad" else "Bad")
                    s.add(Label(plot_id=plot.id, plot_type_id=pt.id, classification_id=ids[label]))
            await s.commit()
            return Drifted(name, pt.id, model.id)
    finally:
        await engine.dispose()


@pytest.fixture
def drifted(hall: Hall) -> Iterator[Drifted]:
    d = run_async(_seed(hall))
    try:
        yield d
    finally:
        run_async(remove_plot_type(hall.url, d.plot_type_id))


def _measured(tab: Tab, name: str, deadline_s: float = 60.0) -> dict[str, Any]:
    """The plot type's drift once the hall's keeper has measured it (polled, with a deadline:
    the keeper measures every HYDRA_DRIFT_INTERVAL_SECONDS)."""
    deadline = time.monotonic() + deadline_s
    while True:
        answer = tab.page.request.get(f"/api/drift?plot_type={name}")
        assert answer.ok, answer.text()
        items = answer.json()["items"]
        if items:
            return dict(items[0])
        assert time.monotonic() < deadline, "the keeper did not measure the drift in time"
        time.sleep(0.5)


def test_status_and_library_show_drift_and_the_retraining_mark(
    hall: Hall, open_page: Callable[..., Tab], drifted: Drifted
) -> None:
    tab = open_page("/status", who="viewer")
    found = _measured(tab, drifted.name)
    assert found["model_id"] == drifted.model_id
    assert found["inferences"] == 90 and found["test_images"] == 60
    assert found["drift_score"] > 0.25 and found["retrain_suggested"] is True
    assert found["labelled"] == 24 and found["label_agreement"] == 0.5

    tab.page.reload()  # the table refreshes every minute; the figures are there now
    row = tab.page.locator(f"[data-testid=drift-row][data-plot-type={drifted.name}]")
    expect(row).to_have_attribute("data-retrain", "true")
    expect(row.get_by_test_id("drift-score")).to_have_text(f"{found['drift_score']:.2f}")
    expect(row.get_by_test_id("label-agreement")).to_contain_text("50 %")
    expect(row.get_by_test_id("retrain-suggested")).to_be_visible()
    tab.assert_no_console_errors()

    tab = open_page(f"/library?plot_type={drifted.name}", who="viewer")
    detail = tab.page.get_by_test_id("drift-detail")
    expect(detail).to_have_attribute("data-retrain", "true")
    expect(detail.get_by_test_id("retrain-suggested")).to_be_visible()
    reasons = detail.get_by_test_id("drift-reasons").locator("li")
    expect(reasons).to_have_count(2)
    expect(reasons.first).to_contain_text("PSI")
    expect(reasons.nth(1)).to_contain_text("experts agreed with 50% of 24 verdicts")
    expect(detail.get_by_test_id("drift-live").locator("rect")).to_have_count(10)
    expect(detail.get_by_test_id("drift-verdicts")).to_contain_text("Bad")
    tab.assert_no_console_errors()
