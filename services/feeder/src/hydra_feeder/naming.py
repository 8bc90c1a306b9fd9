"""What a file's path says: plot type, run number, run period, chunk.

Hydra's convention (the default), e.g. ``RunPeriod-2021-08/Run80464/RF_TOF_selftiming-02_0037.png``:

- the file's base name is the plot type (``RF_TOF_selftiming``);
- a trailing ``_NNNN`` (digits) is the chunk number (37) and marks the plot type as chunked;
- a trailing ``-NN`` (digits) before it is a pad number and is stripped (``-02``);
- the extension is the file type (``png``), which must match the plot type's file type;
- the run number comes from the nearest directory containing ``Run`` (not ``RunPeriod``),
  digits extracted (``Run80464`` -> 80464), or from a purely numeric directory;
- the run period is the nearest directory containing ``RunPeriod``.

Halls that name files differently set ``HYDRA_FILE_PATTERN``: a regular expression matched
against the whole relative path, with named groups ``plot_type`` (required), ``run_number``,
``chunk``, ``run_period`` (and optionally ``extension``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

_CHUNK = re.compile(r"(?P<base>.+)_(?P<chunk>\d+)")
_PAD = re.compile(r"(?P<base>.+)-\d+")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class ParsedName:
    """The facts a file's path gives about the plot in it."""

    plot_type: str
    extension: str  # lower case, without the dot
    run_number: int = 0
    chunk: int = -1
    run_period: str = ""


Parser = Callable[[str], "ParsedName | None"]


def _extension(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""


def _run_number(text: str) -> int:
    digits = _DIGITS.search(text)
    return int(digits.group()) if digits else 0


def parse_hydra(relative: str) -> ParsedName | None:
    """Parse a relative path by Hydra's convention; None when it does not follow it."""
    parts = PurePosixPath(relative).parts
    if not parts:
        return None
    stem, dot, ext = parts[-1].rpartition(".")
    if not dot or not stem or not ext:
        return None
    chunk = -1
    if m := _CHUNK.fullmatch(stem):
        stem, chunk = m["base"], int(m["chunk"])
    if m := _PAD.fullmatch(stem):
        stem = m["base"]
    run_number = -1
    run_period = ""
    for part in reversed(parts[:-1]):  # the nearest directory wins
        if "RunPeriod" in part:
            run_period = run_period or part
        elif run_number < 0 and ("Run" in part or part.isdigit()) and _DIGITS.search(part):
            run_number = _run_number(part)
    return ParsedName(
        plot_type=stem,
        extension=ext.lower(),
        run_number=max(run_number, 0),
        chunk=chunk,
        run_period=run_period,
    )


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a hall's file pattern; it must name a ``plot_type`` group."""
    compiled = re.compile(pattern)
    if "plot_type" not in compiled.groupindex:
        raise ValueError("a file pattern needs a named group (?P<plot_type>...)")
    return compiled


def parse_with_pattern(relative: str, pattern: re.Pattern[str]) -> ParsedName | None:
    """Parse a relative path with a hall's own pattern; None when it does not match."""
    m = pattern.fullmatch(relative)
    if m is None:
        return None
    groups = m.groupdict()
    plot_type = groups.get("plot_type") or ""
    extension = (groups.get("extension") or _extension(relative)).lower()
    if not plot_type or not extension:
        return None
    chunk_text = groups.get("chunk")
    return ParsedName(
        plot_type=plot_type,
        extension=extension,
        run_number=_run_number(groups.get("run_number") or ""),
        chunk=int(chunk_text) if chunk_text and chunk_text.isdigit() else -1,
        run_period=groups.get("run_period") or "",
    )


def make_parser(pattern: str = "") -> Parser:
    """The parser for a hall: its pattern when given, else Hydra's convention."""
    if not pattern:
        return parse_hydra
    compiled = compile_pattern(pattern)
    return lambda relative: parse_with_pattern(relative, compiled)


def same_file_type(extension: str, file_type: str) -> bool:
    """True when a file's extension is the plot type's file type (jpg and jpeg are one)."""
    aliases = {"jpeg": "jpg", "tiff": "tif"}
    a, b = extension.lower().lstrip("."), file_type.lower().lstrip(".")
    return aliases.get(a, a) == aliases.get(b, b)
