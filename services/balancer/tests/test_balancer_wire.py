"""The balancer's byte-level order handling agrees with the protobuf runtime."""

from __future__ import annotations

import pytest
from hydra.v1 import balancer_pb2, order_pb2

from hydra_balancer.memory import keep_big_buffers
from hydra_balancer.wire import (
    WireError,
    dispatched_stamp,
    encode_submit_response,
    encode_varint,
    encode_work_responses,
    id_of,
    key_of,
    order_id_of,
    parse_submit,
    parse_work_request,
    queued_stamp,
    stamp_ns,
)


def make_order(i: int, image: bytes = b"") -> order_pb2.InferenceOrder:
    order = order_pb2.InferenceOrder(
        order_id=f"0190f5c2-0000-7000-8000-{i:012d}",
        plot_type="FTOF_adcTime_s1",
        run_period="RunPeriod-2021-08",
        run_number=80464,
        chunk=-1,
        source_path="RunPeriod-2021-08/Run80464/FTOF_adcTime_s1.png",
        image=image,
        file_size=len(image),
    )
    order.stages.file_ns = 1_700_000_000_000_000_000 + i
    order.stages.fed_ns = 1_700_000_000_500_000_000 + i
    return order


def test_round_trip_sets_stages_and_keeps_everything_else() -> None:
    orders = [make_order(1), make_order(2, b"\x89PNG" + bytes(40_000)), make_order(3, b"x" * 100)]
    request = balancer_pb2.SubmitRequest(orders=orders, feeder_id="feeder-a")
    batch = parse_submit(request.SerializeToString())
    assert batch.feeder_id == "feeder-a"
    assert batch.ids == [o.order_id for o in orders]
    [encoded] = encode_work_responses(
        [(batch.bodies, queued_stamp(111))], dispatched_stamp(222), 1 << 20
    )
    response = balancer_pb2.WorkResponse.FromString(encoded)
    assert len(response.orders) == 3
    for sent, got in zip(orders, response.orders, strict=True):
        expected = order_pb2.InferenceOrder()
        expected.CopyFrom(sent)
        expected.stages.queued_ns = 111
        expected.stages.dispatched_ns = 222
        assert got == expected


def test_order_id_found_wherever_it_is() -> None:
    order = make_order(7)
    oid = order.order_id
    order.ClearField("order_id")
    body = order.SerializeToString() + b"\x0a" + encode_varint(len(oid)) + oid.encode()
    assert order_id_of(body) == oid
    request = b"\x0a" + encode_varint(len(body)) + body
    assert parse_submit(request).ids == [oid]
    assert order_id_of(order.SerializeToString()) == ""


def test_unknown_fields_are_skipped() -> None:
    order = make_order(1).SerializeToString()
    unknown = b"\x98\x06\x05" + b"\xa2\x06\x03abc"  # field 99 varint, field 100 bytes
    raw = unknown + b"\x0a" + encode_varint(len(order)) + order + unknown
    batch = parse_submit(raw)
    assert batch.ids == [make_order(1).order_id]
    assert batch.bodies == [order]


