"""Plot-type catalogs of the halls the simulator imitates.

Names come from /work/shared/halls.md (what the seed documents show). Where a hall's
quoted count is larger than the names that survived in the seeds, the missing ones are
filled with the sector-symmetric siblings of listed names (Hall B) or other detectors of the
hall (Hall D); ePIC's 568 names are generated from its detector list.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a plot looks like, which decides how the simulator draws it and what can go wrong.
KINDS = (
    "occupancy_disc",
    "occupancy_grid",
    "spectrum",
    "timing",
    "drift",
    "multiplicity",
    "counter",
)

BASIC_LABELS = ("Good", "Bad", "NoData")


@dataclass(frozen=True)
class PlotTypeSpec:
    """A plot type as the simulator knows it: name, detector, kind and valid labels."""

    name: str
    detector: str
    kind: str
    labels: tuple[str, ...] = BASIC_LABELS


def _kind_for(name: str) -> str:
    low = name.lower()
    if "occupancy2d" in low or low.endswith("hits2d") or "coccupancy" in low:
        return "occupancy_disc"
    if "occupancy" in low or (low.startswith("rich_s") and "adc" not in low):
        return "occupancy_grid"
    if "multiplicity" in low or "occupancy1d" in low or "hits1d" in low:
        return "multiplicity"
    if "tdc1d" in low or "tmax" in low:
        return "drift"
    if "time" in low or "tdc" in low or "timing" in low or "phase" in low:
        return "timing"
    if "error" in low or "hel_" in low:
        return "counter"
    return "spectrum"


def _spec(name: str, labels: tuple[str, ...] = BASIC_LABELS) -> PlotTypeSpec:
    detector = name.split("_", 1)[0]
    return PlotTypeSpec(name, detector, _kind_for(name), labels)


DEMO = (
    PlotTypeSpec("ECAL_adcOccupancy", "ECAL", "occupancy_disc", BASIC_LABELS),
    PlotTypeSpec("FTOF_adcTime_s1", "FTOF", "timing", BASIC_LABELS),
    PlotTypeSpec("DC_tdc1d_s1", "DC", "drift", BASIC_LABELS),
    PlotTypeSpec("RF_time", "RF", "timing", BASIC_LABELS),
    PlotTypeSpec("BMT_multiplicity", "BMT", "multiplicity", BASIC_LABELS),
    PlotTypeSpec("HTCC_adcEnergy", "HTCC", "spectrum", BASIC_LABELS),
)


def _sectors(stem: str, sectors: range | list[int]) -> list[str]:
    return [f"{stem}_s{s}" for s in sectors]


def _hallb_names() -> list[str]:
    names = ["LTCC_adc", "LTCC_adcTime", "FTOF_misc_s3", "FTOF_misc_s4"]
    names += _sectors("FTOF_tdc", range(1, 7))
    names += _sectors("FTOF_adcEnergy", range(1, 7))  # s6 filled in
    names += _sectors("FTOF_adcTime", range(1, 7))
    names += ["FTOF_tdcOccupancy", "FTOF_adcOccupancy"]
    names += ["BST_multiplicity", "BST_hits1d", "BST_hits2d", "BMT_cOccupancy", "BMT_multiplicity"]
    names += _sectors("ECAL_adcEnergy", range(1, 7))  # s4..s6 filled in
    names += _sectors("ECAL_adcTime", range(1, 7))  # all but s3 filled in
    names += _sectors("ECAL_tdc", range(1, 6))  # s1, s4, s5 filled in
    names += ["ECAL_tdcOccupancy", "ECAL_adcOccupancy"]
    names += _sectors("DC_tdc1d", range(1, 7))
    names += ["CTOF_adc", "CTOF_tdc", "RICH_s1", "RICH_s3", "RICH_s4_adc", "RICH_occupancy2d"]
    names += ["TimeJitter_phase", "RF_adc", "RF_tdc", "RF_time", "HEL_signals", "HEL_board"]
    names += ["HTCC_adcEnergy", "FTTRK_tmax", "FTTRK_occupancy2d", "FTTRK_occupancy1d"]
    names += ["FTTRK_adc", "FTCAL_adc", "RASTER_R1occupancy"]
    return names


HALLB_LABELS = ("Good", "Bad", "NoData", "HotChannel")

HALLD_NAMES = (
    "CDC_occupancy",
    "FDC_occupancy",
    "BCAL_occupancy",
    "FCAL_occupancy",
    "DIRC_occupancy",
    "RF_TOF_selftiming",
    "RF_TAGH_selftiming",
    "RF_FDC_selftiming",
    "RF_PSC_selftiming",
    "fa125_itrig_errors",
    # Filled in: other GlueX detectors with occupancy plots.
    "TOF_occupancy",
    "SC_occupancy",
    "PS_occupancy",
    "TAGH_occupancy",
    "TAGM_occupancy",
)
HALLD_LABELS = ("Good", "Acceptable", "Bad", "NoData")

EPIC_DETECTORS = (
    "SVT", "MPGD", "BTOF", "ETOF", "DIRC", "pfRICH", "dRICH", "BEMC",
    "EEMC", "FEMC", "BHCAL", "LFHCAL", "ZDC", "B0", "RP", "LumiSpec",
)  # fmt: skip
EPIC_QUANTITIES = ("occupancy2d", "adc", "tdc", "time", "multiplicity", "energy")
EPIC_COUNT = 568


def _epic_names() -> list[str]:
    names = [
        f"{det}_{q}_l{layer}"
        for det in EPIC_DETECTORS
        for q in EPIC_QUANTITIES
        for layer in range(1, 7)
    ]
    return names[:EPIC_COUNT]


def hall_catalog(hall: str) -> list[PlotTypeSpec]:
    """The plot types of ``hall``: ``demo`` (6), ``hallb`` (73), ``halld`` (15), ``epic`` (568)."""
    key = hall.lower().replace(" ", "").replace("-", "")
    if key == "demo":
        return list(DEMO)
    if key in ("hallb", "clas12"):
        specs = [_spec(n) for n in _hallb_names()]
        return [
            PlotTypeSpec(s.name, s.detector, s.kind, HALLB_LABELS)
            if s.kind.startswith("occupancy")
            else s
            for s in specs
        ]
    if key in ("halld", "gluex"):
        return [
            PlotTypeSpec(
                n,
                "RF" if n.startswith("RF_") else n.split("_", 1)[0],
                "timing" if "timing" in n else ("counter" if "error" in n else "occupancy_grid"),
                HALLD_LABELS,
            )
            for n in HALLD_NAMES
        ]
    if key == "epic":
        return [_spec(n) for n in _epic_names()]
    raise ValueError(f"unknown hall {hall!r} (known: demo, hallb, halld, epic)")


def find_spec(name: str, hall: str | None = None) -> PlotTypeSpec:
    """The spec of plot type ``name`` (searching ``hall``, else every catalog)."""
    halls = [hall] if hall else ["demo", "hallb", "halld", "epic"]
    for h in halls:
        for spec in hall_catalog(h):
            if spec.name == name:
                return spec
    return _spec(name)
