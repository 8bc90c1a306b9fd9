from hydra.v1 import order_pb2 as _order_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReportStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPORT_STATUS_UNSPECIFIED: _ClassVar[ReportStatus]
    REPORT_STATUS_OK: _ClassVar[ReportStatus]
    REPORT_STATUS_NO_MODEL: _ClassVar[ReportStatus]
    REPORT_STATUS_ERROR: _ClassVar[ReportStatus]
REPORT_STATUS_UNSPECIFIED: ReportStatus
REPORT_STATUS_OK: ReportStatus
REPORT_STATUS_NO_MODEL: ReportStatus
REPORT_STATUS_ERROR: ReportStatus

class HeatMap(_message.Message):
    __slots__ = ("height", "width", "values")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    height: int
    width: int
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, height: _Optional[int] = ..., width: _Optional[int] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class Report(_message.Message):
    __slots__ = ("order", "status", "model_id", "model_name", "model_version", "labels", "weights", "heat_map", "error", "predictor_id", "shadow")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    HEAT_MAP_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_ID_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    order: _order_pb2.InferenceOrder
    status: ReportStatus
    model_id: int
    model_name: str
    model_version: int
    labels: _containers.RepeatedScalarFieldContainer[str]
    weights: _containers.RepeatedScalarFieldContainer[float]
    heat_map: HeatMap
    error: str
    predictor_id: str
    shadow: ShadowResult
    def __init__(self, order: _Optional[_Union[_order_pb2.InferenceOrder, _Mapping]] = ..., status: _Optional[_Union[ReportStatus, str]] = ..., model_id: _Optional[int] = ..., model_name: _Optional[str] = ..., model_version: _Optional[int] = ..., labels: _Optional[_Iterable[str]] = ..., weights: _Optional[_Iterable[float]] = ..., heat_map: _Optional[_Union[HeatMap, _Mapping]] = ..., error: _Optional[str] = ..., predictor_id: _Optional[str] = ..., shadow: _Optional[_Union[ShadowResult, _Mapping]] = ...) -> None: ...

class ShadowResult(_message.Message):
    __slots__ = ("model_id", "model_name", "model_version", "status", "labels", "weights", "error", "seconds_per_image", "active_seconds_per_image")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SECONDS_PER_IMAGE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_SECONDS_PER_IMAGE_FIELD_NUMBER: _ClassVar[int]
    model_id: int
    model_name: str
    model_version: int
    status: ReportStatus
    labels: _containers.RepeatedScalarFieldContainer[str]
    weights: _containers.RepeatedScalarFieldContainer[float]
    error: str
    seconds_per_image: float
    active_seconds_per_image: float
    def __init__(self, model_id: _Optional[int] = ..., model_name: _Optional[str] = ..., model_version: _Optional[int] = ..., status: _Optional[_Union[ReportStatus, str]] = ..., labels: _Optional[_Iterable[str]] = ..., weights: _Optional[_Iterable[float]] = ..., error: _Optional[str] = ..., seconds_per_image: _Optional[float] = ..., active_seconds_per_image: _Optional[float] = ...) -> None: ...
