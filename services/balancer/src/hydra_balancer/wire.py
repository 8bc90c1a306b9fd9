"""Orders as encoded bytes: the balancer's hot path never builds a protobuf message.

Moving a parsed ``InferenceOrder`` from a ``SubmitRequest`` into a ``WorkResponse`` copies it
(about 2 µs per order with the upb runtime), and setting a stage timestamp on a message costs
most of a microsecond more. The balancer only needs each order's id, so it keeps every order
as the bytes the feeder sent, and:

- splits a ``SubmitRequest`` into (key, order bytes) pairs by walking the wire format; the
  order bytes are ``memoryview`` slices of the request, so an order's image is never copied
  until the ``WorkResponse`` that carries it is written;
- stamps ``stages.queued_ns`` / ``stages.dispatched_ns`` by *appending* an encoded
  ``stages`` field: protobuf merges repeated embedded-message fields, so the appended value
  sets that one timestamp and keeps the others (``file_ns``, ``fed_ns``...);
- writes a ``WorkResponse`` by concatenating ``orders`` field records, and a
  ``SubmitResponse`` by concatenating id records;
- reads a ``WorkRequest``'s done ids by slicing its records.

An order id is held as its *key*: the id's field record without the tag, i.e. the varint
length and the UTF-8 bytes (``key_of``). Keys come out of the wire by slicing, and go back
in by joining them with a tag, so ids are never decoded into ``str`` on the hot path.

The bytes are standard protobuf, so feeders and predictors use the ordinary generated stubs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat

# Field tags (field number << 3 | wire type).
_TAG_ORDERS = 0x0A  # SubmitRequest.orders / WorkResponse.orders: 1, length-delimited
_TAG_FEEDER_ID = 0x12  # SubmitRequest.feeder_id: 2, length-delimited
_TAG_ORDER_ID = 0x0A  # InferenceOrder.order_id: 1, length-delimited
_TAG_CREDITS = 0x08  # WorkRequest.credits: 1, varint
_TAG_DONE = 0x12  # WorkRequest.done / SubmitResponse.done: 2, length-delimited
_TAG_PREDICTOR_ID = 0x1A  # WorkRequest.predictor_id: 3, length-delimited
_ACCEPTED = b"\x0a"  # SubmitResponse.accepted: 1, length-delimited
_DONE = b"\x12"
_TAG_STAGES = b"\x42"  # InferenceOrder.stages: 8, length-delimited
_TAG_QUEUED_NS = b"\x18"  # StageTimestamps.queued_ns: 3, varint
_TAG_DISPATCHED_NS = b"\x20"  # StageTimestamps.dispatched_ns: 4, varint

# An encoded order as held by the balancer: a slice of the request that brought it.
Body = bytes | memoryview
# Orders smaller than this are copied out of their request (cheaper than a memoryview).
_COPY_BELOW = 4096


class WireError(ValueError):
    """The bytes are not a well-formed message."""


def encode_varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# The record header of an order of n bytes, for the common sizes (up to 16 KiB).
_HEADERS = [bytes([_TAG_ORDERS]) + encode_varint(n) for n in range(1 << 14)]
_HEADER = _HEADERS.__getitem__


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint too long")


def _skip(buf: bytes, pos: int, wire_type: int) -> int:
    if wire_type == 0:
        return _read_varint(buf, pos)[1]
    if wire_type == 1:
        return pos + 8
    if wire_type == 2:
        length, pos = _read_varint(buf, pos)
        return pos + length
    if wire_type == 5:
        return pos + 4
    raise WireError(f"unsupported wire type {wire_type}")


def _string(buf: bytes, pos: int) -> tuple[bytes, int]:
    """The UTF-8 bytes of the length-delimited value at pos, and the position after it."""
    length, pos = _read_varint(buf, pos)
    end = pos + length
    if end > len(buf):
        raise WireError("string overruns its message")
    return buf[pos:end], end


def key_of(order_id: str) -> bytes:
    """The key of an order id: its varint length and UTF-8 bytes."""
    data = order_id.encode()
    return encode_varint(len(data)) + data


def id_of(key: bytes) -> str:
    """The order id a key stands for."""
    if key[0] < 0x80:
        return key[1:].decode()
    return key[_read_varint(key, 0)[1] :].decode()


def order_id_of(body: Body) -> str:
    """The ``order_id`` of an encoded InferenceOrder ('' when it has none)."""
    return id_of(_order_key(bytes(body), 0, len(body)))


def _order_key(buf: bytes, pos: int, end: int) -> bytes:
    """The key of the order encoded in buf[pos:end], by a full walk (the last id wins)."""
    found = b""
    while pos < end:
        tag, pos = _read_varint(buf, pos)
        if tag == _TAG_ORDER_ID:
            found, pos = _string(buf, pos)
        else:
            pos = _skip(buf, pos, tag & 7)
    if pos != end:
        raise WireError("order overruns its record")
    found.decode()  # an id that is not UTF-8 would break every predictor it reaches
    return encode_varint(len(found)) + found


@dataclass(slots=True)
class SubmitBatch:
    """A decoded SubmitRequest: parallel lists of order keys and encoded orders."""

    keys: list[bytes]
    bodies: list[Body]
    feeder_id: str
    anonymous: int = 0  # orders without an id (their key is b"\\x00")

    @property
    def ids(self) -> list[str]:
        """The order ids (decoded: for tests and logs, not the hot path)."""
        return [id_of(k) for k in self.keys]


def parse_submit(raw: bytes) -> SubmitBatch:
    """Split an encoded SubmitRequest into its orders without building messages."""
    keys: list[bytes] = []
    bodies: list[Body] = []
    add_key = keys.append
    add_body = bodies.append
    view = memoryview(raw)
    feeder_id = ""
    walked = False  # some key came from the full walk (validated there)
    pos = 0
    end = len(raw)
    while pos < end:
        # The common shape, in as few steps as possible: an order record with a one- or
        # two-byte length (orders up to 16 KiB) whose order_id comes first with a one-byte
        # length (encoders write each field once, in field order). Small orders are copied
        # (a bytes object is cheaper than a view); big ones are views, never copied here.
        while pos < end:
            if raw[pos] != 0x0A:
                break
            n = raw[pos + 1]
            if n < 0x80:
                start = pos + 2
            else:
                b2 = raw[pos + 2]
                if b2 >= 0x80:
                    break
                n = (n & 0x7F) | (b2 << 7)
                start = pos + 3
            if n < 3 or raw[start] != 0x0A:
                break
            k = raw[start + 1]
            if not 0 < k < 0x80 or k > n - 2:
                break
            pos = start + n
            add_key(raw[start + 1 : start + 2 + k])
            add_body(raw[start:pos] if n < _COPY_BELOW else view[start:pos])
        if pos >= end:
            break
        # Anything else, one field at a time.
        tag, pos = _read_varint(raw, pos)
        if tag == _TAG_ORDERS:
            n, start = _read_varint(raw, pos)
            pos = start + n
            if pos > end:
                raise WireError("order overruns its SubmitRequest")
            if n >= 3 and raw[start] == _TAG_ORDER_ID and 0 < raw[start + 1] < 0x80:
                k = raw[start + 1]
                if k > n - 2:
                    raise WireError("order id overruns its order")
                add_key(raw[start + 1 : start + 2 + k])
            else:
                add_key(_order_key(raw, start, pos))
                walked = True
            add_body(raw[start:pos] if n < _COPY_BELOW else view[start:pos])
        elif tag == _TAG_FEEDER_ID:
            name, pos = _string(raw, pos)
            feeder_id = name.decode()
        else:
            pos = _skip(raw, pos, tag & 7)
    if pos != end:
        raise WireError("truncated SubmitRequest")
    # Every inline key starts with its one-byte length, an ASCII byte, so joined they
    # decode exactly when each id does (a multi-byte character cannot span two keys).
    if walked:
        for key in keys:
            if key[0] < 0x80:
                key.decode()
    else:
        b"".join(keys).decode()
    return SubmitBatch(keys, bodies, feeder_id, keys.count(b"\x00") if walked else 0)


@dataclass(slots=True)
class WorkReport:
    """A decoded WorkRequest: credits granted, keys of done orders, the predictor's name."""

    credits: int
    done: list[bytes]
    predictor_id: str


