from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StageTimestamps(_message.Message):
    __slots__ = ("file_ns", "fed_ns", "queued_ns", "dispatched_ns", "predict_start_ns", "predict_end_ns", "reported_ns")
    FILE_NS_FIELD_NUMBER: _ClassVar[int]
    FED_NS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_NS_FIELD_NUMBER: _ClassVar[int]
    DISPATCHED_NS_FIELD_NUMBER: _ClassVar[int]
    PREDICT_START_NS_FIELD_NUMBER: _ClassVar[int]
    PREDICT_END_NS_FIELD_NUMBER: _ClassVar[int]
    REPORTED_NS_FIELD_NUMBER: _ClassVar[int]
    file_ns: int
    fed_ns: int
    queued_ns: int
    dispatched_ns: int
    predict_start_ns: int
    predict_end_ns: int
    reported_ns: int
    def __init__(self, file_ns: _Optional[int] = ..., fed_ns: _Optional[int] = ..., queued_ns: _Optional[int] = ..., dispatched_ns: _Optional[int] = ..., predict_start_ns: _Optional[int] = ..., predict_end_ns: _Optional[int] = ..., reported_ns: _Optional[int] = ...) -> None: ...

class InferenceOrder(_message.Message):
    __slots__ = ("order_id", "plot_type", "run_period", "run_number", "chunk", "source_path", "image", "stages", "file_size")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    PLOT_TYPE_FIELD_NUMBER: _ClassVar[int]
    RUN_PERIOD_FIELD_NUMBER: _ClassVar[int]
    RUN_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    FILE_SIZE_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    plot_type: str
    run_period: str
    run_number: int
    chunk: int
    source_path: str
    image: bytes
    stages: StageTimestamps
    file_size: int
    def __init__(self, order_id: _Optional[str] = ..., plot_type: _Optional[str] = ..., run_period: _Optional[str] = ..., run_number: _Optional[int] = ..., chunk: _Optional[int] = ..., source_path: _Optional[str] = ..., image: _Optional[bytes] = ..., stages: _Optional[_Union[StageTimestamps, _Mapping]] = ..., file_size: _Optional[int] = ...) -> None: ...
