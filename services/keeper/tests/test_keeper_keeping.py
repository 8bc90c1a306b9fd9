"""The keeping policy (``hydra_keeper.keeping``): which images are kept, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.v1 import report_pb2

from hydra_common.db.engine import make_engine
from hydra_keeper.entries import Entry
from hydra_keeper.keeping import KeepingPolicy
from hydra_keeper.reference import ReferenceCache
from hydra_keeper.writer import BatchWriter

from .conftest import make_entry, make_report, make_world, png_bytes


def test_the_uncertainty_rule_takes_small_margins_only_when_set() -> None:
    close, clear = {"Good": 0.55, "Bad": 0.45}, {"Good": 0.9, "Bad": 0.1}
    assert not KeepingPolicy().uncertain(close)  # 0: the rule is off
    assert KeepingPolicy(0.2).uncertain(close)
    assert not KeepingPolicy(0.2).uncertain(clear)


async def test_reasons_and_one_unbiased_image_per_plot_type_run_and_chunk(
    db_url: str, tmp_path: Path
) -> None:
    world = await make_world(db_url, collect_percent=100.0)
    image = png_bytes()

    def entry(chunk: int, weights: tuple[float, float] = (0.9, 0.1), **kw: Any) -> Entry:
        report = make_report(world, weights, run_number=3, chunk=chunk, **kw)
        # Good's threshold at 0.5: a 0.55 Good is confirmed, and uncertain (margin 0.1).
        return make_entry(
            world, report, collect_percent=100.0, thresholds={"Good": 0.5, "Bad": 0.6}
        )

    entries = [
        entry(2, (0.1, 0.9), image=image),
        entry(2, image=image),
        entry(4, (0.45, 0.55), image=image),
        entry(4, (0.55, 0.45), image=image),
        entry(5, image=image),
        entry(5, image=image),
        entry(1, image=image),
        entry(6, (0.1, 0.9)),
        entry(7, image=image, status=report_pb2.REPORT_STATUS_ERROR),
    ]
    engine = make_engine(db_url)
    try:
        # An earlier batch kept (sampled) chunk 1's image.
        writer = BatchWriter(engine, tmp_path, ReferenceCache(3600), 1.0)
        await writer.write([make_report(world, run_number=3, chunk=1, image=image)])
        async with engine.connect() as conn:
            await KeepingPolicy(0.2).choose(conn, entries)
    finally:
        await engine.dispose()
    assert [e.kept for e in entries] == [
        "bad",
        "",  # chunk 2 has its image already: the Bad one
        "unconfirmed",  # Bad at 0.55, below its 0.6
        "uncertain",  # kept whatever else its chunk has
        "unbiased",
        "",  # the sample never takes a second image of a run and chunk
        "",  # nor one an earlier batch kept
        "",  # nothing to keep without an image
        "",  # failed inferences are not sampled
    ]
