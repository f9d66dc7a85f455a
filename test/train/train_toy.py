"""A tiny training job for the trainer tests: importable helpers, and a script run as a subprocess.

The model and task draw from every global generator (torch dropout + torch.rand, numpy, python random) so that
an exact-resume test fails if any of them is not saved and restored.

    python test/train/train_toy.py --data D --exp_dir E --out final.pt [--num_workers 2] [--sleep 0.03] ...
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

import numpy as np
import torch
from torch import nn

from maskspec.data.feats import FeatWriter
from maskspec.train.config import add_training_args, resolve_training_args

NUM_BINS, CLIP_FRAMES, CROP_FRAMES = 4, 12, 8


def write_toy_data(data_dir: str, num_utts: int = 40, seed: int = 0) -> dict:
    """feats.scp with ``num_utts`` clips of [12, 4] frames; returns a stats dict."""
    rng = np.random.default_rng(seed)
    mats = []
    with FeatWriter(os.path.join(data_dir, "feats"), "ark") as w:
        for i in range(num_utts):
            mat = rng.standard_normal((CLIP_FRAMES, NUM_BINS)).astype(np.float32) + np.arange(NUM_BINS)
            w.write(f"utt{i:03d}", mat)
            mats.append(mat)
    a = np.concatenate(mats).astype(np.float64)
    return dict(num_utts=num_utts, num_frames=len(a), mean=a.mean(0).tolist(), std=a.std(0).tolist(),
                global_mean=float(a.mean()), global_std=float(a.std()))


class ToyModel(nn.Module):
    """[B, 8, 4] -> [B, 8, 4] reconstruction through a dropout bottleneck."""

    def __init__(self, dropout: float = 0.2):
        super().__init__()
        d = CROP_FRAMES * NUM_BINS
        self.net = nn.Sequential(nn.Linear(d, 16), nn.GELU(), nn.Dropout(dropout), nn.Linear(16, d))
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        return self.net(self.norm(x.reshape(b, -1))).reshape_as(x)


class ToyTask:
    """Denoising loss with noise from torch, numpy and python RNGs; optional sleep to make a run killable;
    ``nan_at`` makes the loss of that (1-based) train_step call NaN."""

    def __init__(self, sleep: float = 0.0, nan_at: int = 0):
        self.sleep, self.nan_at, self.calls = sleep, nan_at, 0
        self.epochs_seen: list[int] = []

    def train_step(self, model, batch):
        self.calls += 1
        if self.sleep:
            time.sleep(self.sleep)
        x = batch["feats"]
        noise = torch.rand_like(x) * 0.1 + float(np.random.uniform(0, 0.1)) + random.random() * 0.1
        loss = ((model(x + noise) - x) ** 2).mean()
        if self.nan_at and self.calls == self.nan_at:
            loss = loss * float("nan")
        return loss, {"noise": float(noise.mean())}

    def train_flops(self, model, batch):
        """6 x parameters per clip, the usual forward + backward estimate of a dense network."""
        return 6.0 * sum(p.numel() for p in model.parameters()) * batch["feats"].shape[0]

    def validate(self, model, loader):
        total, n = 0.0, 0
        for batch in loader:
            x = batch["feats"]
            total += float(((model(x) - x) ** 2).mean()) * x.shape[0]
            n += x.shape[0]
        return {"loss": total / max(n, 1)}

    def on_epoch_end(self, model, epoch, exp_dir, tb_writer):
        self.epochs_seen.append(epoch)


def training_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_training_args(p)
    args = p.parse_args(["--epochs", "4", "--batch_size", "4", "--accum_grad", "2", "--lr", "0.01",
                         "--warmup_epochs", "1", "--num_workers", "0", "--log_interval", "1",
                         "--save_interval_steps", "2", "--keep_checkpoints", "3", "--tensorboard", "false",
                         "--clip_grad", "1.0", "--seed", "3"] + argv)
    return resolve_training_args(args, world_size=1, device_type="cpu")


def make_trainer(data_dir: str, exp_dir: str, args: argparse.Namespace, task: ToyTask, stats: dict):
    from maskspec.data.dataset import FeatDataset, collate
    from maskspec.train.distributed import DistInfo, DistributedShuffleSampler
    from maskspec.train.optim import param_groups
    from maskspec.train.trainer import Trainer

    torch.manual_seed(args.seed)
    model = ToyModel()
    train = FeatDataset(data_dir, CROP_FRAMES, stats, "per_bin", crop="random", seed=args.seed)
    valid = FeatDataset(data_dir, CROP_FRAMES, stats, "per_bin", crop="start")
    sampler = DistributedShuffleSampler(len(train), seed=args.seed, shuffle=True, drop_last=True)
    return Trainer(model=model, task=task, train_dataset=train, train_sampler=sampler, collate_fn=collate,
                   param_groups=param_groups(model, args.weight_decay), args=args, exp_dir=exp_dir,
                   dist_info=DistInfo(), valid_dataset=valid, metadata=dict(kind="toy"), best_metric="loss")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--exp_dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--sleep", type=float, default=0.0)
    opts, rest = p.parse_known_args()
    torch.set_num_threads(1)
    args = training_args(rest)
    with open(os.path.join(opts.data, "stats.json")) as f:
        stats = json.load(f)
    trainer = make_trainer(opts.data, opts.exp_dir, args, ToyTask(sleep=opts.sleep), stats)
    result = trainer.fit()
    torch.save(trainer.model.state_dict(), opts.out)
    print(json.dumps(dict(step=result["step"], resumed_from=result["resumed_from"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
