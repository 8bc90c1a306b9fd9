"""``wire.py`` hard-codes protobuf tags for speed: each one must match the generated
descriptors (a field renumbered or retyped in protos/ fails here, not in production)."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hydra.v1 import balancer_pb2, order_pb2

from hydra_balancer import wire

VARINT_TYPES = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_BOOL,
    FieldDescriptor.TYPE_ENUM,
}
LENGTH_DELIMITED = {
    FieldDescriptor.TYPE_STRING,
    FieldDescriptor.TYPE_BYTES,
    FieldDescriptor.TYPE_MESSAGE,
}


def tag_of(message: Descriptor, field_name: str) -> int:
    """The tag a field's records carry: field number << 3 | wire type."""
    field = message.fields_by_name[field_name]
    if field.type in LENGTH_DELIMITED:
        wire_type = 2
    elif field.type in VARINT_TYPES:
        wire_type = 0
    else:
        raise AssertionError(f"{message.name}.{field_name}: wire.py handles no such field")
    return int(field.number) << 3 | wire_type


SUBMIT = balancer_pb2.SubmitRequest.DESCRIPTOR
SUBMITTED = balancer_pb2.SubmitResponse.DESCRIPTOR
WORK_REQUEST = balancer_pb2.WorkRequest.DESCRIPTOR
WORK = balancer_pb2.WorkResponse.DESCRIPTOR
ORDER = order_pb2.InferenceOrder.DESCRIPTOR
STAGES = order_pb2.StageTimestamps.DESCRIPTOR


@pytest.mark.parametrize(
    ("constant", "fields"),
    [
        ("_TAG_ORDERS", [(SUBMIT, "orders"), (WORK, "orders")]),
        ("_TAG_FEEDER_ID", [(SUBMIT, "feeder_id")]),
        ("_TAG_ORDER_ID", [(ORDER, "order_id")]),
        ("_TAG_CREDITS", [(WORK_REQUEST, "credits")]),
        ("_TAG_DONE", [(WORK_REQUEST, "done"), (SUBMITTED, "done")]),
        ("_TAG_PREDICTOR_ID", [(WORK_REQUEST, "predictor_id")]),
        ("_ACCEPTED", [(SUBMITTED, "accepted")]),
        ("_DONE", [(SUBMITTED, "done")]),
        ("_TAG_STAGES", [(ORDER, "stages")]),
        ("_TAG_QUEUED_NS", [(STAGES, "queued_ns")]),
        ("_TAG_DISPATCHED_NS", [(STAGES, "dispatched_ns")]),
    ],
)
def test_a_hard_coded_tag_matches_the_descriptor(
    constant: str, fields: list[tuple[Descriptor, str]]
) -> None:
    value = getattr(wire, constant)
    tag = value[0] if isinstance(value, bytes) else value
    if isinstance(value, bytes):
        assert len(value) == 1, f"{constant}: a one-byte tag"
    for message, name in fields:
        assert tag == tag_of(message, name), f"{constant} vs {message.name}.{name}"


def test_every_tag_in_wire_py_is_checked() -> None:
    checked = {
        "_TAG_ORDERS",
        "_TAG_FEEDER_ID",
        "_TAG_ORDER_ID",
        "_TAG_CREDITS",
        "_TAG_DONE",
        "_TAG_PREDICTOR_ID",
        "_ACCEPTED",
        "_DONE",
        "_TAG_STAGES",
        "_TAG_QUEUED_NS",
        "_TAG_DISPATCHED_NS",
    }
    tags = {name for name in vars(wire) if name.startswith("_TAG_")}
    assert tags <= checked, tags - checked


def test_the_repeated_fields_wire_py_walks_are_not_packed_scalars() -> None:
    # wire.py reads `done`, `accepted` and `orders` one record per element: strings and
    # messages are never packed, but a change to a packable type would break that.
    for message, name in [
        (SUBMIT, "orders"),
        (WORK, "orders"),
        (WORK_REQUEST, "done"),
        (SUBMITTED, "done"),
        (SUBMITTED, "accepted"),
    ]:
        field = message.fields_by_name[name]
        assert field.is_repeated and not field.is_packed
        assert field.type in LENGTH_DELIMITED