def parse_work_request(raw: bytes) -> WorkReport:
    """Read a WorkRequest; runs of done ids of one length are cut out without a loop."""
    credits = 0
    done: list[bytes] = []
    predictor_id = ""
    pos = 0
    end = len(raw)
    while pos < end:
        tag = raw[pos]
        if tag == _TAG_DONE and pos + 1 < end and raw[pos + 1] < 0x80:
            # Ids of one length (UUIDs) make records of one stride: find how many follow
            # with the same tag and length byte, then slice them all at C speed.
            size = raw[pos + 1]
            stride = size + 2
            fits = (end - pos) // stride
            run = min(
                fits,
                _run_of(raw[pos:end:stride], _TAG_DONE),
                _run_of(raw[pos + 1 : end : stride], size),
            )
            if not run:
                raise WireError("done id overruns its WorkRequest")
            stop = pos + run * stride
            keys = raw[pos:stop].split(_DONE)
            if len(keys) == run + 1:  # no 0x12 within the ids: split at the tags only
                del keys[0]
                done += keys
            else:
                starts = range(pos + 1, stop, stride)
                stops = range(pos + stride, stop + 1, stride)
                done.extend(map(raw.__getitem__, map(slice, starts, stops)))
            pos = stop
            continue
        tag, pos = _read_varint(raw, pos)
        if tag == _TAG_CREDITS:
            credits, pos = _read_varint(raw, pos)
        elif tag == _TAG_DONE:
            start = pos
            pos = _string(raw, pos)[1]
            done.append(raw[start:pos])
        elif tag == _TAG_PREDICTOR_ID:
            name, pos = _string(raw, pos)
            predictor_id = name.decode(errors="replace")
        else:
            pos = _skip(raw, pos, tag & 7)
    if pos != end:
        raise WireError("truncated WorkRequest")
    return WorkReport(credits & 0xFFFFFFFF, done, predictor_id)


