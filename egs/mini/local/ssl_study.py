#!/usr/bin/env python3
"""Pre-training variants against compute on the mini corpus: fine-tuned test accuracy vs pre-training FLOPs.

Each variant (model options on top of conf/pretrain_mini.yaml) is pre-trained for fixed fractions of the full
mini run's pre-training FLOPs (the paper's method, 50 epochs), then fine-tuned and scored exactly as ./run.sh
does (stages 3-5 of maskspec.sh with conf/finetune_mini.yaml), for each seed (corpus and training seed, as
``./run.sh --seed N``). The paper's method at 1x also runs the from-scratch baseline. A budget becomes a whole
number of epochs, rounded down so a run never exceeds it; the table and plot use the FLOPs each run recorded
in its history.json.

Writes exp/ssl_study/results.json (one record per run), exp/ssl_study/RESULTS.md (table) and
exp/ssl_study/accuracy_vs_compute.png; with --publish true also the table into README.md (between the
ssl_study markers) and the plot to ssl_study.png. Finished runs are reused (maskspec.sh's .done markers), so
an interrupted study continues where it stopped. Run from egs/mini through local/ssl_study.sh.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
import yaml

from maskspec.models.configs import model_config
from maskspec.models.flops import pretrain_flops_per_clip
from maskspec.utils.atomic import atomic_open
from maskspec.utils.plots import pyplot, save_png

STUDY_DIR = "exp/ssl_study"
PRETRAIN_CONFIG = "conf/pretrain_mini.yaml"
README_BEGIN, README_END = "<!-- ssl_study:begin -->", "<!-- ssl_study:end -->"
NUM_PRETRAIN_CLIPS = 3000  # local/data.sh's full corpus (not --quick)

# name -> (model options, batch size, description). K-view variants keep 128 views per step (batch 32 x 4),
# so at equal FLOPs they take the same number of optimiser steps as the paper's method but read 4x fewer clips.
VARIANTS = {
    "paper": ({}, 128, "random 75 %, 1 view, batch 128 (conf/pretrain_mini.yaml)"),
    "k4_random": ({"num_masks": 4}, 32, "random 75 %, 4 views of 32 clips"),
    "k4_inverse_block": ({"num_masks": 4, "mask_type": "inverse_block"}, 32,
                         "inverse block 2x2 (visible rectangles), 75 %, 4 views of 32 clips"),
    "block": ({"mask_type": "block"}, 128, "block 2x2 (hidden rectangles), 75 %, 1 view, batch 128"),
    # knobs measured on the same scale: smaller batches (more steps per FLOP), a higher mask ratio
    "b32": ({}, 32, "random 75 %, 1 view, batch 32 (4x the steps per FLOP)"),
    "k4_inverse_block_b8": ({"num_masks": 4, "mask_type": "inverse_block"}, 8,
                            "inverse block 2x2, 75 %, 4 views of 8 clips (the steps of batch 32)"),
    "ratio875": ({"mask_ratio": 0.875}, 128, "random 87.5 %, 1 view, batch 128"),
    "dec32": ({"decoder_embed_dim": 32}, 128, "random 75 %, decoder 32 wide instead of 64, batch 128"),
}
DEFAULT_PLAN = ("paper:1,1/3,1/6 k4_random:1/3 k4_inverse_block:1/3 block:1/3 b32:1/3 k4_inverse_block_b8:1/3 "
                "ratio875:1/3 dec32:1/3 b32:1 dec32:1")


def parse_plan(text: str) -> list[tuple[str, Fraction]]:
    """'paper:1,1/3 block:1/3' -> [("paper", 1), ("paper", 1/3), ("block", 1/3)]."""
    plan = []
    for item in text.split():
        name, _, budgets = item.partition(":")
        if name not in VARIANTS or not budgets:
            raise ValueError(f"--plan: '{item}' must be <variant>:<budget>[,<budget>...] with a variant among "
                             f"{', '.join(VARIANTS)}")
        for b in budgets.split(","):
            frac = Fraction(b)
            if not 0 < frac <= 4:
                raise ValueError(f"--plan: budget {b} of '{item}' must be in (0, 4]")
            plan.append((name, frac))
    return plan


def budget_name(frac: Fraction) -> str:
    return f"{frac.numerator}x" if frac.denominator == 1 else f"{frac.numerator}of{frac.denominator}"


class Study:
    def __init__(self, args):
        with open(PRETRAIN_CONFIG) as f:
            self.base = yaml.safe_load(f)
        fields = {k: v for k, v in self.base.items() if k in model_config("tiny").to_dict()}
        self.model = model_config(self.base["model"], num_mel_bins=64, **fields)
        # FLOPs of the full run of the paper's method: epochs x whole batches x clips x FLOPs per clip
        self.full_flops = self.run_flops({}, self.base["batch_size"], self.base["epochs"])
        self.args = args

    def run_flops(self, model_opts: dict, batch: int, epochs: int) -> float:
        cfg = model_config(self.model, **model_opts)
        steps = NUM_PRETRAIN_CLIPS // batch * epochs
        return steps * batch * pretrain_flops_per_clip(cfg, cfg.num_frames)

    def epochs_for(self, variant: str, frac: Fraction) -> int:
        opts, batch, _ = VARIANTS[variant]
        per_epoch = self.run_flops(opts, batch, 1)
        return max(1, math.floor(float(frac) * self.full_flops / per_epoch + 1e-9))

    @staticmethod
    def config_of(variant: str) -> str:
        """conf/pretrain_mini.yaml, or a copy with the variant's model options (in a file: the recipe's job
        runners pass --pretrain_args through a shell, which would strip the quotes of a --model_conf)."""
        if not VARIANTS[variant][0]:
            return PRETRAIN_CONFIG
        return os.path.join(STUDY_DIR, "conf", f"pretrain_{variant}.yaml")

    @staticmethod
    def write_configs(variants) -> None:
        """A variant's option that the base config sets is changed on its line (a single-field option would win
        over model_conf); the others are appended as model_conf."""
        with open(PRETRAIN_CONFIG) as f:
            base = f.read()
        for variant in variants:
            path = Study.config_of(variant)
            if path == PRETRAIN_CONFIG:
                continue
            text, model_conf = base, {}
            for key, value in VARIANTS[variant][0].items():
                line = re.compile(rf"^{key}:.*$", re.MULTILINE)
                if line.search(text):
                    text = line.sub(f"{key}: {json.dumps(value)}", text)
                else:
                    model_conf[key] = value
            text += f"\n# local/ssl_study.py variant {variant}: {VARIANTS[variant][2]}\n"
            if model_conf:
                text += f"model_conf: {json.dumps(model_conf)}\n"
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with atomic_open(path) as f:
                f.write(text)

    def jobs(self, plan, seeds) -> list[dict]:
        out = []
        for variant, frac in plan:
            opts, batch, _ = VARIANTS[variant]
            epochs = self.epochs_for(variant, frac)
            for seed in seeds:
                suffix = "" if seed == 0 else f"_seed{seed}"
                tag = f"study_{variant}_{budget_name(frac)}{suffix}"
                pretrain_args = ["--seed", str(seed), "--epochs", str(epochs), "--batch_size", str(batch),
                                 "--warmup_epochs", f"{0.1 * epochs:g}"]  # 10 %, as the 5 of 50 epochs
                scratch = variant == "paper" and frac == 1
                cmd = ["./run.sh", "--seed", str(seed), "--stage", "3", "--pretrain_tag", tag, "--tag", tag,
                       "--pretrain_config", self.config_of(variant), "--pretrain_args", " ".join(pretrain_args),
                       "--linear_probe", "false", "--scratch_baseline", "true" if scratch else "false"]
                out.append(dict(variant=variant, budget=str(frac), seed=seed, tag=tag, epochs=epochs,
                                batch_size=batch, cmd=cmd, scratch=scratch, test_set=f"test{suffix}",
                                cost=self.run_flops(opts, batch, epochs)))
        return out

    def run_job(self, job: dict) -> dict:
        log = os.path.join(STUDY_DIR, "log", f"{job['tag']}.log")
        t0 = time.time()
        with open(log, "a") as f:
            f.write(f"# {shlex.join(job['cmd'])}\n")
            f.flush()
            rc = subprocess.call(job["cmd"], stdout=f, stderr=subprocess.STDOUT)
        print(f"{job['tag']}: exit {rc} after {time.time() - t0:.0f} s (log {log})", flush=True)
        if rc != 0:
            return dict(job, error=f"exit {rc}, see {log}")
        try:
            return self.collect(job)
        except (OSError, KeyError, ValueError, IndexError) as e:  # one unreadable run must not stop the others
            return dict(job, error=f"results of {job['tag']} unreadable: {type(e).__name__}: {e}")

    def collect(self, job: dict) -> dict:
        with open(f"exp/pretrain_{job['tag']}/history.json") as f:
            last = json.load(f)[-1]
        rec = {k: v for k, v in job.items() if k != "cmd"}
        rec.update(train_flops=last["train_flops"], flops_fraction=last["train_flops"] / self.full_flops,
                   train_seconds=last["train_seconds"], cpu_seconds=last["cpu_seconds"],
                   loss_ratio=last.get("loss_ratio"))
        models = ["pretrained"] + (["scratch"] if job["scratch"] else [])
        for m in models:
            with open(f"exp/finetune_{job['tag']}/{m}/decode_{job['test_set']}/results.json") as f:
                rec[f"{m}_accuracy"] = json.load(f)["metrics"]["accuracy"]
        return rec


def summarise(records: list[dict], full_flops: float) -> tuple[str, list[dict]]:
    """Markdown table (mean ± std over seeds per variant and budget) and the rows behind it."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        if "error" not in r:
            groups.setdefault((r["variant"], r["budget"]), []).append(r)
    rows = []
    for (variant, budget), rs in groups.items():
        acc = np.array([r["pretrained_accuracy"] for r in rs])
        rows.append(dict(variant=variant, budget=budget, seeds=sorted(r["seed"] for r in rs),
                         flops_fraction=float(np.mean([r["flops_fraction"] for r in rs])),
                         mean=float(acc.mean()), std=float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                         per_seed=[r["pretrained_accuracy"] for r in sorted(rs, key=lambda r: r["seed"])],
                         minutes=float(np.mean([r["cpu_seconds"] for r in rs])) / 60,
                         loss_ratio=float(np.mean([r["loss_ratio"] for r in rs])),
                         epochs=rs[0]["epochs"], batch_size=rs[0]["batch_size"]))
        scratch = [r["scratch_accuracy"] for r in rs if "scratch_accuracy" in r]
        if scratch:
            s = np.array(scratch)
            rows.append(dict(variant="from scratch", budget="0", seeds=sorted(r["seed"] for r in rs),
                             flops_fraction=0.0, mean=float(s.mean()), std=float(s.std(ddof=1)) if len(s) > 1 else 0.0,
                             per_seed=scratch, minutes=0.0, loss_ratio=None, epochs=0, batch_size=0))
    rows.sort(key=lambda r: (list(VARIANTS).index(r["variant"]) if r["variant"] in VARIANTS else -1,
                             -r["flops_fraction"]))
    lines = [f"Pre-training compute as a fraction of the paper method's full mini run ({full_flops / 1e12:.2f} "
             f"TFLOP, analytic, from each run's history.json); CPU minutes of the pre-training process (one thread; wall "
             f"time depends on what else runs); validation loss / mean-prediction loss at the end of pre-training; "
             f"test accuracy of the fine-tuned model, mean ± std over seeds.", "",
             "| variant | budget | FLOPs / full run | epochs x batch | CPU minutes | valid loss ratio | "
             "test accuracy | per seed |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        desc = VARIANTS[r["variant"]][2] if r["variant"] in VARIANTS else "no pre-training (conf/finetune_mini.yaml)"
        ratio = f"{r['loss_ratio']:.3f}" if r["loss_ratio"] is not None else "-"
        lines.append(f"| {r['variant']}: {desc} | {r['budget']} | {r['flops_fraction']:.3f} | "
                     f"{r['epochs']} x {r['batch_size']} | {r['minutes']:.1f} | {ratio} | "
                     f"**{r['mean']:.3f} ± {r['std']:.3f}** | {', '.join(f'{a:.3f}' for a in r['per_seed'])} |")
    return "\n".join(lines) + "\n", rows


def plot(rows: list[dict], path: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for variant in VARIANTS:
        rs = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["flops_fraction"])
        if rs:
            ax.errorbar([r["flops_fraction"] for r in rs], [r["mean"] for r in rs], yerr=[r["std"] for r in rs],
                        marker="o", capsize=3, label=variant)
    for r in rows:
        if r["variant"] == "from scratch":
            ax.axhline(r["mean"], color="grey", linestyle="--", label="from scratch")
    ax.axvline(1 / 3, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("pre-training FLOPs / paper method's full run")
    ax.set_ylabel("test accuracy after fine-tuning")
    ax.set_title("mini corpus: accuracy against pre-training compute (mean ± std over seeds)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path, dpi=100)


def publish(table: str, readme: str) -> None:
    """Replace the text between the ssl_study markers of ``readme`` with ``table``."""
    with open(readme) as f:
        text = f.read()
    if README_BEGIN not in text or README_END not in text:
        raise ValueError(f"{readme}: no '{README_BEGIN}' ... '{README_END}' section to write the table into")
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    with atomic_open(readme) as f:
        f.write(f"{head}{README_BEGIN}\n{table}{README_END}{tail}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--plan", default=DEFAULT_PLAN, help=f"variants and budgets; variants: {', '.join(VARIANTS)}")
    p.add_argument("--seeds", default="0 1 2", help="corpus and training seeds (stages 1-2 must be done for each)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (each uses one thread)")
    p.add_argument("--publish", default="false", choices=["true", "false"],
                   help="also write the table into README.md and the plot to ssl_study.png")
    p.add_argument("--prepare", default="true", choices=["true", "false"],
                   help="run stages 1-2 (data, features) of each seed first; false: they must be done already")
    p.add_argument("--dry_run", default="false", choices=["true", "false"], help="print the runs and stop")
    args = p.parse_args(argv)
    try:
        plan = parse_plan(args.plan)
        seeds = [int(s) for s in args.seeds.split()]
    except ValueError as e:
        print(f"ssl_study: {e}", file=sys.stderr)
        return 2
    study = Study(args)
    jobs = sorted(study.jobs(plan, seeds), key=lambda j: -j["cost"])  # longest first: less idle at the end
    for j in jobs:
        print(f"{j['tag']}: {j['epochs']} epochs x batch {j['batch_size']} = "
              f"{j['cost'] / study.full_flops:.3f} of the full run; {shlex.join(j['cmd'])}")
    if args.dry_run == "true":
        return 0
    os.makedirs(os.path.join(STUDY_DIR, "log"), exist_ok=True)
    Study.write_configs({variant for variant, _ in plan})
    for seed in seeds if args.prepare == "true" else []:  # corpus and features (stages 1-2), skipped where done
        if subprocess.call(["./run.sh", "--seed", str(seed), "--stop_stage", "2"]) != 0:
            print(f"ssl_study: stages 1-2 of seed {seed} failed", file=sys.stderr)
            return 1
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        records = list(pool.map(study.run_job, jobs))
    with atomic_open(os.path.join(STUDY_DIR, "results.json")) as f:
        json.dump(dict(full_flops=study.full_flops, runs=records), f, indent=1)
    table, rows = summarise(records, study.full_flops)
    with atomic_open(os.path.join(STUDY_DIR, "RESULTS.md")) as f:
        f.write(table)
    plot(rows, os.path.join(STUDY_DIR, "accuracy_vs_compute.png"))
    print(table)
    if args.publish == "true":
        publish(table, "README.md")
        plot(rows, "ssl_study.png")
    failed = [r["tag"] for r in records if "error" in r]
    if failed:
        print(f"ssl_study: {len(failed)} runs failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
