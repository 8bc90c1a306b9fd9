from hydra.v1 import order_pb2 as _order_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitRequest(_message.Message):
    __slots__ = ("orders", "feeder_id")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    FEEDER_ID_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[_order_pb2.InferenceOrder]
    feeder_id: str
    def __init__(self, orders: _Optional[_Iterable[_Union[_order_pb2.InferenceOrder, _Mapping]]] = ..., feeder_id: _Optional[str] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("accepted", "done")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    accepted: _containers.RepeatedScalarFieldContainer[str]
    done: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, accepted: _Optional[_Iterable[str]] = ..., done: _Optional[_Iterable[str]] = ...) -> None: ...

class WorkRequest(_message.Message):
    __slots__ = ("credits", "done", "predictor_id")
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_ID_FIELD_NUMBER: _ClassVar[int]
    credits: int
    done: _containers.RepeatedScalarFieldContainer[str]
    predictor_id: str
    def __init__(self, credits: _Optional[int] = ..., done: _Optional[_Iterable[str]] = ..., predictor_id: _Optional[str] = ...) -> None: ...

class WorkResponse(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[_order_pb2.InferenceOrder]
    def __init__(self, orders: _Optional[_Iterable[_Union[_order_pb2.InferenceOrder, _Mapping]]] = ...) -> None: ...
