"""The Labeler's *Suggested* order in a real browser: an expert switches from newest first to
the images the model is least sure of, a few per run, and labels the first one away.

The plot type, its kept images and the inferences that kept them are added by this test
(and removed after it), so the shared hall's other pages keep their counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.db.schema import (
    Classification,
    InferenceStatus,
    KeptReason,
    Plot,
    PlotType,
    PlotTypeClassification,
    RunHistory,
)
from hydra_common.ids import uuid7
from hydra_trainer.catalog import PlotTypeSpec
from tests.browser.browser_seed import Images, remove_plot_type
from tests.browser.browser_support import Hall, Tab, run_async

pytestmark = [pytest.mark.browser, pytest.mark.mysql]

# (run, chunk, Bad weight): margins |2 * Bad - 1|; run 500 has four near-duplicates.
KEPT = [
    (500, 0, 0.49),  # margin 0.02
    (500, 1, 0.48),  # 0.04
    (500, 2, 0.47),  # 0.06
    (500, 3, 0.46),  # 0.08
    (501, 0, 0.40),  # 0.20
    (502, 0, 0.95),  # 0.90 (the newest)
]


@dataclass
class Seeded:
    name: str
    plot_type_id: int
    ids: dict[tuple[int, int], int]


async def _seed(hall: Hall) -> Seeded:
    name = f"SUGGEST_{uuid.uuid4().hex[:6]}"
    spec = PlotTypeSpec(name, "SUGGEST", "spectrum")
    images = Images(hall.storage, seed=7)
    engine = make_engine(hall.url)
    try:
        async with make_sessionmaker(engine)() as s:
            pt = PlotType(name=name, detector="SUGGEST")
            s.add(pt)
            await s.flush()
            classes = await s.scalars(
                sa.select(Classification.id).where(Classification.name.in_(spec.labels))
            )
            s.add_all(
                PlotTypeClassification(plot_type_id=pt.id, classification_id=c) for c in classes
            )
            ids: dict[tuple[int, int], int] = {}
            for run, chunk, bad in KEPT:
                oid = str(uuid7())
                png, _ = images.draw(spec, "Bad" if bad >= 0.5 else "Good")
                plot = Plot(
                    plot_type_id=pt.id,
                    run_number=run,
                    chunk=chunk,
                    image_path=images.write(f"plots/{name}/{oid}.png", png),
                    order_id=oid,
                    kept_reason=KeptReason.UNCONFIRMED,
                )
                s.add(plot)
                s.add(
                    RunHistory(
                        order_id=oid,
                        plot_type_id=pt.id,
                        run_number=run,
                        chunk=chunk,
                        status=InferenceStatus.OK,
                        verdict="Bad" if bad >= 0.5 else "Good",
                        confidence=max(bad, 1 - bad),
                        weights={"Good": 1 - bad, "Bad": bad, "NoData": 0.0},
                    )
                )
                await s.flush()
                ids[(run, chunk)] = plot.id
            await s.commit()
            return Seeded(name, pt.id, ids)
    finally:
        await engine.dispose()


@pytest.fixture
def uncertain(hall: Hall) -> Iterator[Seeded]:
    """A plot type with six kept, unlabelled images and the weights that kept them."""
    seeded = run_async(_seed(hall))
    try:
        yield seeded
    finally:
        run_async(remove_plot_type(hall.url, seeded.plot_type_id))


def _shown(tab: Tab) -> list[int]:
    cards = tab.page.get_by_test_id("plot-card")
    return [int(cards.nth(i).get_attribute("data-plot-id") or 0) for i in range(cards.count())]


def test_suggested_order_puts_the_uncertain_first_a_few_per_run(
    hall: Hall, open_page: Callable[..., Tab], uncertain: Seeded
) -> None:
    ids = uncertain.ids
    tab = open_page(f"/labeler?plot_type={uncertain.name}", who="admin")
    page = tab.page
    cards = page.get_by_test_id("plot-card")
    expect(cards).to_have_count(len(KEPT))
    # Newest first by default (the last one seeded), no margins shown.
    expect(cards.first).to_have_attribute("data-plot-id", str(ids[(502, 0)]))
    expect(page.get_by_test_id("suggested-hint")).to_have_count(0)

    page.get_by_test_id("labeler-order").select_option("suggested")
    expect(page).to_have_url(f"/labeler?plot_type={uncertain.name}&order=suggested")
    expect(page.get_by_test_id("suggested-hint")).to_be_visible()
    # The three most uncertain of run 500, then the other runs' by margin, then run 500's
    # fourth: near-duplicates of one run do not fill the page.
    wanted = [(500, 0), (500, 1), (500, 2), (501, 0), (502, 0), (500, 3)]
    expect(cards.first).to_have_attribute("data-plot-id", str(ids[(500, 0)]))
    assert _shown(tab) == [ids[k] for k in wanted]
    expect(cards.first).to_have_attribute("data-margin", "0.02")
    expect(cards.first).to_contain_text("margin 0.02")

    page.get_by_test_id("palette-Bad").click()
    cards.first.click()
    page.get_by_test_id("apply-labels").click()
    expect(page.get_by_text("Stored 1 label.")).to_be_visible()
    expect(cards).to_have_count(len(KEPT) - 1)
    expect(cards.first).to_have_attribute("data-plot-id", str(ids[(500, 1)]))
    # Run 500's fourth image moves up a tier now that one of its three is labelled.
    assert _shown(tab) == [ids[k] for k in [(500, 1), (500, 2), (500, 3), (501, 0), (502, 0)]]
    labelled = hall.sql(
        "SELECT c.name FROM labels l JOIN classifications c ON c.id = l.classification_id "
        "WHERE l.plot_id = :pid",
        pid=ids[(500, 0)],
    )
    assert [r[0] for r in labelled] == ["Bad"]

    page.get_by_test_id("labeler-order").select_option("newest")
    expect(cards.first).to_have_attribute("data-plot-id", str(ids[(502, 0)]))
    tab.assert_no_console_errors()
