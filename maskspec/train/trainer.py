"""The training loop shared by pre-training and fine-tuning (contract in docs/ARCHITECTURE.md).

A task object supplies the work of one step and of validation:

* ``train_step(model, batch) -> (loss: scalar tensor, stats: dict[str, float])``; ``model`` is the DDP-wrapped
  model when distributed (call it, do not reach into ``.module``), ``batch`` is already on the device and runs
  under autocast.
* ``validate(model, loader) -> dict[str, float]``; called on every rank with that rank's shard of the
  validation set (the task reduces across ranks itself), in eval mode under ``torch.no_grad`` and autocast.
* optional ``on_epoch_end(model, epoch, exp_dir, tb_writer)`` on the main rank only (``epoch`` 1-based).
* optional ``after_step(model, step)`` on every rank after each optimiser step (``step`` 1-based, ``model``
  unwrapped, under ``torch.no_grad``): e.g. the bootstrap objective's EMA teacher update. Whatever it changes
  must live in the model's state dict, which checkpoints keep, so that a resumed run is exact.
* optional ``train_flops(model, batch) -> float``: analytic FLOPs of the forward + backward of one micro-batch on
  this process (maskspec.models.flops). The trainer adds them up per step (x processes) into the compute record
  of history.json and the checkpoints (``train_flops``, ``flops_per_step``, ``train_seconds``,
  ``device_seconds``, ``cpu_seconds``; maskspec.train.history.COMPUTE_KEYS), so runs compare at equal compute.

How exact resume works: the sampler order depends only on (seed, epoch); the batches of an epoch are the
sampler's indices cut into ``batch_size`` chunks (incomplete tail dropped, then trimmed to a multiple of
``accum_grad``); checkpoints store how many micro-batches of the epoch are done plus every RNG state, and the
DataLoader draws its worker seeds from its own generator rather than torch's global one. A resumed run skips
the finished micro-batches and continues with the same random stream.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from typing import Any, Mapping, Optional

import torch
from torch.nn.parallel import DistributedDataParallel

from maskspec.train import distributed as D
from maskspec.train.checkpoint import (BEST_NAME, CHECKPOINT_VERSION, ChangedSettingsError, changed_settings,
                                       checkpoint_dir, checkpoint_name, load_checkpoint, load_latest_checkpoint,
                                       prune_checkpoints, remove_stale_temporaries, save_checkpoint)
from maskspec.train.config import plain
from maskspec.train.history import write_history
from maskspec.train.logs import Throughput, format_duration, make_writer, progress_bar
from maskspec.train.optim import WarmupCosineSchedule, build_optimizer
from maskspec.train.rng import derived_seed, get_rng_state, seed_everything, set_rng_state

logger = logging.getLogger("maskspec.train")

METADATA_KEYS = ("kind", "model_config", "fbank_config", "stats", "classes", "task_type")
RESERVED_KEYS = {"version", "epoch", "batches_done", "step", "model", "optimizer", "scheduler", "scaler", "rng",
                 "args", "world_size", "best_metric", "best_metric_name", "best_mode", "valid", "compute"}


class NonFiniteError(RuntimeError):
    """Loss or gradient norm became NaN/inf; the message names the epoch and step."""


def to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Move every tensor inside dicts/lists/tuples to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device, non_blocking) for v in batch)
    return batch


class DeviceLoader:
    """Iterate a DataLoader with every batch moved to ``device``."""

    def __init__(self, loader, device: torch.device):
        self.loader, self.device = loader, device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        non_blocking = self.device.type == "cuda"
        for batch in self.loader:
            yield to_device(batch, self.device, non_blocking)


class Trainer:
    """Runs the training loop of ``task`` on ``model``; see the module docstring for the task interface.

    Args:
        model: the network (not yet on the device; the trainer moves it and wraps it in DDP when world > 1).
        task: the task object.
        train_dataset: map-style dataset; ``set_epoch(epoch)`` is called on it when it has one.
        train_sampler: this rank's indices, deterministic given seed and epoch, with ``set_epoch``.
        collate_fn: batches items (used for training and validation).
        param_groups: optimiser parameter groups of ``model``'s parameters (see maskspec.train.optim).
        args: resolved training options (maskspec.train.config.add_training_args + resolve_training_args).
        exp_dir: experiment folder (checkpoints/, tensorboard/ below it).
        dist_info: process info from maskspec.train.distributed.init_distributed.
        valid_dataset: optional validation set (run at every epoch end).
        metadata: kind, model_config, fbank_config, stats, classes, task_type (None when absent) and any other
            plain values, stored at the top level of every checkpoint.
        best_metric / best_mode: key of validate()'s dict and "min"/"max" choosing checkpoints/best.pt.
        valid_batch_size: default batch_size.
    """

    def __init__(self, *, model: torch.nn.Module, task, train_dataset, train_sampler, collate_fn,
                 param_groups: list[dict], args, exp_dir: str, dist_info: D.DistInfo, valid_dataset=None,
                 metadata: Optional[Mapping[str, Any]] = None, best_metric: Optional[str] = None,
                 best_mode: str = "min", valid_batch_size: Optional[int] = None):
        if best_mode not in ("min", "max"):
            raise ValueError(f"best_mode must be 'min' or 'max', got {best_mode!r}")
        if args.amp not in ("bf16", "fp16", "fp32"):
            raise ValueError(f"args.amp must be resolved to bf16/fp16/fp32 first, got {args.amp!r}")
        self.task, self.args, self.exp_dir, self.dist = task, args, os.fspath(exp_dir), dist_info
        self.device = dist_info.device
        self.model = model.to(self.device)
        self.train_dataset, self.train_sampler, self.collate_fn = train_dataset, train_sampler, collate_fn
        self.valid_dataset = valid_dataset
        self.valid_batch_size = valid_batch_size or args.batch_size
        self.metadata = {k: None for k in METADATA_KEYS}
        self.metadata.update(dict(metadata or {}))
        self.metadata["kind"] = self.metadata["kind"] or "train"
        clash = sorted(set(self.metadata) & RESERVED_KEYS)
        if clash:
            raise ValueError(f"metadata keys {clash} clash with checkpoint fields")
        self.best_metric_name, self.best_mode = best_metric, best_mode
        self.ckpt_dir = checkpoint_dir(self.exp_dir)
        self.params = [p for g in param_groups for p in g["params"]]
        self.optimizer = build_optimizer(param_groups, args.lr, args.betas)

        self.batches_per_epoch = len(train_sampler) // args.batch_size
        self.steps_per_epoch = self.batches_per_epoch // args.accum_grad
        if self.steps_per_epoch < 1:
            raise ValueError(f"the training sampler gives {len(train_sampler)} clips per process per epoch, fewer "
                             f"than one optimiser step needs (batch_size {args.batch_size} x accum_grad "
                             f"{args.accum_grad})")
        self.total_steps = args.epochs * self.steps_per_epoch
        self.target_steps = min(self.total_steps, args.max_steps) if args.max_steps else self.total_steps
        warmup = int(round(args.warmup_epochs * self.steps_per_epoch))
        self.scheduler = WarmupCosineSchedule(self.optimizer, args.lr, warmup, self.total_steps, args.min_lr)
        self.scaler = torch.amp.GradScaler("cuda", enabled=args.amp == "fp16")
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)

        self.epoch = 0  # 0-based epoch in progress
        self.batches_done = 0  # micro-batches of self.epoch already consumed
        self.step = 0  # optimiser steps so far
        self.best_value: Optional[float] = None
        self.last_valid: dict = {}
        self.history: list[dict] = []  # one entry per epoch end (maskspec.train.history)
        self.epoch_loss = [0.0, 0]  # sum and count of this epoch's step losses, for its history entry
        # cumulative over resumes: analytic FLOPs (all processes), seconds spent in training steps (wall), the
        # same x processes (GPU-seconds on CUDA), this process's CPU seconds; and the FLOPs of the last step
        self.compute = dict(train_flops=0.0, flops_per_step=0.0, train_seconds=0.0, device_seconds=0.0,
                            cpu_seconds=0.0)
        self._train_model: Optional[torch.nn.Module] = None  # DDP and/or torch.compile wrapper of self.model
        self.writer = None
        self._ddp: Optional[DistributedDataParallel] = None

    # ----------------------------------------------------------------------------------------------- helpers
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    @property
    def unwrapped(self) -> torch.nn.Module:
        return self.model

    def _loader(self, dataset, batches: list[list[int]], epoch: int, salt: int):
        """DataLoader over explicit batches; worker seeds from a private generator, never the global RNG."""
        gen = torch.Generator()
        gen.manual_seed(derived_seed(self.args.seed, salt, epoch, self.dist.rank))
        return torch.utils.data.DataLoader(
            dataset, batch_sampler=batches, collate_fn=self.collate_fn, num_workers=self.args.num_workers,
            pin_memory=self.args.pin_memory and self.device.type == "cuda", generator=gen)

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        self.train_sampler.set_epoch(epoch)
        if hasattr(self.train_dataset, "set_epoch"):
            self.train_dataset.set_epoch(epoch)
        indices = [int(i) for i in self.train_sampler]
        bs, n = self.args.batch_size, self.steps_per_epoch * self.args.accum_grad
        return [indices[i * bs: (i + 1) * bs] for i in range(n)]

    def _state(self, full: bool = True) -> dict:
        """Checkpoint dict; collective (gathers every rank's RNG state), so every rank must call it."""
        rng = D.all_gather_object(get_rng_state(self.device))
        state = dict(version=CHECKPOINT_VERSION, epoch=self.epoch, batches_done=self.batches_done, step=self.step,
                     model=self.unwrapped.state_dict(), optimizer=None, scheduler=None, scaler=None, rng=None,
                     args=plain(vars(self.args)), world_size=self.dist.world_size, best_metric=self.best_value,
                     best_metric_name=self.best_metric_name, best_mode=self.best_mode, valid=plain(self.last_valid),
                     history=plain(self.history), epoch_loss=list(self.epoch_loss), compute=dict(self.compute))
        state.update({k: plain(v) for k, v in self.metadata.items()})
        if full:
            state.update(optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
                         scaler=self.scaler.state_dict(), rng=rng)
        return state

    def _save(self, epoch_1based: int) -> None:
        state = self._state()
        if self.dist.is_main:
            path = os.path.join(self.ckpt_dir, checkpoint_name(epoch_1based, self.step))
            save_checkpoint(state, path)
            removed = prune_checkpoints(self.ckpt_dir, self.args.keep_checkpoints)
            logger.info("saved %s%s", path, f" (removed {len(removed)} old)" if removed else "")

    def _resume(self) -> Optional[str]:
        path = None
        if self.dist.is_main:
            path, _ = load_latest_checkpoint(self.ckpt_dir)
        path = D.broadcast_object(path)
        if path is None:
            return None
        ckpt = load_checkpoint(path, map_location="cpu")
        if ckpt.get("optimizer") is None:
            raise ValueError(f"{path}: has no optimizer state, cannot resume training from it")
        self._check_settings(path, ckpt)
        self.unwrapped.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.batches_done, self.step = int(ckpt["epoch"]), int(ckpt["batches_done"]), int(ckpt["step"])
        self.best_value, self.last_valid = ckpt.get("best_metric"), dict(ckpt.get("valid") or {})
        self.history = list(ckpt.get("history") or [])
        self.epoch_loss = list(ckpt.get("epoch_loss") or [0.0, 0])
        self.compute.update(ckpt.get("compute") or {})
        old = ckpt.get("args", {})
        old_micro = old.get("batch_size", self.args.batch_size) * ckpt.get("world_size", 1)
        new_micro = self.args.batch_size * self.dist.world_size
        rng = ckpt.get("rng") or []
        if old_micro != new_micro or old.get("accum_grad") != self.args.accum_grad or len(rng) != self.dist.world_size:
            # The same clips are skipped, but batches (and random streams) now fall differently: not bit-exact.
            samples = self.batches_done * old_micro
            self.batches_done = samples // new_micro // self.args.accum_grad * self.args.accum_grad
            logger.warning("%s was written with batch_size x processes = %d, accum_grad %s, %d processes; now %d, "
                           "%d, %d: resuming after %d micro-batches of epoch %d, not bit-exact", path, old_micro,
                           old.get("accum_grad"), len(rng), new_micro, self.args.accum_grad,
                           self.dist.world_size, self.batches_done, self.epoch + 1)
            seed_everything(derived_seed(self.args.seed, self.step, self.dist.rank))
        else:
            set_rng_state(rng[self.dist.rank], self.device)
        return path

    def _check_settings(self, path: str, ckpt: dict) -> None:
        """Stop (ChangedSettingsError) when the checkpoint was written under other resolved options than this run's
        (e.g. a job resubmitted with other --epochs), naming them, unless --resume_changed true."""
        changed = changed_settings(ckpt.get("args"), plain(vars(self.args)))
        if not changed:
            return
        listing = "; ".join(f"{name} {old!r} -> {new!r}" for name, old, new in changed)
        if not getattr(self.args, "resume_changed", False):
            raise ChangedSettingsError(
                f"{path} was written with other settings than this run's ({listing}); to continue from it under "
                f"the new settings pass --resume_changed true, to start over --resume false (or remove "
                f"{self.ckpt_dir})")
        logger.warning("%s was written with other settings (%s); continuing under the new ones "
                       "(--resume_changed true)", path, listing)

    def _check_finite(self, loss: float, grad_norm: float) -> None:
        where = f"epoch {self.epoch + 1} step {self.step + 1}"
        if not math.isfinite(loss):
            raise NonFiniteError(f"non-finite loss at {where} (loss {loss}); no checkpoint written for this step; "
                                 f"lower the lr, raise warmup or use fp32 (--amp fp32) to investigate")
        if not math.isfinite(grad_norm) and self.args.amp != "fp16":  # fp16: the GradScaler skips such steps
            raise NonFiniteError(f"non-finite gradient norm at {where} (loss {loss}); no checkpoint written for "
                                 f"this step")

    # ------------------------------------------------------------------------------------------- main loop
    def fit(self) -> dict:
        """Train until ``epochs`` (or ``max_steps``); returns dict(step, epoch, best_metric, valid, resumed_from)."""
        args = self.args
        if self.dist.is_main:
            os.makedirs(self.ckpt_dir, exist_ok=True)
            for path in remove_stale_temporaries(self.ckpt_dir):
                logger.info("removed %s (left by an interrupted save)", path)
        self.writer = make_writer(os.path.join(self.exp_dir, "tensorboard"), args.tensorboard and self.dist.is_main)
        try:
            seed_everything(derived_seed(args.seed, 1, self.dist.rank))  # masks/dropout differ between ranks
            resumed = self._resume() if args.resume else None
            if resumed:
                logger.info("resumed from %s: epoch %d, micro-batch %d, step %d", resumed, self.epoch + 1,
                            self.batches_done, self.step)
            self._ddp = (DistributedDataParallel(self.model, device_ids=[self.device.index]
                                                 if self.device.type == "cuda" else None)
                         if self.dist.distributed else None)
            self._train_model = self._ddp or self.model
            if args.compile:
                # only the training steps: validation and the epoch hooks run the eager model (other shapes)
                self._train_model = torch.compile(self._train_model)
            logger.info("training: %d epochs x %d steps (= %d, target %d), %d clips per step (batch %d x %d "
                        "processes x accum %d), peak lr %.3g, amp %s, device %s", args.epochs, self.steps_per_epoch,
                        self.total_steps, self.target_steps, args.effective_batch_size, args.batch_size,
                        self.dist.world_size, args.accum_grad, args.lr, args.amp, self.device)
            self._train_loop()
        finally:
            self.writer.close()
        return dict(step=self.step, epoch=self.epoch, best_metric=self.best_value, valid=self.last_valid,
                    resumed_from=resumed)

    def _train_loop(self) -> None:
        args = self.args
        meter = Throughput()
        while self.epoch < args.epochs and self.step < self.target_steps:
            batches = self._epoch_batches(self.epoch)
            todo = batches[self.batches_done:]
            stopped = self._train_epoch(todo, len(batches), meter)
            finished = not stopped
            if stopped:
                logger.info("reached max_steps %d in epoch %d", args.max_steps, self.epoch + 1)
            self._end_epoch(finished)
            if stopped:
                break

    def _train_epoch(self, todo: list[list[int]], num_batches: int, meter: Throughput) -> bool:
        """Run the remaining micro-batches of the epoch; True when max_steps stopped it early."""
        args, accum = self.args, self.args.accum_grad
        model = self._train_model
        model.train()
        loader = self._loader(self.train_dataset, todo, self.epoch, salt=2)
        bar = progress_bar(num_batches // accum, self.batches_done // accum, f"epoch {self.epoch + 1}",
                           self.dist.is_main)
        samples_per_step = args.batch_size * accum * self.dist.world_size
        loss_sum = torch.zeros((), device=self.device)
        log_loss, log_gn, log_steps, log_stats = 0.0, 0.0, 0, {}
        count_flops = getattr(self.task, "train_flops", None)
        after_step = getattr(self.task, "after_step", None)
        micro_flops = 0.0
        clock = (time.perf_counter(), time.process_time())
        try:
            for i, batch in enumerate(DeviceLoader(loader, self.device), start=self.batches_done):
                last_micro = (i + 1) % accum == 0
                sync = contextlib.nullcontext() if (self._ddp is None or last_micro) else self._ddp.no_sync()
                with sync:
                    with self._autocast():
                        loss, stats = self.task.train_step(model, batch)
                    self.scaler.scale(loss.float() / accum).backward()
                loss_sum += loss.detach().float()
                if count_flops is not None:
                    micro_flops += float(count_flops(self.unwrapped, batch))
                for k, v in (stats or {}).items():
                    log_stats[k] = log_stats.get(k, 0.0) + float(v) / accum
                if not last_micro:
                    continue
                self.scaler.unscale_(self.optimizer)
                grad_norm = torch.nn.utils.clip_grad_norm_(self.params, args.clip_grad or float("inf"))
                # one host sync per optimiser step: loss and grad norm, averaged over processes
                check = D.all_reduce_mean(torch.stack([loss_sum / accum, grad_norm.float().to(self.device)]))
                step_loss, step_gn = check.tolist()
                self._check_finite(step_loss, step_gn)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self.scheduler.step()
                self.step += 1
                if after_step is not None:
                    with torch.no_grad():
                        after_step(self.unwrapped, self.step)
                self.batches_done = i + 1
                loss_sum.zero_()
                now = (time.perf_counter(), time.process_time())
                self._add_compute(micro_flops * self.dist.world_size, now[0] - clock[0], now[1] - clock[1])
                micro_flops, clock = 0.0, now
                meter.update(samples_per_step)
                log_loss, log_gn, log_steps = log_loss + step_loss, log_gn + step_gn, log_steps + 1
                self.epoch_loss = [self.epoch_loss[0] + step_loss, self.epoch_loss[1] + 1]
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{step_loss:.4f}")
                if self.step % args.log_interval == 0 or self.step == self.target_steps:
                    self._log_train(log_loss / log_steps, log_gn / log_steps,
                                    {k: v / log_steps for k, v in log_stats.items()}, meter, num_batches)
                    log_loss, log_gn, log_steps, log_stats = 0.0, 0.0, 0, {}
                if self.step >= self.target_steps and self.batches_done < num_batches:
                    return True
                if (args.save_interval_steps and self.step % args.save_interval_steps == 0
                        and self.batches_done < num_batches):
                    self._save(self.epoch + 1)
        finally:
            if bar is not None:
                bar.close()
        return False

    def _add_compute(self, flops: float, seconds: float, cpu_seconds: float) -> None:
        c = self.compute
        c["train_flops"] += flops
        c["flops_per_step"] = flops
        c["train_seconds"] += seconds
        c["device_seconds"] += seconds * self.dist.world_size
        c["cpu_seconds"] += cpu_seconds

    def _log_train(self, loss: float, grad_norm: float, stats: dict, meter: Throughput, num_batches: int) -> None:
        # the peak-scaled lr of the step just taken (groups with layer decay use lr * lr_scale)
        lr = self.scheduler.lr_at(self.step - 1)
        rate = meter.window()
        extra = "".join(f" {k} {v:.4g}" for k, v in stats.items())
        logger.info("epoch %d/%d step %d/%d batch %d/%d loss %.5f lr %.3e grad_norm %.3f%s samples/s %.1f ETA %s",
                    self.epoch + 1, self.args.epochs, self.step, self.target_steps, self.batches_done, num_batches,
                    loss, lr, grad_norm, extra, rate, format_duration(meter.eta(self.target_steps - self.step)))
        for name, value in [("loss", loss), ("lr", lr), ("grad_norm", grad_norm), ("samples_per_s", rate),
                            *stats.items()]:
            self.writer.add_scalar(f"train/{name}", value, self.step)

    def _validate(self) -> dict:
        if self.valid_dataset is None:
            return {}
        shard = D.shard_indices(len(self.valid_dataset), self.dist.rank, self.dist.world_size)
        vbs = self.valid_batch_size
        batches = [shard[i: i + vbs] for i in range(0, len(shard), vbs)]
        loader = self._loader(self.valid_dataset, batches, 0, salt=3)
        self.model.eval()
        try:
            with torch.no_grad(), self._autocast():
                results = self.task.validate(self.model, DeviceLoader(loader, self.device))
        finally:
            self.model.train()
        return {k: float(v) for k, v in (results or {}).items()}

    def _end_epoch(self, finished: bool) -> None:
        """Validation, best.pt, the task's epoch hook, then the checkpoint (epoch-end, or mid-epoch at max_steps)."""
        epoch_1based = self.epoch + 1
        t0 = time.perf_counter()
        results = self._validate()
        if results:
            self.last_valid = results
            improved = False
            if self.best_metric_name:
                if self.best_metric_name not in results:
                    raise KeyError(f"best_metric '{self.best_metric_name}' is not among the validation results "
                                   f"{sorted(results)}")
                value = results[self.best_metric_name]
                improved = math.isfinite(value) and (
                    self.best_value is None
                    or (value < self.best_value if self.best_mode == "min" else value > self.best_value))
                if improved:
                    self.best_value = value
            logger.info("epoch %d validation (%.1fs):%s%s", epoch_1based, time.perf_counter() - t0,
                        "".join(f" {k} {v:.5g}" for k, v in results.items()), " (best so far)" if improved else "")
            for k, v in results.items():
                self.writer.add_scalar(f"valid/{k}", v, self.step)
            if improved:
                best = self._state(full=False)
                if self.dist.is_main:
                    save_checkpoint(best, os.path.join(self.ckpt_dir, BEST_NAME))
        if self.dist.is_main and hasattr(self.task, "on_epoch_end"):
            self.model.eval()
            try:
                with torch.no_grad():
                    self.task.on_epoch_end(self.model, epoch_1based, self.exp_dir, self.writer)
            finally:
                self.model.train()
        loss_sum, loss_steps = self.epoch_loss
        entry = dict(epoch=epoch_1based, step=self.step,
                     train_loss=loss_sum / loss_steps if loss_steps else None,
                     lr=self.scheduler.lr_at(max(self.step - 1, 0)), **results, **self.compute)
        self.history.append(plain(entry))
        self.epoch_loss = [0.0, 0]
        if self.dist.is_main:
            write_history(self.exp_dir, self.history)
        if finished:
            self.epoch, self.batches_done = self.epoch + 1, 0
        self._save(epoch_1based)
        self.writer.flush()