def _run_of(data: bytes, byte: int) -> int:
    """How many leading bytes of data equal byte."""
    return len(data) - len(data.lstrip(bytes((byte,))))


def encode_submit_response(accepted: Sequence[bytes], done: Sequence[bytes]) -> bytes:
    """An encoded SubmitResponse with the ids of the given keys."""
    out = b""
    if accepted:
        out = _ACCEPTED + _ACCEPTED.join(accepted)
    if done:
        out += _DONE + _DONE.join(done)
    return out


def _stage(tag: bytes, ns: int) -> bytes:
    inner = tag + encode_varint(ns)
    return _TAG_STAGES + encode_varint(len(inner)) + inner


def stamp_ns(stamp: bytes) -> int:
    """The time a stamp made by ``queued_stamp`` or ``dispatched_stamp`` holds."""
    return _read_varint(stamp, 3)[0]


def queued_stamp(ns: int) -> bytes:
    """Bytes that, appended to an encoded order, set ``stages.queued_ns``."""
    return _stage(_TAG_QUEUED_NS, ns)


def dispatched_stamp(ns: int) -> bytes:
    """Bytes that, appended to an encoded order, set ``stages.dispatched_ns``."""
    return _stage(_TAG_DISPATCHED_NS, ns)


# Orders to send, as runs that share a queued stamp: (encoded orders, queued stamp).
Piece = tuple[Sequence[Body], bytes]


def _records(bodies: Sequence[Body], tail: bytes) -> Iterable[Body]:
    """The parts of ``orders`` records, each order's bytes followed by ``tail``."""
    extra = len(tail)
    try:
        headers = list(map(_HEADER, map(extra.__add__, map(len, bodies))))
    except IndexError:  # an order of 16 KiB or more
        headers = [bytes([_TAG_ORDERS]) + encode_varint(len(b) + extra) for b in bodies]
    return chain.from_iterable(zip(headers, bodies, repeat(tail)))


def encode_work_responses(pieces: Sequence[Piece], stamp: bytes, limit: int) -> list[bytes]:
    """Encoded WorkResponses carrying the orders, each about ``limit`` bytes at most.

    Each order is followed by its queued stamp and ``stamp`` (the dispatched stamp). An
    order bigger than ``limit`` travels alone.
    """
    tails = [queued + stamp for _, queued in pieces]
    overhead = len(stamp) + 16  # a queued stamp and a record header, generously
    total = sum(sum(map(len, bodies)) + overhead * len(bodies) for bodies, _ in pieces)
    if total <= limit:
        parts: list[Body] = []
        for (bodies, _), tail in zip(pieces, tails, strict=True):
            parts += _records(bodies, tail)
        return [b"".join(parts)] if parts else []
    # Too much for one message: cut it, order by order.
    out: list[bytes] = []
    parts = []
    size = 0
    for (bodies, _), tail in zip(pieces, tails, strict=True):
        for body in bodies:
            n = len(body) + len(tail)
            if size and size + n > limit:
                out.append(b"".join(parts))
                parts = []
                size = 0
            parts += (bytes([_TAG_ORDERS]) + encode_varint(n), body, tail)
            size += n + 4
    if parts:
        out.append(b"".join(parts))
    return out
