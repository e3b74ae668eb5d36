"""DeepLabCut ``CollectedData`` label tables: the CSV (with the :mod:`csv` module)
and its ``.h5`` twin (pandas and PyTables, imported only when an ``.h5`` is read or
written), and the error type of the DeepLabCut modules (see
:mod:`posekit.formats.deeplabcut` for the format itself)."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from posekit.formats.numbers import shortest_decimals

__all__ = [
    "DeepLabCutFormatError",
    "LabelTable",
    "format_collected_csv",
    "h5_writer",
    "parse_collected_csv",
    "read_h5",
    "write_h5",
]


class DeepLabCutFormatError(ValueError):
    """A DeepLabCut project or table is malformed; the message names the file, row and column."""


@dataclass
class LabelTable:
    """One ``CollectedData`` table.

    Attributes:
        scorer: The ``scorer`` header value.
        bodyparts: ``(C,)`` body part of each value column.
        coords: ``(C,)`` ``"x"`` or ``"y"`` of each value column.
        individuals: ``(C,)`` individual of each value column (multi-animal), or None.
        index: ``(N,)`` frame path of each row (``labeled-data/<video>/<file>``).
        values: ``(N, C) float64``, NaN where not labeled.
    """

    scorer: str
    bodyparts: list[str]
    coords: list[str]
    individuals: list[str] | None
    index: list[str]
    values: np.ndarray


def parse_collected_csv(text: str, *, source: str = "CollectedData CSV") -> LabelTable:
    """Parse a ``CollectedData_<scorer>.csv`` (either index layout).

    Raises:
        DeepLabCutFormatError: naming the row and column of the first bad cell.
    """
    rows = list(csv.reader(io.StringIO(text)))
    header: dict[str, list[str]] = {}
    r = 0
    while (
        r < len(rows) and rows[r] and rows[r][0] in ("scorer", "individuals", "bodyparts", "coords")
    ):
        header[rows[r][0]] = rows[r]
        r += 1
        if "coords" in header:
            break
    for key in ("scorer", "bodyparts", "coords"):
        if key not in header:
            raise DeepLabCutFormatError(
                f"{source}: missing the {key!r} header row (expected scorer, [individuals,] "
                "bodyparts, coords)"
            )
    scorer_row = header["scorer"]
    start = next((j for j in range(1, len(scorer_row)) if scorer_row[j] != ""), None)
    if start is None:
        raise DeepLabCutFormatError(f"{source}: the scorer row names no scorer")
    width = len(scorer_row)
    for key, row in header.items():
        if len(row) != width:
            raise DeepLabCutFormatError(
                f"{source}: header row {key!r} has {len(row)} cells, the scorer row {width}"
            )
    coords = header["coords"][start:]
    for j, c in enumerate(coords):
        if c not in ("x", "y"):
            raise DeepLabCutFormatError(
                f"{source}: coords row, column {start + j + 1}: {c!r} (expected x or y; "
                "a CollectedData table has no likelihood)"
            )
    table = LabelTable(
        scorer=scorer_row[start],
        bodyparts=header["bodyparts"][start:],
        coords=coords,
        individuals=header["individuals"][start:] if "individuals" in header else None,
        index=[],
        values=np.zeros((0, width - start)),
    )
    cells: list[list[str]] = []
    lines: list[int] = []
    for line, row in enumerate(rows[r:], start=r + 1):
        if not row or all(cell == "" for cell in row):
            continue
        if len(row) != width:
            raise DeepLabCutFormatError(
                f"{source}: row {line} has {len(row)} cells, expected {width}"
            )
        table.index.append("/".join(cell for cell in row[:start] if cell != ""))
        cells.append(row[start:])
        lines.append(line)
    text = np.array(cells, dtype=str).reshape(len(cells), width - start)
    text = np.where(text == "", "nan", text)  # (a str array of 1-character cells widens)
    try:
        values = text.astype(np.float64)  # parses every cell in C
        bad = ~np.isfinite(values)
        if bad.any():  # only those cells: lowercasing all of them costs as much as parsing
            bad[bad] = np.char.lower(text[bad]) != "nan"
    except ValueError:
        values, bad = None, None
    if values is None or bad.any():
        values = None
        for i, row in enumerate(cells):  # slow path: name the first bad cell
            for j, cell in enumerate(row):
                try:
                    ok = cell == "" or cell.lower() == "nan" or math.isfinite(float(cell))
                except ValueError:
                    ok = False
                if not ok:
                    raise DeepLabCutFormatError(
                        f"{source}: row {lines[i]} ({table.index[i]!r}), column {start + j + 1} "
                        f"({table.bodyparts[j]} {coords[j]}): {cell!r} is not a number"
                    )
        raise DeepLabCutFormatError(f"{source}: a value is not a number")
    table.values = values
    return table


def format_collected_csv(table: LabelTable) -> str:
    """The table as DeepLabCut >= 2.2 writes it (three index columns)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    pad = ["", ""]
    writer.writerow(["scorer", *pad, *[table.scorer] * len(table.coords)])
    if table.individuals is not None:
        writer.writerow(["individuals", *pad, *table.individuals])
    writer.writerow(["bodyparts", *pad, *table.bodyparts])
    writer.writerow(["coords", *pad, *table.coords])
    text = shortest_decimals(table.values.astype(np.float32)).tolist() if table.index else []
    for path, row, exact in zip(table.index, text, table.values.tolist()):
        parts = path.split("/", 2)
        cells = ["" if math.isnan(e) else repr(v) for v, e in zip(row, exact)]
        writer.writerow([*parts, *cells])
    return out.getvalue()


