"""Pure parts of the keeper: verdicts, stage durations, sampling, heat-map rendering, paths."""

from __future__ import annotations

import io
from typing import Any

from hydra.v1 import order_pb2, report_pb2
from PIL import Image

from hydra_common.db.schema import InferenceStatus
from hydra_common.ids import uuid7
from hydra_keeper import storage
from hydra_keeper.keeping import sampled
from hydra_keeper.verdicts import judge, stage_seconds

ALARM = frozenset({"Bad"})


def _report(labels: list[str], weights: list[float]) -> report_pb2.Report:
    return report_pb2.Report(
        status=report_pb2.REPORT_STATUS_OK, labels=labels, weights=weights, model_id=1
    )


def test_keeper_judge_highest_weight_and_threshold() -> None:
    j = judge(_report(["Good", "Bad"], [0.3, 0.7]), {"Bad": 0.7}, ALARM, 0.5)
    assert (j.verdict, j.confidence, j.confirmed, j.alarm, j.logged) == (
        "Bad",
        0.7,
        True,
        True,
        True,
    )
    assert j.thresholds == {"Good": 0.5, "Bad": 0.7}
    j = judge(_report(["Good", "Bad"], [0.3, 0.7]), {"Bad": 0.71}, ALARM, 0.5)
    assert (j.confirmed, j.alarm, j.logged) == (False, False, True)
    j = judge(_report(["Good", "Bad"], [0.8, 0.2]), {"Good": 0.75}, ALARM, 0.5)
    assert (j.verdict, j.confirmed, j.logged) == ("Good", True, False)


def test_keeper_judge_without_threshold_uses_default() -> None:
    assert judge(_report(["Good", "NoData"], [0.4, 0.6]), {}, ALARM, 0.5).confirmed
    assert not judge(
        _report(["Good", "NoData", "Bad"], [0.3, 0.45, 0.25]), {}, ALARM, 0.5
    ).confirmed


def test_keeper_judge_no_model_error_and_malformed() -> None:
    no_model = judge(report_pb2.Report(status=report_pb2.REPORT_STATUS_NO_MODEL), {}, ALARM, 0.5)
    assert (no_model.status, no_model.verdict, no_model.confirmed) == (
        InferenceStatus.NO_MODEL,
        "NoModel",
        False,
    )
    unset = judge(report_pb2.Report(), {}, ALARM, 0.5)
    assert (unset.status, unset.verdict, unset.error) == (
        InferenceStatus.ERROR,
        "Error",
        "report status not set",
    )
    bad = judge(_report(["Good", "Bad"], [1.0]), {}, ALARM, 0.5)
    assert bad.status is InferenceStatus.ERROR and "malformed" in bad.error
    assert not bad.logged


def test_keeper_stage_seconds_add_up() -> None:
    s = order_pb2.StageTimestamps(
        file_ns=1_000_000_000,
        fed_ns=1_500_000_000,
        queued_ns=1_600_000_000,
        dispatched_ns=2_000_000_000,
        predict_start_ns=2_100_000_000,
        predict_end_ns=2_400_000_000,
        reported_ns=2_500_000_000,
    )
    out = stage_seconds(s, 3_000_000_000)
    assert out == {
        "feed": 0.5,
        "queue": 0.5,
        "dispatch": 0.1,
        "predict": 0.3,
        "report": 0.1,
        "keep": 0.5,
        "total": 2.0,
    }
    partial = stage_seconds(order_pb2.StageTimestamps(fed_ns=1_000_000_000), 2_000_000_000)
    assert partial == {"total": 1.0}


def test_keeper_sampled_rate_is_unbiased_and_stable() -> None:
    ids = [uuid7() for _ in range(20_000)]
    taken = sum(sampled(i, 25.0) for i in ids)
    assert 4_400 < taken < 5_600  # 25 % ± 12 %: far outside chance failure
    assert all(sampled(i, 100.0) for i in ids[:100])
    assert not any(sampled(i, 0.0) for i in ids[:100])
    assert [sampled(i, 25.0) for i in ids[:200]] == [sampled(i, 25.0) for i in ids[:200]]


def test_keeper_render_heatmap() -> None:
    hm = report_pb2.HeatMap(height=2, width=2, values=[0.0, 1.0, 0.5, float("nan")])
    png = storage.render_heatmap(hm, (30, 20))
    assert png is not None
    with Image.open(io.BytesIO(png)) as im:
        assert (im.mode, im.size) == ("RGBA", (30, 20))
    own = storage.render_heatmap(hm, None)
    assert own is not None
    with Image.open(io.BytesIO(own)) as im:
        assert im.size == (2, 2)
        assert im.getpixel((0, 0)) == (0, 0, 255, 0)  # cold: blue, transparent
        assert im.getpixel((1, 0)) == (255, 0, 0, 255)  # hot: red, opaque
        cold = im.getpixel((1, 1))
        assert isinstance(cold, tuple) and cold[3] == 0  # NaN counts as cold
    assert storage.render_heatmap(report_pb2.HeatMap(height=2, width=2, values=[1.0]), None) is None


def test_keeper_storage_paths_are_safe() -> None:
    oid = "0190f0c0-0000-7000-8000-000000000000"
    assert storage.kept_image_path("../etc", oid, "png").startswith("plots/_etc/2024-07-")
    assert storage.live_image_path("a/b", oid, "jpg") == f"live/a_b/{oid}.jpg"
    assert storage.image_ext("Run1/x.JPG", b"", "png") == "jpg"
    assert storage.image_ext("x", b"\x89PNG....", "jpg") == "png"
    assert storage.image_ext("x", b"", "png") == "png"


def test_a_png_size_comes_from_its_header_whatever_pillow_allows(monkeypatch: Any) -> None:
    buf = io.BytesIO()
    Image.new("L", (7000, 3500)).save(buf, format="PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # as a feeder in the same process sets
    assert storage.image_size(buf.getvalue()) == (7000, 3500)
    assert storage.bounded((7000, 3500), 1024) == (1024, 512)
    assert storage.bounded((640, 480), 1024) == (640, 480)