def test_malformed_input_is_refused() -> None:
    raw = balancer_pb2.SubmitRequest(orders=[make_order(1)]).SerializeToString()
    with pytest.raises((WireError, IndexError)):
        parse_submit(raw[: len(raw) // 2])
    with pytest.raises(WireError):
        parse_submit(b"\x0b")  # wire type 3 (groups) is not used by Hydra


def test_varint() -> None:
    for value in (0, 1, 127, 128, 300, 2**35, 2**63 - 1):
        order = order_pb2.StageTimestamps(queued_ns=value)
        assert order.SerializeToString() == b"\x18" + encode_varint(value) or value == 0


def test_small_orders_are_copied_big_ones_are_views_of_the_request() -> None:
    big = make_order(2, b"\x89PNG" + bytes(64 * 1024))
    raw = balancer_pb2.SubmitRequest(orders=[make_order(1), big]).SerializeToString()
    batch = parse_submit(raw)
    assert isinstance(batch.bodies[0], bytes)
    view = batch.bodies[1]
    assert isinstance(view, memoryview) and view.obj is raw  # the image was not copied
    assert bytes(view) == big.SerializeToString()
    assert batch.keys == [key_of(make_order(1).order_id), key_of(big.order_id)]


def test_ids_that_are_not_utf8_or_empty() -> None:
    good = make_order(1).SerializeToString()
    bad = b"\x0a\x03\xff\xfe\xfd" + good[2 + len(make_order(1).order_id) :]
    raw = b"\x0a" + encode_varint(len(bad)) + bad
    with pytest.raises(UnicodeDecodeError):
        parse_submit(raw)
    anonymous = order_pb2.InferenceOrder(plot_type="RF_adc").SerializeToString()
    batch = parse_submit(b"\x0a" + encode_varint(len(anonymous)) + anonymous)
    assert batch.anonymous == 1 and batch.ids == [""]


def test_work_requests_read_as_the_protobuf_runtime_does() -> None:
    uuids = [make_order(i).order_id for i in range(50)]
    odd = ["a", "\x12\x12", "x" * 18, "é" * 70, "y" * 300, *uuids[:3], ""]
    cases = [
        balancer_pb2.WorkRequest(credits=50, done=uuids),
        balancer_pb2.WorkRequest(credits=7, done=uuids, predictor_id="pred-1"),
        balancer_pb2.WorkRequest(done=odd),
        balancer_pb2.WorkRequest(predictor_id="p", credits=2**32 - 1),
        balancer_pb2.WorkRequest(),
    ]
    for request in cases:
        raw = request.SerializeToString()
        for extra in (b"", b"\x98\x06\x05"):  # and with an unknown field after
            got = parse_work_request(raw + extra)
            assert got.credits == request.credits
            assert got.predictor_id == request.predictor_id
            assert [id_of(k) for k in got.done] == list(request.done)
            assert got.done == [key_of(i) for i in request.done]
    raw = cases[0].SerializeToString()
    for cut in (len(raw) - 1, len(raw) - 20, 4):
        with pytest.raises((WireError, IndexError)):
            parse_work_request(raw[:cut])


def test_submit_responses_read_back() -> None:
    ids = ["a", "é" * 70, "b" * 200]
    keys = [key_of(i) for i in ids]
    for accepted, done in ((keys, keys[:1]), (keys, []), ([], keys), ([], [])):
        message = balancer_pb2.SubmitResponse.FromString(encode_submit_response(accepted, done))
        assert list(message.accepted) == [id_of(k) for k in accepted]
        assert list(message.done) == [id_of(k) for k in done]


def test_work_responses_are_cut_at_the_limit_in_order() -> None:
    orders = [make_order(i, bytes(10_000)) for i in range(40)]
    bodies = [o.SerializeToString() for o in orders]
    pieces = [(bodies[:25], queued_stamp(1)), (bodies[25:], queued_stamp(2))]
    one = encode_work_responses(pieces, dispatched_stamp(3), 1 << 30)
    assert len(one) == 1
    cut = encode_work_responses(pieces, dispatched_stamp(3), 100_000)
    assert len(cut) >= 4
    assert all(len(m) <= 100_000 + 11_000 for m in cut)
    got = [o for m in cut for o in balancer_pb2.WorkResponse.FromString(m).orders]
    assert [o.order_id for o in got] == [o.order_id for o in orders]
    assert [o.stages.queued_ns for o in got] == [1] * 25 + [2] * 15
    assert {o.stages.dispatched_ns for o in got} == {3}
    assert got == list(balancer_pb2.WorkResponse.FromString(one[0]).orders)
    # An order bigger than the limit travels alone.
    alone = encode_work_responses([(bodies[:3], queued_stamp(1))], dispatched_stamp(3), 5_000)
    assert len(alone) == 3
    assert encode_work_responses([], dispatched_stamp(3), 100) == []


def test_stamps_hold_their_time() -> None:
    for ns in (1, 1_700_000_000_000_000_000, 2**63 - 1):
        assert stamp_ns(queued_stamp(ns)) == ns
        assert stamp_ns(dispatched_stamp(ns)) == ns


def test_malloc_tuning_applies_on_glibc() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert keep_big_buffers()
