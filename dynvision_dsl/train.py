"""`dynv train`: fit a spec to labelled images (cross-entropy at every step at
which the readout is present, Adam), evaluate on held-out images after every
epoch, and keep a resumable checkpoint, a CSV of metrics and a learning curve.

    result = train("specs/dyrcnn_x4.dyn", {"size": "32", "steps": "10"}, data="digits", epochs=10)

Batches: every epoch shuffles the training images with a generator seeded by
(seed, epoch) alone and drops the last incomplete batch, so a resumed run, a
straight run and a run under `torchrun` (where rank r takes every world-th
image of each global batch and DistributedDataParallel averages the shards'
gradients) see the same batches and make the same updates.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .checkpoint import Checkpoint, CheckpointError, load_weights
from .util.params import SetParams
from .checkpoint import load as load_checkpoint
from .checkpoint import save as save_checkpoint
from .science.data import DataError, DataOptions, eval_loader, prepare, train_loader
from .util.files import STAGING_PREFIX, OutputError, RunFolder, atomic_open, user_entries, write_atomic
from .util.provenance import metadata, set_text
from .util.source import read_spec_text
from .model import DynModel, NonFiniteError, non_finite_kind
from .pipeline import compile as compile_spec
from .plot import _new_figure

OUTPUTS = ("last.pt", "best.pt", "metrics.csv", "learning_curve.png", "run.json")
RESUME_KEYS = ("params", "data", "batch", "lr", "seed", "test_fraction",
               "val_data", "augment", "normalize")  # must match to resume
_FLAGS = {"data": "--data", "batch": "--batch", "lr": "--lr", "seed": "--seed", "test_fraction": "--test-fraction",
          "val_data": "--val-data", "augment": "--augment", "normalize": "--normalize"}
_BEFORE = {"val_data": None, "augment": False, "normalize": "none"}  # what a run from before these flags used


class TrainError(Exception):
    """A problem the user can fix (bad arguments, data, an existing run); the CLI
    prints it as `dynv: ...` (on rank 0 only: every rank raises the same)."""


@dataclass
class EpochMetrics:
    """One epoch's row of metrics.csv. Training loss and accuracy are means over the
    epoch's batches as they were trained; accuracies are fractions, at the last step
    unless per step (`test_acc_steps[t]`, from the first frame; None while the readout is silent)."""

    epoch: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    test_acc_steps: list[float | None]
    seconds: float
    images_per_s: float = 0.0  # training images per second (data loading included), all processes together
    steps: int = 0  # optimiser steps (fewer than the batches of an epoch when --max-steps ends it)


@dataclass
class TrainResult:
    """A finished (or already complete) run: its folder, the trained model (in eval
    mode, on the training device), every epoch's metrics and the best epoch."""

    out: Path
    model: DynModel
    metrics: list[EpochMetrics]
    best_epoch: int | None
    rank: int = 0

    @property
    def epochs(self) -> int:
        return len(self.metrics)

    @property
    def best_acc(self) -> float | None:
        return None if self.best_epoch is None else self.metrics[self.best_epoch - 1].test_acc


@dataclass
class _Dist:
    """This process's place in a torchrun job (world 1 for a plain process)."""

    rank: int
    world: int
    device: torch.device
    owns_group: bool  # we created the process group, so we destroy it

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def _distributed() -> _Dist:
    """Join the torchrun job named by WORLD_SIZE/RANK/LOCAL_RANK, or run alone;
    the device is cuda:LOCAL_RANK (or cuda) when CUDA is available, else the CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world <= 1 and not (dist.is_available() and dist.is_initialized()):
        return _Dist(0, 1, torch.device("cuda" if cuda else "cpu"), False)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if cuda else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), device, owns)


def _loss(logits: torch.Tensor, labels: torch.Tensor, first: int, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy at every step from `first` on (the readout's silent steps are left
    out); 'mean' averages over steps and images, 'sum' sums images of per-image means."""
    present = logits[:, first:]
    loss = F.cross_entropy(present.transpose(1, 2), labels[:, None].expand(-1, present.shape[1]),
                           reduction=reduction)
    return loss if reduction == "mean" else loss / present.shape[1]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _read_run(out: Path) -> tuple[Checkpoint | None, dict]:
    """The run in `out`: its last checkpoint (None if none) and run.json (empty if none)."""
    try:
        last = load_checkpoint(out / "last.pt") if (out / "last.pt").exists() else None
    except CheckpointError as exc:
        raise TrainError(f"{exc.problem}; restore it, or pass --force to start afresh") from None
    try:
        info = json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        info = {}
    return last, info


