"""The report's CSV files, written one way: columns in order of first appearance (or given), one row per dict,
atomically (a reader never sees half a file)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from pathlib import Path

from overparam.atomic import atomic_write_text
from overparam.report.curves import _format


def csv_cell(value):
    """NaN as an empty cell, a tuple as [a,b], anything else as the csv module writes it (floats in full)."""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return _format(value) if isinstance(value, tuple) else value


def write_csv(rows: list[dict], path: str | Path, fields=None, cell: Callable = csv_cell) -> None:
    columns = list(fields) if fields else list(dict.fromkeys(column for row in rows for column in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: cell(value) for key, value in row.items()})
    atomic_write_text(Path(path), buffer.getvalue())
