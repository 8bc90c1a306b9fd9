"""Hydra's file-naming convention and hall-specific patterns."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hydra_feeder.naming import (
    ParsedName,
    compile_pattern,
    make_parser,
    parse_hydra,
    parse_with_pattern,
    same_file_type,
)
from hydra_feeder.settings import FeederSettings


def test_the_documented_example() -> None:
    parsed = parse_hydra("RunPeriod-2021-08/Run80464/RF_TOF_selftiming-02_0037.png")
    assert parsed == ParsedName(
        plot_type="RF_TOF_selftiming",
        extension="png",
        run_number=80464,
        chunk=37,
        run_period="RunPeriod-2021-08",
    )


@pytest.mark.parametrize(
    ("path", "plot_type", "chunk"),
    [
        ("Run1/FTOF_adcTime_s1.png", "FTOF_adcTime_s1", -1),  # _s1 is no chunk
        ("Run1/RICH_s4_adc.png", "RICH_s4_adc", -1),
        ("Run1/CDC_occupancy_0002.png", "CDC_occupancy", 2),  # chunked
        ("Run1/CDC_occupancy-07.png", "CDC_occupancy", -1),  # pad stripped
        ("Run1/CDC_occupancy-07_0000.png", "CDC_occupancy", 0),
        ("Run1/RF-TOF.png", "RF-TOF", -1),  # a dash without digits stays
    ],
)
def test_chunk_and_pad(path: str, plot_type: str, chunk: int) -> None:
    parsed = parse_hydra(path)
    assert parsed is not None
    assert (parsed.plot_type, parsed.chunk) == (plot_type, chunk)


@pytest.mark.parametrize(
    ("path", "run_number", "run_period"),
    [
        ("RunPeriod-2021-08/Run80464/X.png", 80464, "RunPeriod-2021-08"),
        ("RunPeriod-2022-05/051234/X.png", 51234, "RunPeriod-2022-05"),  # numeric element
        ("Run_012345/X.png", 12345, ""),
        ("RunPeriod-2019-01/X.png", 0, "RunPeriod-2019-01"),  # RunPeriod is no run number
        ("plots/X.png", 0, ""),
        ("Run100/sub/Run200/X.png", 200, ""),  # the nearest directory wins
        ("RunLog/X.png", 0, ""),  # no digits, no run number
    ],
)
def test_run_number_and_period(path: str, run_number: int, run_period: str) -> None:
    parsed = parse_hydra(path)
    assert parsed is not None
    assert (parsed.run_number, parsed.run_period) == (run_number, run_period)


def test_extension_is_lower_case_and_needed() -> None:
    parsed = parse_hydra("Run1/RF_adc.PNG")
    assert parsed is not None and parsed.extension == "png"
    assert parse_hydra("Run1/RF_adc") is None
    assert parse_hydra("Run1/.png") is None
    assert parse_hydra("") is None


def test_custom_pattern() -> None:
    pattern = compile_pattern(
        r"(?P<run_period>[^/]+)/r(?P<run_number>\d+)/(?P<plot_type>[A-Za-z_]+)\.(?:\d+)\.png"
    )
    parsed = parse_with_pattern("2023a/r0042/hcal_occ.17.png", pattern)
    assert parsed == ParsedName("hcal_occ", "png", 42, -1, "2023a")
    assert parse_with_pattern("2023a/r0042/sub/hcal_occ.17.png", pattern) is None
    with_chunk = make_parser(r"(?P<plot_type>\w+?)_c(?P<chunk>\d+)\.jpg")
    assert with_chunk("ecal_c12.jpg") == ParsedName("ecal", "jpg", 0, 12, "")
    assert with_chunk("ecal.jpg") is None


def test_pattern_needs_a_plot_type_group() -> None:
    with pytest.raises(ValueError, match="plot_type"):
        compile_pattern(r"(?P<run_number>\d+)/.*")
    with pytest.raises(ValidationError):
        FeederSettings(file_pattern=r"(?P<run>\d+).png")
    assert make_parser("") is parse_hydra


def test_file_types() -> None:
    assert same_file_type("jpeg", "jpg")
    assert same_file_type("PNG", "png")
    assert not same_file_type("jpg", "png")