def _mismatch(ours: dict, theirs: dict) -> list[str]:
    """What --resume would change, flag by flag, in the user's words."""
    problems = []
    for key in RESUME_KEYS:
        a, b = ours.get(key), theirs.get(key, _BEFORE.get(key))
        if key == "params":
            if dict(a or {}) != dict(b or {}):
                problems.append(f"{set_text(a or {})} (the run used {set_text(b or {})})")
        elif a != b:
            problems.append(f"{_FLAGS[key]} {a} (the run used {b})")
    return problems


def _write_csv(path: Path, rows: list[EpochMetrics], steps: int) -> None:
    """metrics.csv: one row per epoch, then the held-out accuracy at every step."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "images_per_s"] +
                    [f"test_acc_step_{t}" for t in range(steps)])
    for r in rows:
        writer.writerow([r.epoch, f"{r.train_loss:.6g}", f"{r.train_acc:.6g}", f"{r.test_loss:.6g}",
                         f"{r.test_acc:.6g}", f"{r.seconds:.3f}", f"{r.images_per_s:.1f}"] +
                        ["" if a is None else f"{a:.6g}" for a in r.test_acc_steps])
    write_atomic(path, buf.getvalue(), overwrite=True)


def plot_learning_curve(rows: list[EpochMetrics], path: Path, dt: float, best_epoch: int | None,
                        title: str | None = None) -> Path:
    """A PNG: loss and accuracy (last step) vs epoch, training and held-out, and the
    held-out accuracy at every step of the latest and the best epoch."""
    epochs = [r.epoch for r in rows]
    fig = _new_figure(12.5, 3.8, dpi=110)
    axes = fig.subplots(1, 3)
    top = 0.9 - (0.07 * (1 + title.count("\n")) if title else 0)
    fig.subplots_adjust(left=0.06, right=0.985, bottom=0.15, top=top, wspace=0.28)
    train_c, test_c = "#1f5fd6", "#d62728"
    ax = axes[0]
    ax.plot(epochs, [r.train_loss for r in rows], "o-", color=train_c, ms=3, label="training")
    ax.plot(epochs, [r.test_loss for r in rows], "o-", color=test_c, ms=3, label="held-out")
    ax.set(xlabel="epoch", ylabel="cross-entropy (present steps)", title="loss")
    ax = axes[1]
    ax.plot(epochs, [100 * r.train_acc for r in rows], "o-", color=train_c, ms=3, label="training")
    ax.plot(epochs, [100 * r.test_acc for r in rows], "o-", color=test_c, ms=3, label="held-out")
    ax.set(xlabel="epoch", ylabel="accuracy at the last step (%)", title="accuracy", ylim=(-2, 102))
    ax = axes[2]
    shown = [(rows[-1], f"epoch {rows[-1].epoch} (latest)", test_c)]
    if best_epoch is not None and best_epoch != rows[-1].epoch:
        shown.append((rows[best_epoch - 1], f"epoch {best_epoch} (best)", "#2e7d32"))
    for row, label, color in shown:
        ts = [t * dt for t, a in enumerate(row.test_acc_steps) if a is not None]
        ax.plot(ts, [100 * a for a in row.test_acc_steps if a is not None], "o-", color=color, ms=3, label=label)
    ax.set(xlabel="time from the first frame (ms)", ylabel="held-out accuracy (%)", title="accuracy over time",
           ylim=(-2, 102))
    for ax in axes:
        ax.grid(True, color="#e5e5e5", lw=0.6)
        ax.legend(fontsize=8, frameon=False)
        if ax is not axes[2]:
            ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title, fontsize=11, parse_math=False)  # user text: '$' is not mathtext
    with atomic_open(path) as fh:
        fig.savefig(fh, format="png", facecolor="white", metadata={"Software": None})
    return path


@dataclass
class _Run:
    """Everything one training run holds between epochs."""

    spec: Path
    text: str
    params: dict[str, str]
    args: dict[str, Any]  # data, epochs, batch, lr, seed, test_fraction (and params)
    out: Path
    ctx: _Dist
    model: DynModel
    train_set: Any  # science.data Dataset (in memory) or ImageFolder (streamed)
    test_set: Any
    progress: bool
    echo: Callable[[str], None]
    rows: list[EpochMetrics] = field(default_factory=list)
    best_epoch: int | None = None
    info: dict = field(default_factory=dict)  # run.json
    final: Path | None = None  # the run folder while `out` is a staging folder (see stage)

    def __post_init__(self) -> None:
        self.first = int(self.model.readout_from)
        self.batch = int(self.args["batch"])
        self.n_batches = len(self.train_set) // self.batch
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=float(self.args["lr"]))
        self.net: torch.nn.Module = self.model
        a, ctx = self.args, self.ctx
        self.loader = train_loader(self.train_set, self.batch, ctx.device, world=ctx.world, rank=ctx.rank,
                                   seed=a["seed"], workers=a["workers"], augment=a["augment"])
        self.test_loader = eval_loader(self.test_set, self.batch, ctx.device, a["workers"])
        self.steps_done = 0  # optimiser steps so far (restore adds the checkpoint's)

    # ------------------------------------------------------------ state
    def checkpoint(self) -> Checkpoint:
        rng = {"torch": torch.get_rng_state(),
               "cuda": torch.cuda.get_rng_state(self.ctx.device) if self.ctx.device.type == "cuda" else None}
        return Checkpoint(model=self.model.state_dict(), params=dict(self.params), spec=self.text,
                          spec_path=str(self.spec), epoch=len(self.rows),
                          extra={"optimizer": self.optimizer.state_dict(), "rng": rng,
                                 "metrics": [asdict(r) for r in self.rows], "best_epoch": self.best_epoch,
                                 "args": dict(self.args), "normalize": self.normalization()})

    def normalization(self) -> dict | None:
        """The input normalisation (--normalize) as the checkpoint records it, for run and experiment."""
        norm = self.model.input_transform
        return None if norm is None else norm.to_dict()

    def restore(self, ckpt: Checkpoint) -> None:
        """Continue exactly where `ckpt` stopped: weights, optimizer, metrics, RNG states."""
        try:
            load_weights(self.model, ckpt.model, source=str(self.out / "last.pt"))
        except CheckpointError as exc:
            raise TrainError(f"{exc.problem}; pass --force to start afresh") from None
        self.optimizer.load_state_dict(ckpt.extra["optimizer"])
        self.rows = [EpochMetrics(**r) for r in ckpt.extra.get("metrics", [])]
        self.best_epoch = ckpt.extra.get("best_epoch")
        self.steps_done = sum(r.steps or self.n_batches for r in self.rows)
        rng = ckpt.extra.get("rng") or {}
        if rng.get("torch") is not None:
            torch.set_rng_state(rng["torch"])
        if rng.get("cuda") is not None and self.ctx.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.ctx.device)

    def wrap(self) -> None:
        """Under torchrun, wrap the model in DistributedDataParallel (finding unused
        parameters only when a probe forward shows the spec has some)."""
        if self.ctx.world <= 1:
            return
        self.model.eval()  # no dropout, so the probe draws no random numbers
        c, h, w = self.model.input_shape
        with torch.enable_grad():
            probe = self.model(torch.zeros(1, c, h, w, device=self.ctx.device))[:, self.first:].sum()
            params = [p for p in self.model.parameters() if p.requires_grad]
            grads = torch.autograd.grad(probe, params, allow_unused=True)
        self.model.train()
        cuda = self.ctx.device.type == "cuda"
        self.net = DistributedDataParallel(self.model, device_ids=[self.ctx.device.index] if cuda else None,
                                           find_unused_parameters=any(g is None for g in grads))

    # ------------------------------------------------------------ epochs
    def capped(self) -> bool:
        """Whether --max-steps optimiser steps are done."""
        return self.args.get("max_steps") is not None and self.steps_done >= self.args["max_steps"]

    def train_epoch(self, epoch: int) -> tuple[float, float, float, int]:
        """One pass over the training images (or up to --max-steps); returns mean loss, last-step
        accuracy, training images per second (all processes, data loading included) and steps."""
        ctx, total = self.ctx, self.args["epochs"]
        self.net.train()
        sums = torch.zeros(2, dtype=torch.float64)
        bar = tqdm(total=self.n_batches, desc=f"epoch {epoch}/{total}", unit="batch", leave=False,
                   disable=not self.progress or ctx.rank != 0, file=sys.stderr)
        start, done = time.perf_counter(), 0
        batches = self.loader.epoch(epoch)
        for b, (_, x, y) in enumerate(batches):
            logits = self.net(x)
            loss = _loss(logits, y, self.first)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            stats = torch.stack([loss.detach().double(), (logits.detach()[:, -1].argmax(1) == y).sum().double()])
            if ctx.world > 1:
                dist.all_reduce(stats)
                stats[0] /= ctx.world
            stats = stats.cpu()
            if not math.isfinite(float(stats[0])):
                self.forward_error(self.loader.global_batch(b), f"training batch {b + 1} of epoch {epoch}", train=True)
            self.check_gradients(f"training batch {b + 1} of epoch {epoch}")
            self.optimizer.step()
            sums += stats
            done, self.steps_done = done + 1, self.steps_done + 1
            rate = done * self.batch / (time.perf_counter() - start)
            bar.set_postfix({"loss": f"{float(stats[0]):.4f}", "img/s": f"{rate:.3g}"}, refresh=False)
            bar.update()
            if self.capped():
                break
        batches.close()
        bar.close()
        rate = done * self.batch / (time.perf_counter() - start)
        return float(sums[0]) / done, float(sums[1]) / (done * self.batch), rate, done

    def forward_error(self, index: torch.Tensor, where: str, train: bool) -> None:
        """Re-run a batch whose loss was not finite to find the first area and step
        with a NaN or inf, and raise saying so (rank 0; the others raise a short TrainError)."""
        if self.ctx.rank != 0:
            raise TrainError(f"non-finite loss at {where}; rank 0 reports where")
        data = self.train_set if train else self.test_set
        x = data.stack(index).to(self.ctx.device)
        try:
            with torch.no_grad():
                self.model.run(x)
        except NonFiniteError as exc:
            check = f"{exc.area}'s dynamics" if exc.area is not None else "the readout"
            raise NonFiniteError(f"non-finite values ({exc.kind}) in {exc.where}, {where} (image {exc.item} of the "
                                 f"batch): lower --lr, or check {check}", exc.area, exc.step, exc.item, exc.kind,
                                 exc.ms) from None
        raise NonFiniteError(f"non-finite loss at {where}, though a re-run of the batch is finite "
                             f"(dropout?): lower --lr")

    def check_gradients(self, where: str) -> None:
        """Raise naming the first parameter whose gradient holds a NaN or inf (the
        gradients are averaged over ranks already, so every rank agrees)."""
        grads = [(name, p.grad) for name, p in self.model.named_parameters() if p.grad is not None]
        if not grads:
            return
        finite = torch.stack([torch.isfinite(g).all() for _, g in grads])
        if bool(finite.all()):
            return
        name, grad = grads[int((~finite).nonzero()[0])]
        kind = non_finite_kind(grad)
        error = NonFiniteError(f"non-finite gradient ({kind}) of parameter {name} at {where}, though the forward "
                               f"pass is finite: lower --lr, or check the dynamics {name} feeds (sqrt, log or a "
                               f"division near 0?)", kind=kind)
        if self.ctx.rank != 0:
            raise TrainError(str(error))
        raise error

    @torch.no_grad()
    def evaluate(self, epoch: int) -> tuple[float, float, list[float | None]]:
        """Held-out loss, last-step accuracy and accuracy per step (eval mode, no grad)."""
        self.model.eval()
        steps, n = self.model.steps, len(self.test_set)
        loss_sum, correct = 0.0, torch.zeros(steps, dtype=torch.long)
        bar = tqdm(self.test_loader.epoch(), total=len(self.test_loader), desc="held-out", unit="batch",
                   leave=False, disable=not self.progress, file=sys.stderr)
        for i, (index, x, y) in enumerate(bar):
            logits = self.model(x)
            loss = float(_loss(logits, y, self.first, reduction="sum"))
            if not math.isfinite(loss):
                self.forward_error(index, f"held-out batch {i + 1} after epoch {epoch}", train=False)
            loss_sum += loss
            correct += (logits.argmax(2) == y[:, None]).sum(0).cpu()
        bar.close()
        self.model.train()
        per_step = [None if t < self.first else int(correct[t]) / n for t in range(steps)]
        return loss_sum / n, int(correct[-1]) / n, per_step

    # ------------------------------------------------------------ files
    def write(self, newly_best: bool) -> None:
        """last.pt (every epoch), best.pt (a new best), metrics.csv, learning_curve.png, run.json."""
        ckpt = self.checkpoint()
        save_checkpoint(self.out / "last.pt", ckpt)
        if newly_best:
            save_checkpoint(self.out / "best.pt", ckpt)
        self.write_reports()
        if self.final is not None:
            self.swap_in()

    # ------------------------------------------------------------ --force without losing the old run
    def stage(self) -> None:
        """Write the new run into a staging folder until its first checkpoint, so that `--force`
        never deletes the old run before the new one can replace it.

        The staging folder is `.staging-train-PID` inside the run folder, so the folder's lock
        covers it. After the first epoch's files exist there, swap_in moves them over the old
        ones, last.pt first (each rename atomic; a kill between the renames leaves the new
        last.pt, from which --resume rewrites the reports). If the new run fails before that (an
        exception, a NaN, Ctrl-C, SIGTERM), unstage removes the staging folder and the old run is
        untouched; a staging folder left by a SIGKILL is swept by the next command holding the lock.
        (Swapping files, not folders, keeps the user's other files in the folder, as --force did.)"""
        self.final, self.out = self.out, self.out / f"{STAGING_PREFIX}train-{os.getpid()}"
        self.out.mkdir()

    def swap_in(self) -> None:
        """Move the staged run's files over the old run's (see stage); from now on `out` is the run folder."""
        staging, self.out, self.final = self.out, self.final, None
        for file in OUTPUTS:
            if (staging / file).exists():
                os.replace(staging / file, self.out / file)
            else:
                (self.out / file).unlink(missing_ok=True)  # nothing of the old run may stay mixed in
        shutil.rmtree(staging, ignore_errors=True)

    def unstage(self) -> None:
        """Drop the staging folder of a run that failed before its first checkpoint (see stage)."""
        if self.final is not None:
            shutil.rmtree(self.out, ignore_errors=True)
            self.out, self.final = self.final, None

    def write_reports(self) -> None:
        _write_csv(self.out / "metrics.csv", self.rows, self.model.steps)
        if self.rows:
            plot_learning_curve(self.rows, self.out / "learning_curve.png", self.model.dt, self.best_epoch,
                                title=self.title())
        self.info.update(epochs_done=len(self.rows), updated=time.strftime("%Y-%m-%dT%H:%M:%S"),
                         best=None if self.best_epoch is None else
                         {"epoch": self.best_epoch, "test_acc": self.rows[self.best_epoch - 1].test_acc})
        self.write_info()

    def title(self) -> str:
        """The learning curve's title: model, spec and data, then the --set values and the settings."""
        a = self.args
        return (f"{self.model.program.model.name} ({self.spec.name}) on {a['data']}\n"
                f"{set_text(self.params)} | --seed {a['seed']} --lr {a['lr']:g} --batch {a['batch']}")

    def write_info(self) -> None:
        write_atomic(self.out / "run.json", json.dumps(self.info, indent=2) + "\n", overwrite=True)

    def epoch(self, epoch: int) -> EpochMetrics:
        """Train one epoch; rank 0 evaluates, writes the files and prints, and shares
        the row (or its error) with the other ranks, which wait for it."""
        start = time.perf_counter()
        train_loss, train_acc, rate, steps = self.train_epoch(epoch)
        payload: list = [None]
        failure: BaseException | None = None
        if self.ctx.rank == 0:
            try:
                test_loss, test_acc, per_step = self.evaluate(epoch)
                row = EpochMetrics(epoch, train_loss, train_acc, test_loss, test_acc, per_step,
                                   time.perf_counter() - start, rate, steps)
                self.rows.append(row)
                newly_best = self.best_epoch is None or test_acc > self.rows[self.best_epoch - 1].test_acc
                if newly_best:
                    self.best_epoch = epoch
                self.write(newly_best)
                payload = [("row", asdict(row))]
            except BaseException as exc:  # tell the other ranks instead of leaving them waiting
                failure, payload = exc, [("error", f"rank 0 stopped: {exc}")]
        if self.ctx.world > 1:
            dist.broadcast_object_list(payload, src=0)
        if failure is not None:
            raise failure
        kind, value = payload[0]
        if kind == "error":
            raise TrainError(value)
        row = EpochMetrics(**value)
        if self.ctx.rank != 0:
            self.rows.append(row)
            if self.best_epoch is None or row.test_acc > self.rows[self.best_epoch - 1].test_acc:
                self.best_epoch = epoch
        else:
            best = self.rows[self.best_epoch - 1]
            self.echo(f"epoch {epoch}/{self.args['epochs']}: train loss {row.train_loss:.4f} acc "
                      f"{_pct(row.train_acc)} | held-out loss {row.test_loss:.4f} acc {_pct(row.test_acc)} "
                      f"(best {_pct(best.test_acc)} at epoch {best.epoch}) | {row.seconds:.1f} s, "
                      f"{row.images_per_s:.0f} images/s")
        return row


def _prepare_folder(out: Path, resume: bool, force: bool, args: dict, text: str) -> Checkpoint | None:
    """Decide what to do with the run folder (read only): the checkpoint to resume
    from, None to start afresh, or a TrainError saying why not."""
    if not out.exists() or (out.is_dir() and not user_entries(out)):
        if resume:
            raise TrainError(f"{out} holds no run to resume (no last.pt); drop --resume to start one")
        return None
    if not out.is_dir():
        raise TrainError(f"{out} is a file, not a run folder; choose another --out")
    if force:
        return None
    last, info = _read_run(out)
    done = last.epoch if last is not None else 0
    planned = (info.get("args") or {}).get("epochs") or (last.extra.get("args", {}).get("epochs") if last else None)
    if not resume:
        if last is None and not info:
            raise TrainError(f"{out} is not empty and holds no run of dynv train; choose another --out, or pass "
                             f"--force to write the run's files there")
        raise TrainError(f"{out} holds a run ({done} of {planned if planned is not None else '?'} epochs done); "
                         f"pass --resume to continue it or --force to start afresh")
    if last is None:
        raise TrainError(f"{out} holds no checkpoint to resume (no last.pt); pass --force to start afresh")
    if "optimizer" not in last.extra or "args" not in last.extra:
        raise TrainError(f"{out / 'last.pt'} is not a checkpoint of dynv train; pass --force to start afresh")
    problems = _mismatch(args, {**last.extra["args"], "params": last.params})
    if problems:
        raise TrainError(f"--resume would change the run in {out}: " + "; ".join(problems) +
                         ". Resume with the run's settings, or pass --force to start afresh")
    if last.spec is not None and last.spec != text:
        raise TrainError(f"the spec has changed since the run in {out} started ({last.spec_path}); restore it, "
                         f"or pass --force to start afresh")
    return last


def train(spec: str | Path, params: dict[str, Any] | None = None, *, data: str = "digits", epochs: int = 10,
          batch: int = 32, lr: float = 1e-3, test_fraction: float = 0.2, seed: int = 0,
          out: str | Path | None = None, resume: bool = False, force: bool = False, progress: bool = True,
          echo: Callable[[str], None] = print, command_line: str | None = None,
          val_data: str | None = None, workers: int = 0, augment: bool = False, normalize: str = "none",
          max_steps: int | None = None) -> TrainResult:
    """Train `spec` compiled with `params` (the `--set` overrides) and write the run to
    `out` (default runs/train-SPECSTEM). `epochs` is the total, also when resuming.
    Under torchrun (WORLD_SIZE > 1) every process calls this; rank 0 writes and prints.
    Raises DynError for a spec that cannot be read or has errors, TrainError for other problems
    the user can fix, and NonFiniteError for NaN/inf. `command_line` is recorded in run.json
    (default: this process's arguments). Data: `val_data` a held-out folder (else `test_fraction`
    of `data`), `workers` decoding processes, `augment`, `normalize` (science.data.DataOptions);
    `max_steps` ends training after that many optimiser steps (a smoke run)."""
    spec = Path(spec)
    text = read_spec_text(spec)  # a missing or binary spec is a DynError before anything else happens
    params = SetParams({str(k): str(v) for k, v in (params or {}).items()}, getattr(params, "origins", {}))
    out = Path(out) if out is not None else Path("runs") / f"train-{spec.stem}"
    if resume and force:
        raise TrainError("pass either --resume (continue the run) or --force (start afresh), not both")
    for ok, message in ((epochs >= 1, f"--epochs must be at least 1, got {epochs}"),
                        (batch >= 1, f"--batch must be at least 1, got {batch}"),
                        (lr > 0 and math.isfinite(lr), f"--lr must be a positive number, got {lr}"),
                        (0 < test_fraction < 1, f"--test-fraction must be between 0 and 1, got {test_fraction}"),
                        (max_steps is None or max_steps >= 1, f"--max-steps must be at least 1, got {max_steps}")):
        if not ok:
            raise TrainError(message)
    options = DataOptions(data, val_data, workers, augment, normalize)
    try:
        options.check()
    except DataError as exc:
        raise TrainError(str(exc)) from None
    ctx = _distributed()
    rng_devices = [ctx.device.index or 0] if ctx.device.type == "cuda" else []
    try:
        # the caller's global RNG is restored afterwards; inside, it draws the initial
        # weights (seeded) and any dropout masks (its state is checkpointed)
        with torch.random.fork_rng(devices=rng_devices), _hold_folder(out, ctx, echo):
            return _train(spec, text, params, options, epochs, batch, lr, test_fraction, seed, out, resume, force,
                          progress, echo, ctx, command_line, max_steps)
    finally:
        if ctx.owns_group and dist.is_initialized():
            dist.destroy_process_group()


@contextmanager
def _hold_folder(out: Path, ctx: _Dist, echo: Callable[[str], None]) -> Iterator[None]:
    """Rank 0 holds the run folder's lock (util.files.RunFolder) for the whole run, so that a second
    `dynv train` (or run, experiment) into it refuses, naming this pid; every rank learns whether it could."""
    folder, error = None, None
    if ctx.rank == 0:
        try:
            folder = RunFolder(out, "dynv train", OUTPUTS).acquire()
        except OutputError as exc:
            error = str(exc)
    if ctx.world > 1:
        payload = [error]
        dist.broadcast_object_list(payload, src=0)
        error = payload[0]
    if error is not None:
        if folder is not None:
            folder.release(failed=True)
        raise TrainError(error)
    failed = True
    try:
        for note in folder.notes if folder else []:
            echo(note)
        yield
        failed = False
    finally:
        if folder is not None:
            folder.release(failed=failed)


def _train(spec: Path, text: str, params: dict[str, str], options: DataOptions, epochs: int, batch: int,
           lr: float, test_fraction: float, seed: int, out: Path, resume: bool, force: bool, progress: bool,
           echo: Callable[[str], None], ctx: _Dist, command_line: str | None = None,
           max_steps: int | None = None) -> TrainResult:
    data = options.data
    torch.manual_seed(seed)
    model = compile_spec(text, params, file=str(spec))
    name = model.program.model.name
    if model.readout_from is None or model.readout_from >= model.steps:
        raise TrainError(f"{name}'s readout is silent for all {model.steps} steps, so there is nothing to train; "
                         f"raise steps (--set steps=N) or shorten the delays before the readout")
    if not any(p.requires_grad for p in model.parameters()):
        raise TrainError(f"{name} has no trainable parameters; give it a connection with weights (conv, linear, ...)")
    try:
        dataset = prepare(options, tuple(model.input_shape), test_fraction, seed)
    except (DataError, OSError) as exc:
        raise TrainError(str(exc)) from None
    if len(dataset.classes) != model.classes:
        hint = (f"pass --set classes={len(dataset.classes)}" if "classes" in model.program.model.params else
                f"make the readout's last linear(...) {len(dataset.classes)} wide")
        raise TrainError(f"the data ({dataset.name}) has {len(dataset.classes)} classes but {name} reads out "
                         f"{model.classes}: {hint}")
    train_set, test_set = dataset.train, dataset.test
    model.input_transform = dataset.normalization
    if batch % ctx.world:
        raise TrainError(f"--batch {batch} does not split evenly over {ctx.world} processes; "
                         f"pass a multiple of {ctx.world}")
    if len(train_set) < batch:
        raise TrainError(f"--batch {batch} is more than the {len(train_set)} training images; pass a smaller --batch")
    args = {"params": dict(params), "data": data, "epochs": epochs, "batch": batch, "lr": lr, "seed": seed,
            "test_fraction": test_fraction, "val_data": options.val_data, "augment": options.augment,
            "normalize": options.normalize, "workers": options.workers, "max_steps": max_steps}
    last = _prepare_folder(out, resume, force, args, text)
    model.to(ctx.device)
    run = _Run(spec, text, params, args, out, ctx, model, train_set, test_set, progress, echo)
    if last is not None:
        run.restore(last)
    n_params = sum(p.numel() for p in model.parameters())
    if last is not None and last.epoch >= epochs:
        if ctx.rank == 0:
            echo(f"{out}: {last.epoch} of {epochs} epochs already done; pass a larger --epochs to train on")
        model.eval()
        return TrainResult(out, model, list(run.rows), run.best_epoch, ctx.rank)
    if ctx.rank == 0:
        old = _read_run(out)[1] if last is not None else {}
        run.info = {
            **metadata("dynv train", spec, params, stimulus=f"--data {data}", seed=seed, command_line=command_line),
            "model": name, "args": args,
            "data": {"name": dataset.name, "classes": dataset.classes, "train": len(train_set),
                     "test": len(test_set), "batches_per_epoch": run.n_batches,
                     "left_out_per_epoch": len(train_set) - run.n_batches * batch,
                     "normalize": run.normalization()},
            "model_info": {"input_shape": list(model.input_shape), "steps": model.steps, "idle": model.idle,
                           "dt_ms": model.dt, "readout_from": model.readout_from, "classes": model.classes,
                           "parameters": n_params},
            "device": str(ctx.device), "world_size": ctx.world,
            "started": old.get("started", time.strftime("%Y-%m-%dT%H:%M:%S")),
            "resumed_at_epochs": old.get("resumed_at_epochs", []) + ([last.epoch] if last is not None else []),
        }
        if force and any((out / file).exists() for file in OUTPUTS):
            run.stage()  # the old run stays until the new one has its first checkpoint
        out.mkdir(parents=True, exist_ok=True)
        if last is not None:
            if run.best_epoch == last.epoch and not _same_epoch(out / "best.pt", last.epoch):
                save_checkpoint(out / "best.pt", last)  # the run stopped between last.pt and best.pt
            run.write_reports()  # the reports follow last.pt
        else:
            run.write_info()
    ctx.barrier()
    done = len(run.rows)
    if ctx.rank == 0:
        what = f"resuming {out} at epoch {done + 1}" if last is not None else f"training into {out}"
        echo(f"{what}: {name} ({n_params:,} parameters) on {dataset.name}, {len(train_set)} training / "
             f"{len(test_set)} held-out images, {run.n_batches} batches of {batch} per epoch, "
             f"{ctx.world} x {ctx.device.type}")
    run.wrap()
    try:
        for epoch in range(done + 1, epochs + 1):
            if run.capped():
                break
            run.epoch(epoch)
    finally:
        run.unstage()  # a no-op once the first checkpoint replaced the old run
    if ctx.rank == 0 and run.capped():
        echo(f"stopped after --max-steps {max_steps} optimiser steps (epoch {len(run.rows)} of {epochs})")
    model.eval()
    if ctx.rank == 0 and run.best_epoch is not None:
        best = run.rows[run.best_epoch - 1]
        echo(f"wrote {', '.join(OUTPUTS)} to {out}; best held-out accuracy {_pct(best.test_acc)} "
             f"at epoch {best.epoch}")
    return TrainResult(out, model, list(run.rows), run.best_epoch, ctx.rank)


def _same_epoch(path: Path, epoch: int) -> bool:
    try:
        return load_checkpoint(path).epoch == epoch
    except (OSError, ValueError, RuntimeError):
        return False


def run_cli(args) -> int:
    """`dynv train`: the CLI's entry; problems the user can fix print `dynv: ...` and give 1."""
    from .util.params import parse_set as _params

    try:
        train(args.file, _params(args.set), data=args.data, epochs=args.epochs, batch=args.batch, lr=args.lr,
              test_fraction=args.test_fraction, seed=args.seed, out=args.out, resume=args.resume,
              force=args.force, progress=not args.no_progress, command_line=getattr(args, "command_line", None),
              val_data=args.val_data, workers=args.workers, augment=args.augment, normalize=args.normalize,
              max_steps=args.max_steps)
    except (TrainError, NonFiniteError) as exc:
        if int(os.environ.get("RANK", "0")) == 0:  # the other ranks raise the same, or an echo of it
            print(f"dynv: {exc}", file=sys.stderr)
        return 1
    return 0
