"""Monitoring-log transitions, the collection policy and heat maps, through a real keeper."""

from __future__ import annotations

import io
from pathlib import Path
from types import ModuleType
from typing import Any

from PIL import Image


async def _log(kit: ModuleType, world: Any) -> list[tuple[Any, ...]]:
    rows = await kit.query(
        world.url,
        "SELECT h.order_id, m.verdict, m.confirmed, m.transition, m.transition_kind, m.chunk"
        " FROM monitoring_log m JOIN run_history h ON h.id = m.run_history_id"
        " WHERE m.plot_type_id = :p ORDER BY h.order_id",
        p=world.plot_type_id,
    )
    return [(r[0], r[1], bool(r[2]), bool(r[3]), r[4], r[5]) for r in rows]


async def test_keeper_monitoring_log_transitions(
    db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    world = await kit.make_world(db_url, thresholds={"Good": 0.7, "Bad": 0.6})
    _, client = await keeper_factory(db_url)
    good = kit.make_report(world, (0.9, 0.1), run_number=5, chunk=1)
    unconf = kit.make_report(world, (0.45, 0.55), run_number=5, chunk=2)  # Bad, unconfirmed
    unconf2 = kit.make_report(world, (0.45, 0.55), run_number=5, chunk=3)  # same state
    bad = kit.make_report(world, (0.2, 0.8), run_number=5, chunk=4)  # Bad, now confirmed
    skipped = kit.make_report(world, (0.2, 0.8), run_number=5, chunk=7)  # chunks 5, 6 missing
    next_run = kit.make_report(world, (0.2, 0.8), run_number=6, chunk=0)  # new run: no skip
    await client.record([good])
    await client.record([unconf, unconf2])  # one batch: in-batch order counts too
    await client.record([bad])
    await client.record([skipped, next_run])
    log = await _log(kit, world)
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in log] == [
        (unconf.order.order_id, "Bad", False, True, "verdict"),
        (unconf2.order.order_id, "Bad", False, False, ""),
        (bad.order.order_id, "Bad", True, True, "confirmation"),
        (skipped.order.order_id, "Bad", True, True, "chunk_skip"),
        (next_run.order.order_id, "Bad", True, False, ""),
    ]


