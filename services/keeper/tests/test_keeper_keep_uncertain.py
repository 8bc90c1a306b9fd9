"""The keeping rule for uncertain images: a margin below ``HYDRA_KEEP_MARGIN_BELOW`` keeps
an image (reason ``uncertain``) that the verdict rules alone would not keep."""

from __future__ import annotations

from types import ModuleType
from typing import Any


async def _kept(kit: ModuleType, world: Any) -> dict[str, str]:
    rows = await kit.query(
        world.url,
        "SELECT order_id, kept_reason FROM plots WHERE plot_type_id = :p",
        p=world.plot_type_id,
    )
    return {r[0]: r[1] for r in rows}


async def test_uncertain_confirmed_images_are_kept_below_the_margin(
    db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    world = await kit.make_world(db_url, thresholds={"Good": 0.5, "Bad": 0.6})
    service, client = await keeper_factory(db_url, keep_margin_below=0.2)
    png = kit.png_bytes()
    torn = kit.make_report(world, (0.55, 0.45), image=png, chunk=1)  # Good, confirmed, margin 0.1
    sure = kit.make_report(world, (0.9, 0.1), image=png, chunk=2)  # margin 0.8: not kept
    unconfirmed = kit.make_report(world, (0.45, 0.55), image=png, chunk=3)  # Bad below 0.6
    await client.record([torn, sure, unconfirmed])
    assert await _kept(kit, world) == {
        torn.order.order_id: "uncertain",
        unconfirmed.order.order_id: "unconfirmed",  # the verdict rules come first
    }
    assert kit.metric(service, "hydra_keeper_images_kept_total", reason="uncertain") == 1


async def test_the_rule_is_off_by_default(
    db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    world = await kit.make_world(db_url, thresholds={"Good": 0.5, "Bad": 0.6})
    service, client = await keeper_factory(db_url)
    assert service.settings.keep_margin_below == 0.0
    torn = kit.make_report(world, (0.55, 0.45), image=kit.png_bytes(), chunk=1)
    await client.record([torn])
    assert await _kept(kit, world) == {}
