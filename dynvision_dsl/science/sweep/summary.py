"""A finished sweep's summary: DIR/summary.csv (one row per variant and protocol: the grid values,
the best held-out accuracy, and the protocol's main measure per area and level) and comparison
plots (DIR/plots/accuracy.png, DIR/plots/PROTOCOL.png with one curve per variant).

Everything is read from the files the workflow's jobs wrote (runs/VARIANT/run.json,
experiments/VARIANT/PROTOCOL/PROTOCOL.csv); `plan` names the variants and protocols.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from ...util.files import atomic_targets
from .plan import SweepError

def _run_info(folder: Path, variant: str) -> dict:
    try:
        return json.loads((folder / "runs" / variant / "run.json").read_text())
    except (OSError, ValueError) as exc:
        raise SweepError(f"variant {variant} has no readable runs/{variant}/run.json ({exc}); "
                         f"run the workflow (snakemake) first") from None


def _experiment_rows(folder: Path, variant: str, protocol: str) -> list[dict]:
    path = folder / "experiments" / variant / protocol / f"{protocol}.csv"
    try:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))
    except OSError as exc:
        raise SweepError(f"variant {variant} has no readable {path} ({exc.strerror}); run the workflow first") from None


def main_measure(protocol: str, rows: list[dict]) -> str | None:
    """The protocol's main measure (experiment's table), else the first level-wise scalar in its CSV."""
    from ...experiment import PROTOCOLS

    if protocol in PROTOCOLS:
        return PROTOCOLS[protocol].main
    return next((r["measure"] for r in rows if r["level"] and not r["step"]), None)


def _row_dict(row) -> dict:
    """An ExperimentResult row as the CSV's strings (for main_measure)."""
    return {"measure": row.measure, "level": "" if row.level is None else str(row.level),
            "step": "" if row.step is None else str(row.step)}


def _level_text(text: str) -> str:
    value = float(text)
    return f"{value:g}"


def key_values(protocol: str, rows: list[dict]) -> dict[str, str]:
    """`AREA MEASURE@LEVEL` -> value for the main measure (tidy rows of one variant)."""
    measure = main_measure(protocol, rows)
    return {f"{r['area']} {measure}@{_level_text(r['level'])}": r["value"]
            for r in rows if r["measure"] == measure and r["level"] and not r["step"]}


def summary_rows(folder: Path, plan: dict) -> list[dict]:
    """One dict per variant and protocol (per variant alone when the sweep runs no experiments)."""
    grid = list(plan["grid"])
    out = []
    for variant, spec in plan["variants"].items():
        info = _run_info(folder, variant)
        best = info.get("best") or {}
        base = {"variant": variant, "label": spec["label"], **{n: spec["params"].get(n, "") for n in grid},
                "best_test_acc": best.get("test_acc", ""), "best_epoch": best.get("epoch", ""),
                "epochs": info.get("epochs_done", "")}
        for protocol in plan["experiments"] or [""]:
            values = key_values(protocol, _experiment_rows(folder, variant, protocol)) if protocol else {}
            out.append({**base, "protocol": protocol, **values})
    return out


def to_csv(rows: list[dict], grid: list[str]) -> str:
    """The rows as CSV: fixed columns first, then every measure column in order of appearance."""
    first = ["variant", "label", *grid, "protocol", "best_test_acc", "best_epoch", "epochs"]
    extra = list(dict.fromkeys(k for r in rows for k in r if k not in first))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, first + extra, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _result(folder: Path, plan: dict, protocol: str):
    """The variants' CSVs of one protocol as one ExperimentResult, variants labelled as in the plan."""
    from ...experiment import ExperimentResult, Row

    rows, areas, dt = [], {}, {}
    for variant, spec in plan["variants"].items():
        label = spec["label"]
        for r in _experiment_rows(folder, variant, protocol):
            level = float(r["level"]) if r["level"] else None
            step = int(r["step"]) if r["step"] else None
            rows.append(Row(protocol, label, r["area"], level, step, float(r["ms"]) if r["ms"] else None,
                            r["measure"], float(r["value"]) if r["value"] else math.nan))
            if r["area"] != "readout":
                areas.setdefault(label, {})[r["area"]] = None
            if step and r["ms"]:
                dt[label] = float(r["ms"]) / step
    levels = sorted({r.level for r in rows if r.level is not None and r.step is None})
    labels = [spec["label"] for spec in plan["variants"].values()]
    return ExperimentResult(protocol, levels, labels, {k: tuple(areas.get(k, {})) for k in labels},
                            {k: dt.get(k, 1.0) for k in labels}, rows, title="sweep")


def plot_accuracy(rows: list[dict], path: str, title: str) -> None:
    """Best held-out accuracy per variant, one bar each."""
    from ..plot.figure import new_figure

    seen = {r["label"]: r["best_test_acc"] for r in rows}
    labels = list(seen)
    fig = new_figure(max(4.0, 0.6 * len(labels) + 2), 3.6, dpi=110)
    ax = fig.subplots()
    values = [100 * float(v) if v != "" else math.nan for v in seen.values()]
    ax.bar(range(len(labels)), values, color="#1f5fd6")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
    ax.set(ylabel="best held-out accuracy (%)", ylim=(0, 100))
    ax.set_title(title, fontsize=10, parse_math=False)  # user text: '$' is not mathtext
    fig.subplots_adjust(bottom=0.35)
    with open(path, "wb") as fh:
        fig.savefig(fh, format="png", facecolor="white", metadata={"Software": None})


def summarize(folder: str | Path, plan: dict) -> list[Path]:
    """Write summary.csv and the plots into `folder` (all of them or none); return their paths."""
    from ...experiment import plot_measure

    folder = Path(folder)
    rows = summary_rows(folder, plan)
    targets = [folder / "summary.csv", folder / "plots" / "accuracy.png"]
    targets += [folder / "plots" / f"{p}.png" for p in plan["experiments"]]
    with atomic_targets(targets, overwrite=True) as temps:
        Path(temps[0]).write_text(to_csv(rows, list(plan["grid"])), encoding="utf-8")
        plot_accuracy(rows, temps[1], "sweep: best held-out accuracy per variant")
        for protocol, tmp in zip(plan["experiments"], temps[2:]):
            result = _result(folder, plan, protocol)
            plot_measure(result, main_measure(protocol, [_row_dict(r) for r in result.rows]), tmp)
    return targets

