"""The training loop: one `_Run` holds a run between epochs (model, optimiser, schedule,
metrics), trains an epoch, evaluates, checkpoints, and stages a --force run."""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ...checkpoint import Checkpoint, CheckpointError, load_weights
from ...checkpoint import save as save_checkpoint
from ..data import Dataset, ImageFolder, eval_loader, train_loader
from ...model import DynModel, NonFiniteError, non_finite_kind
from ...util.files import STAGING_PREFIX, write_atomic
from ...util.provenance import set_text
from .dist import _Dist
from .folder import OUTPUTS
from .losses import _loss
from .optim import make_optimizer, make_schedule
from .options import Regime, TrainError, regime_text
from .presentation import label_steps, show, stretch
from .report import EpochMetrics, _pct, _write_csv, plot_learning_curve
from .unroll import Unroll


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
    train_set: Dataset | ImageFolder  # in memory (digits) or streamed (a folder)
    test_set: Dataset | ImageFolder
    progress: bool
    echo: Callable[[str], None]
    regime: Regime = field(default_factory=Regime)
    rows: list[EpochMetrics] = field(default_factory=list)
    best_epoch: int | None = None
    info: dict = field(default_factory=dict)  # run.json
    final: Path | None = None  # the run folder while `out` is a staging folder (see stage)

    def __post_init__(self) -> None:
        self.first = self.model.first_scored_step
        self.batch = int(self.args["batch"])
        self.n_batches = len(self.train_set) // self.batch
        r = self.regime
        self.shown = stretch(r.pattern, self.model.steps)
        self.labelled = label_steps(self.shown, self.model.dt, r.reaction_ms, self.first)  # (T,) steps with a loss
        self.unroll = Unroll(self.model, self.shown, r.tbptt, r.precision, record_activity=r.activity_loss > 0)
        self.model.recompute = r.recompute  # checkpointed segments of steps in simulate (0: off)
        self.optimizer = make_optimizer(self.model, self.model.graph, float(self.args["lr"]), r)
        self.schedule = make_schedule(self.optimizer, self.schedule_steps(), r)
        self.net: torch.nn.Module = self.unroll
        a, ctx = self.args, self.ctx
        self.loader = train_loader(self.train_set, self.batch, ctx.device, world=ctx.world, rank=ctx.rank,
                                   seed=a["seed"], workers=a.get("workers", 0), augment=a.get("augment", False))
        self.test_loader = eval_loader(self.test_set, self.batch, ctx.device, a.get("workers", 0))
        self.steps_done = 0  # optimiser steps so far (restore adds the checkpoint's)

    def schedule_steps(self) -> int:
        """The optimiser steps the LR schedule is laid out over: every batch of every epoch,
        or --max-steps when that ends training sooner."""
        total, cap = self.args["epochs"] * self.n_batches, self.args.get("max_steps")
        return total if cap is None else min(total, int(cap))

    # ------------------------------------------------------------ state
    def checkpoint(self) -> Checkpoint:
        rng = {"torch": torch.get_rng_state(),
               "cuda": torch.cuda.get_rng_state(self.ctx.device) if self.ctx.device.type == "cuda" else None}
        return Checkpoint(model=self.model.state_dict(), params=dict(self.params), spec=self.text,
                          spec_path=str(self.spec), epoch=len(self.rows),
                          extra={"optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                                 "rng": rng,
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
        try:
            self.optimizer.load_state_dict(ckpt.extra["optimizer"])
        except ValueError:  # another number or size of parameter groups
            raise TrainError(f"the optimiser state in {self.out / 'last.pt'} does not fit this run's parameter "
                             f"groups; resume with the run's --lr-scale, or pass --force to start afresh") from None
        if ckpt.extra.get("schedule") is not None:
            self.schedule.load_state_dict(ckpt.extra["schedule"])
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
            logits, penalty = self.unroll(torch.zeros(1, c, h, w, device=self.ctx.device))
            probe = logits[:, self.labelled.to(logits.device)].sum() + penalty
            params = [p for p in self.model.parameters() if p.requires_grad]
            grads = torch.autograd.grad(probe, params, allow_unused=True)
        self.model.train()
        cuda = self.ctx.device.type == "cuda"
        self.net = DistributedDataParallel(self.unroll, device_ids=[self.ctx.device.index] if cuda else None,
                                           find_unused_parameters=any(g is None for g in grads))

    # ------------------------------------------------------------ epochs
    def capped(self) -> bool:
        """Whether --max-steps optimiser steps are done."""
        return self.args.get("max_steps") is not None and self.steps_done >= self.args["max_steps"]

    def train_epoch(self, epoch: int) -> tuple[float, float, float, float, int]:
        """One pass over the training images (or up to --max-steps); returns the mean cross-entropy,
        last-step accuracy, mean activity penalty (weighted: the term added to the loss), training
        images per second (all processes, data loading included) and optimiser steps."""
        ctx, total = self.ctx, self.args["epochs"]
        self.net.train()
        sums = torch.zeros(3, dtype=torch.float64)
        bar = tqdm(total=self.n_batches, desc=f"epoch {epoch}/{total}", unit="batch", leave=False,
                   disable=not self.progress or ctx.rank != 0, file=sys.stderr)
        start, done = time.perf_counter(), 0
        batches = self.loader.epoch(epoch)
        for b, (_, x, y) in enumerate(batches):
            logits, penalty = self.net(x)
            loss = _loss(logits, y, self.labelled)
            penalty = self.regime.activity_loss * penalty
            self.optimizer.zero_grad(set_to_none=True)
            (loss + penalty).backward()
            stats = torch.stack([loss.detach().double(), (logits.detach()[:, -1].argmax(1) == y).sum().double(),
                                 penalty.detach().double()])
            if ctx.world > 1:
                dist.all_reduce(stats)
                stats[0] /= ctx.world
                stats[2] /= ctx.world
            stats = stats.cpu()
            if not math.isfinite(float(stats[0] + stats[2])):
                self.forward_error(self.loader.global_batch(b), f"training batch {b + 1} of epoch {epoch}",
                                   train=True)
            self.check_gradients(f"training batch {b + 1} of epoch {epoch}")
            if self.regime.clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.regime.clip)
            self.optimizer.step()
            self.schedule.step()
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
        return (float(sums[0]) / done, float(sums[1]) / (done * self.batch), float(sums[2]) / done, rate, done)

    def forward_error(self, index: torch.Tensor, where: str, train: bool) -> None:
        """Re-run a batch whose loss was not finite to find the first area and step
        with a NaN or inf, and raise saying so (rank 0; the others raise a short TrainError)."""
        if self.ctx.rank != 0:
            raise TrainError(f"non-finite loss at {where}; rank 0 reports where")
        data = self.train_set if train else self.test_set
        x = data.stack(index).to(self.ctx.device)
        try:
            with torch.no_grad():
                self.model.run(show(x, self.shown))
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
            logits, _ = self.unroll(x)
            loss = float(_loss(logits, y, self.labelled, reduction="sum"))
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
        a, flags = self.args, regime_text(self.regime)
        return (f"{self.model.program.model.name} ({self.spec.name}) on {a['data']}\n"
                f"{set_text(self.params)} | --seed {a['seed']} --lr {a['lr']:g} --batch {a['batch']}" +
                (f"\n{flags}" if flags else ""))

    def write_info(self) -> None:
        write_atomic(self.out / "run.json", json.dumps(self.info, indent=2) + "\n", overwrite=True)

    def epoch(self, epoch: int) -> EpochMetrics:
        """Train one epoch; rank 0 evaluates, writes the files and prints, and shares
        the row (or its error) with the other ranks, which wait for it."""
        start = time.perf_counter()
        train_loss, train_acc, activity, rate, steps = self.train_epoch(epoch)
        payload: list = [None]
        failure: BaseException | None = None
        if self.ctx.rank == 0:
            try:
                test_loss, test_acc, per_step = self.evaluate(epoch)
                row = EpochMetrics(epoch, train_loss, train_acc, test_loss, test_acc, per_step,
                                   time.perf_counter() - start, activity, rate, steps)
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