def read_h5(path: Path) -> LabelTable:
    try:
        import pandas as pd
    except ImportError:
        raise DeepLabCutFormatError(
            f"{path}: reading DeepLabCut .h5 tables needs pandas and tables "
            "(pip install pandas tables), or read the CollectedData .csv"
        ) from None
    try:
        frame = pd.read_hdf(path)
    except Exception as exc:  # pandas/PyTables raise many kinds on damaged files
        raise DeepLabCutFormatError(f"{path}: cannot read the HDF5 table: {exc}") from None
    names = list(frame.columns.names)
    if names[0] != "scorer" or names[-2:] != ["bodyparts", "coords"]:
        raise DeepLabCutFormatError(
            f"{path}: columns are {names}, expected scorer, [individuals,] bodyparts, coords"
        )
    columns = list(frame.columns)
    index = [
        "/".join(str(p) for p in (key if isinstance(key, tuple) else (key,))) for key in frame.index
    ]
    return LabelTable(
        scorer=str(columns[0][0]) if columns else "",
        bodyparts=[str(c[-2]) for c in columns],
        coords=[str(c[-1]) for c in columns],
        individuals=[str(c[1]) for c in columns] if len(names) == 4 else None,
        index=index,
        values=frame.to_numpy(dtype=np.float64, na_value=np.nan),
    )


def h5_writer() -> Any:
    try:
        import pandas as pd
        import tables  # noqa: F401  (pandas needs it for to_hdf)
    except ImportError:
        return None
    return pd


def write_h5(pd: Any, table: LabelTable, path: Path) -> None:
    levels = ["scorer", "individuals", "bodyparts", "coords"]
    if table.individuals is None:
        levels.remove("individuals")
        tuples = [(table.scorer, b, c) for b, c in zip(table.bodyparts, table.coords)]
    else:
        tuples = [
            (table.scorer, i, b, c)
            for i, b, c in zip(table.individuals, table.bodyparts, table.coords)
        ]
    columns = pd.MultiIndex.from_tuples(tuples, names=levels)
    index = pd.MultiIndex.from_tuples([tuple(p.split("/", 2)) for p in table.index])
    frame = pd.DataFrame(table.values.astype(np.float64), columns=columns, index=index)
    frame.to_hdf(path, key="df_with_missing", mode="w")
