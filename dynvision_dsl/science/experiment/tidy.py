"""The tidy CSV (one row per measured value, COLUMNS) and the main measure as a text table."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from ...util.files import write_atomic
from .result import COLUMNS, ExperimentResult
from .table import PROTOCOLS


def level_text(level) -> str:
    """A level as written in the CSV and on axes: whole numbers as such, empty for None."""
    return "" if level is None else str(level) if isinstance(level, int) else f"{level:g}"


def _num(v: float | None) -> str:
    if v is None:
        return ""
    if isinstance(v, (int, np.integer)):
        return str(v)
    return "nan" if math.isnan(v) else f"{v:.9g}"


def to_csv(result: ExperimentResult) -> str:
    """The tidy table: one row per measured value (COLUMNS)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in result.rows:
        w.writerow([r.protocol, r.variant, r.area, level_text(r.level), "" if r.step is None else r.step,
                    _num(r.ms), r.measure, _num(r.value), result.weights.get(r.variant, "")])
    return buf.getvalue()


def write_csv(result: ExperimentResult, path: str | Path, overwrite: bool = False) -> Path:
    """Write the tidy CSV atomically (refusing to replace a file unless `overwrite`)."""
    write_atomic(path, to_csv(result), overwrite=overwrite)
    return Path(path)


def format_table(result: ExperimentResult, measure: str | None = None) -> str:
    """The main measure as text: one line per variant and area, one column per level."""
    measure = measure or PROTOCOLS[result.protocol].main
    table = result.values(measure)
    head = ["variant", "area"] + [level_text(lv) for lv in result.levels]
    lines = [head]
    for variant in result.variants:
        for area, vals in table.get(variant, {}).items():
            lines.append([variant, area] + ["-" if math.isnan(v) else f"{v:.4g}" for v in vals])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    proto = PROTOCOLS[result.protocol]
    text = [f"{measure} by {proto.axis}" + (" (steps)" if proto.steps_axis else "")]
    for i, line in enumerate(lines):
        text.append("  ".join(c.ljust(widths[k]) if k < 2 else c.rjust(widths[k]) for k, c in enumerate(line)).rstrip())
        if i == 0:
            text.append("  ".join("-" * w for w in widths))
    return "\n".join(text)