async def test_keeper_first_inference_is_a_transition(
    db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    world = await kit.make_world(db_url)
    _, client = await keeper_factory(db_url)
    bad = kit.make_report(world, (0.1, 0.9))
    await client.record([bad])
    assert [(r[3], r[4]) for r in await _log(kit, world)] == [(True, "first")]


async def _kept(kit: ModuleType, world: Any) -> dict[str, tuple[Any, ...]]:
    rows = await kit.query(
        world.url,
        "SELECT order_id, kept_reason, image_path, heatmap_path, run_number, chunk FROM plots"
        " WHERE plot_type_id = :p",
        p=world.plot_type_id,
    )
    return {r[0]: tuple(r[1:]) for r in rows}


async def test_keeper_keeps_bad_and_unconfirmed(
    db_url: str, keeper_factory: Any, kit: ModuleType, tmp_path: Path
) -> None:
    world = await kit.make_world(db_url, collect_percent=0.0)
    service, client = await keeper_factory(db_url)
    image = kit.png_bytes()
    good = kit.make_report(world, (0.9, 0.1), image=image)
    unconf = kit.make_report(world, (0.6, 0.4), image=image)
    bad = kit.make_report(world, (0.1, 0.9), image=image, chunk=3)
    await client.record([good, unconf, bad])
    kept = await _kept(kit, world)
    assert set(kept) == {unconf.order.order_id, bad.order.order_id}
    assert kept[unconf.order.order_id][0] == "unconfirmed"
    assert kept[bad.order.order_id][0] == "bad"
    path = kept[bad.order.order_id][1]
    assert path.startswith(f"plots/{world.plot_type}/") and path.endswith(".png")
    assert (tmp_path / "storage" / path).read_bytes() == image
    (plot_id,) = (
        await kit.query(
            db_url,
            "SELECT plot_id FROM run_history WHERE order_id = :o",
            o=bad.order.order_id,
        )
    )[0]
    assert plot_id is not None
    assert kit.metric(service, "hydra_keeper_images_kept_total", reason="bad") == 1
    assert kit.metric(service, "hydra_keeper_images_kept_total", reason="unconfirmed") == 1
    assert kit.metric(service, "hydra_keeper_images_kept_total", reason="unbiased") == 0


async def test_keeper_unbiased_sample_once_per_run_and_chunk(
    db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    world = await kit.make_world(db_url, collect_percent=100.0)
    _, client = await keeper_factory(db_url)
    image = kit.png_bytes()
    a1 = kit.make_report(world, (0.9, 0.1), run_number=1, chunk=1, image=image)
    a2 = kit.make_report(world, (0.9, 0.1), run_number=1, chunk=1, image=image)  # same batch
    b1 = kit.make_report(world, (0.9, 0.1), run_number=1, chunk=2, image=image)
    await client.record([a1, a2, b1])
    a3 = kit.make_report(world, (0.9, 0.1), run_number=1, chunk=1, image=image)  # later batch
    c1 = kit.make_report(world, (0.9, 0.1), run_number=2, chunk=1, image=image)
    await client.record([a3, c1])
    kept = await _kept(kit, world)
    assert set(kept) == {a1.order.order_id, b1.order.order_id, c1.order.order_id}
    assert {v[0] for v in kept.values()} == {"unbiased"}
    # An unconfirmed image of an already sampled run/chunk is still kept.
    unconf = kit.make_report(world, (0.6, 0.4), run_number=1, chunk=1, image=image)
    await client.record([unconf])
    assert (await _kept(kit, world))[unconf.order.order_id][0] == "unconfirmed"


async def test_keeper_unbiased_sample_at_zero_percent(
    db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    world = await kit.make_world(db_url, collect_percent=0.0)
    _, client = await keeper_factory(db_url)
    reports = [
        kit.make_report(world, (0.9, 0.1), chunk=i, image=kit.png_bytes()) for i in range(20)
    ]
    await client.record(reports)
    assert await _kept(kit, world) == {}


async def test_keeper_heat_map_overlay_has_the_image_size(
    db_url: str, keeper_factory: Any, kit: ModuleType, tmp_path: Path
) -> None:
    world = await kit.make_world(db_url)
    _, client = await keeper_factory(db_url)
    heat = [0.0, 0.25, 0.5, 1.0] * 4  # 4 x 4, hot on the right
    bad = kit.make_report(world, (0.1, 0.9), image=kit.png_bytes(64, 48), heat=(4, 4, heat))
    await client.record([bad])
    kept = await _kept(kit, world)
    heatmap_path = kept[bad.order.order_id][2]
    assert heatmap_path == f"heatmaps/{world.plot_type}/{heatmap_path.split('/')[2]}/" + (
        f"{bad.order.order_id}.png"
    )
    with Image.open(io.BytesIO((tmp_path / "storage" / heatmap_path).read_bytes())) as im:
        assert im.mode == "RGBA"
        assert im.size == (64, 48)
        cold = im.getpixel((0, 24))
        hot = im.getpixel((63, 24))
    assert isinstance(cold, tuple) and isinstance(hot, tuple)
    assert cold[3] < 40 and hot[3] > 200  # alpha follows the heat
    assert hot[0] > 200 and hot[2] < 60  # hot is red
    (live,) = (
        await kit.query(
            db_url,
            "SELECT heatmap_path FROM run_time WHERE plot_type_id = :p",
            p=world.plot_type_id,
        )
    )[0]
    assert live == f"live/{world.plot_type}/{bad.order.order_id}.heatmap.png"
    assert (tmp_path / "storage" / live).exists()


async def test_a_huge_image_gets_a_heat_map_of_bounded_size(
    db_url: str, keeper_factory: Any, kit: ModuleType, tmp_path: Path
) -> None:
    """A 7000 x 3500 plot: its overlay is at most 1024 px on its longest side (the browser
    stretches it over the image), not 7000 x 3500 RGBA."""
    world = await kit.make_world(db_url)
    _, client = await keeper_factory(db_url)
    big = kit.png_bytes(7000, 3500)
    bad = kit.make_report(world, (0.1, 0.9), image=big, heat=(4, 4, [0.5] * 16))
    await client.record([bad])
    heatmap_path = (await _kept(kit, world))[bad.order.order_id][2]
    with Image.open(io.BytesIO((tmp_path / "storage" / heatmap_path).read_bytes())) as im:
        assert im.size == (1024, 512)


async def test_a_full_disk_costs_the_images_not_the_verdicts(
    db_url: str, keeper_factory: Any, kit: ModuleType, monkeypatch: Any
) -> None:
    """The storage volume is full (ENOSPC at the storage layer: no size-limited file system
    can be mounted here): verdicts are still recorded and acknowledged, kept images are
    skipped and counted with a reason, and keeping resumes once space returns."""
    import errno

    from hydra_keeper import storage

    world = await kit.make_world(db_url, collect_percent=0.0)
    service, client = await keeper_factory(db_url)
    real_write = storage.write_atomic
    full = True

    def write_atomic(root: Path, rel: str, data: bytes, durable: bool) -> None:
        if full:
            raise OSError(errno.ENOSPC, "No space left on device", str(root / rel))
        real_write(root, rel, data, durable)

    monkeypatch.setattr(storage, "write_atomic", write_atomic)
    image = kit.png_bytes()
    during = [kit.make_report(world, (0.1, 0.9), chunk=i, image=image) for i in range(3)]
    await client.record(during)  # returns once every report is acknowledged
    rows = await kit.query(
        db_url,
        "SELECT verdict, plot_id FROM run_history WHERE plot_type_id = :p",
        p=world.plot_type_id,
    )
    assert [(v, p) for v, p in rows] == [("Bad", None)] * 3
    assert await _kept(kit, world) == {}
    assert kit.metric(service, "hydra_keeper_files_skipped_total", reason="disk_full") == 3
    assert kit.metric(service, "hydra_keeper_images_kept_total", reason="bad") == 0
    full = False
    after = kit.make_report(world, (0.1, 0.9), chunk=9, image=image)
    await client.record([after])
    assert set(await _kept(kit, world)) == {after.order.order_id}
    assert kit.metric(service, "hydra_keeper_images_kept_total", reason="bad") == 1
