#!/usr/bin/env python3
"""Pre-training variants against compute on the mini corpus: fine-tuned test accuracy vs pre-training FLOPs.

Each variant (model options on top of conf/pretrain_mini.yaml) is pre-trained for fixed fractions of the full
mini run's pre-training FLOPs (the paper's method, 50 epochs), then fine-tuned and scored exactly as ./run.sh
does (stages 3-5 of maskspec.sh with conf/finetune_mini.yaml), for each seed (corpus and training seed, as
``./run.sh --seed N``). The paper's method at 1x also runs the from-scratch baseline. A budget becomes a whole
number of epochs, rounded down so a run never exceeds it; the table and plot use the FLOPs each run recorded
in its history.json.

Every run is also scored as a linear probe (the head alone on the frozen encoder, conf/linear_probe_mini.yaml;
for the bootstrap objective, whose utterance loss trains the cls token, on that token: BOOTSTRAP_PROBE_CONFIG).
Variants of the bootstrap objective (issue 19; ``boot_*``) start from conf/pretrain_mini_bootstrap.yaml instead
of conf/pretrain_mini.yaml; their EMA teacher's decay is annealed over the run's own number of steps.

Writes exp/ssl_study/results.json (one record per run), exp/ssl_study/RESULTS.md (table) and
exp/ssl_study/accuracy_vs_compute.png after every finished run (a partial study is readable); with --publish
true also the table into README.md (between the ssl_study markers) and the plot to ssl_study.png. Rows of issue
14's study that this one did not re-run come from local/ssl_study_issue14.json (fine-tuned accuracy only: those
runs are not kept, so their linear-probe cell says so). Finished runs are reused (maskspec.sh's .done markers), so
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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
import yaml

from maskspec.models.configs import model_config
from maskspec.models.flops import pretrain_flops_per_clip
from maskspec.utils.atomic import atomic_open
from maskspec.utils.sections import replace_section
from maskspec.utils.plots import pyplot, save_png

STUDY_DIR = "exp/ssl_study"
PRETRAIN_CONFIG = "conf/pretrain_mini.yaml"
BOOTSTRAP_CONFIG = "conf/pretrain_mini_bootstrap.yaml"
BOOTSTRAP_PROBE_CONFIG = "conf/linear_probe_mini_cls.yaml"
PREVIOUS_ROWS = "local/ssl_study_issue14.json"
SECTION = "ssl_study"  # the README section between <!-- ssl_study:begin --> and <!-- ssl_study:end -->
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
    # issue 19: the bootstrap objective (conf/pretrain_mini_bootstrap.yaml), K views of 128 / K clips per step
    "boot_k1": ({"num_masks": 1}, 128, "bootstrap, 1 view of 128 clips"),
    "boot_k4": ({"num_masks": 4}, 32, "bootstrap, 4 views of 32 clips"),
    "boot_k16": ({"num_masks": 16}, 8, "bootstrap, 16 views of 8 clips"),
}
BOOTSTRAP_VARIANTS = ("boot_k1", "boot_k4", "boot_k16")
# Issue 19's plan, in the order the runs start (most wanted first: a partial study still answers the goals): the
# bootstrap objective and the paper's method at a third, 1x and a sixth of the full run's FLOPs, then dec32 at 1x.
# Issue 14's other rows are kept from local/ssl_study_issue14.json.
DEFAULT_PLAN = ("boot_k4:1/3 paper:1/3 boot_k4:1 paper:1 boot_k16:1/3 boot_k1:1/3 boot_k4:1/6 paper:1/6 "
                "boot_k16:1 boot_k1:1 boot_k16:1/6 boot_k1:1/6 dec32:1")


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


def base_config(variant: str) -> str:
    """The config a variant's options apply to."""
    return BOOTSTRAP_CONFIG if variant in BOOTSTRAP_VARIANTS else PRETRAIN_CONFIG


def config_model(path: str):
    """The ModelConfig of a pre-training config file (model fields over its size, the mini corpus's 64 bins)."""
    with open(path) as f:
        conf = yaml.safe_load(f)
    fields = {k: v for k, v in conf.items() if k in model_config("tiny").to_dict()}
    fields.update(conf.get("model_conf") or {})
    return model_config(conf["model"], **dict(fields, num_mel_bins=64)), conf


class Study:
    def __init__(self, args):
        self.model, self.base = config_model(PRETRAIN_CONFIG)
        self.models = {PRETRAIN_CONFIG: self.model}
        if os.path.isfile(BOOTSTRAP_CONFIG):
            self.models[BOOTSTRAP_CONFIG] = config_model(BOOTSTRAP_CONFIG)[0]
        # FLOPs of the full run of the paper's method: epochs x whole batches x clips x FLOPs per clip
        self.full_flops = self.run_flops({}, self.base["batch_size"], self.base["epochs"])
        self.args = args

    def run_flops(self, model_opts: dict, batch: int, epochs: int, variant: str = "paper") -> float:
        cfg = model_config(self.models[base_config(variant)], **model_opts)
        steps = NUM_PRETRAIN_CLIPS // batch * epochs
        return steps * batch * pretrain_flops_per_clip(cfg, cfg.num_frames)

    def epochs_for(self, variant: str, frac: Fraction) -> int:
        opts, batch, _ = VARIANTS[variant]
        per_epoch = self.run_flops(opts, batch, 1, variant)
        return max(1, math.floor(float(frac) * self.full_flops / per_epoch + 1e-9))

    @staticmethod
    def config_of(variant: str) -> str:
        """conf/pretrain_mini.yaml, or a copy with the variant's model options (in a file: the recipe's job
        runners pass --pretrain_args through a shell, which would strip the quotes of a --model_conf)."""
        if not VARIANTS[variant][0]:
            return base_config(variant)
        return os.path.join(STUDY_DIR, "conf", f"pretrain_{variant}.yaml")

    @staticmethod
    def write_configs(variants) -> None:
        """A variant's option that the base config sets is changed on its line (a single-field option would win
        over model_conf); the others are appended as model_conf."""
        for variant in variants:
            path = Study.config_of(variant)
            if path == base_config(variant):
                continue
            with open(base_config(variant)) as f:
                base = f.read()
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
                probe = "conf/linear_probe_mini.yaml"
                if variant in BOOTSTRAP_VARIANTS:  # the teacher's decay reaches its end value at the last step
                    pretrain_args += ["--ema_anneal_steps", str(NUM_PRETRAIN_CLIPS // batch * epochs)]
                    probe = BOOTSTRAP_PROBE_CONFIG
                scratch = variant == "paper" and frac == 1
                cmd = ["./run.sh", "--seed", str(seed), "--stage", "3", "--pretrain_tag", tag, "--tag", tag,
                       "--pretrain_config", self.config_of(variant), "--pretrain_args", " ".join(pretrain_args),
                       "--linear_probe", "true", "--linear_probe_config", probe,
                       "--scratch_baseline", "true" if scratch else "false"]
                out.append(dict(variant=variant, budget=str(frac), seed=seed, tag=tag, epochs=epochs,
                                batch_size=batch, cmd=cmd, scratch=scratch, test_set=f"test{suffix}",
                                cost=self.run_flops(opts, batch, epochs, variant)))
        return out

    def run_job(self, job: dict) -> dict | None:
        """Run the job's recipe stages 3-5; None when they succeeded, else a record with the error."""
        log = os.path.join(STUDY_DIR, "log", f"{job['tag']}.log")
        t0 = time.time()
        with open(log, "a") as f:
            f.write(f"# {shlex.join(job['cmd'])}\n")
            f.flush()
            rc = subprocess.call(job["cmd"], stdout=f, stderr=subprocess.STDOUT)
        print(f"{job['tag']}: exit {rc} after {time.time() - t0:.0f} s (log {log})", flush=True)
        return dict(job, error=f"exit {rc}, see {log}") if rc != 0 else None

    def collect(self, job: dict) -> dict:
        with open(f"exp/pretrain_{job['tag']}/history.json") as f:
            last = json.load(f)[-1]
        rec = {k: v for k, v in job.items() if k != "cmd"}
        rec.update(train_flops=last["train_flops"], flops_fraction=last["train_flops"] / self.full_flops,
                   train_seconds=last["train_seconds"], cpu_seconds=last["cpu_seconds"],
                   loss_ratio=last.get("loss_ratio"))
        models = ["pretrained", "linear_probe"] + (["scratch"] if job["scratch"] else [])
        if job["variant"] in BOOTSTRAP_VARIANTS:
            models.append("linear_probe_mean")
        for m in models:
            with open(f"exp/finetune_{job['tag']}/{m}/decode_{job['test_set']}/results.json") as f:
                rec[f"{m}_accuracy"] = json.load(f)["metrics"]["accuracy"]
        return rec

    @staticmethod
    def mean_probe(job: dict) -> int:
        """A bootstrap run's second linear probe, on the mean of the frozen patch tokens (conf/linear_probe_mini.yaml,
        as for the paper's method) beside the recipe's cls-token probe: exp/finetune_<tag>/linear_probe_mean.
        Skipped when its results exist; returns the exit status."""
        seed = str(job["seed"])
        suffix = job["test_set"][len("test"):]
        out = f"exp/finetune_{job['tag']}/linear_probe_mean"
        if os.path.isfile(f"{out}/decode_{job['test_set']}/results.json"):
            return 0
        log = os.path.join(STUDY_DIR, "log", f"{job['tag']}.log")
        steps = [[sys.executable, "-m", "maskspec.bin.finetune", "--config", "conf/linear_probe_mini.yaml",
                  "--train_data", f"dump/fbank/train{suffix}", "--valid_data", f"dump/fbank/valid{suffix}",
                  "--exp_dir", out, "--init", f"exp/pretrain_{job['tag']}/model.pt", "--freeze_encoder", "true",
                  "--seed", seed],
                 [sys.executable, "-m", "maskspec.bin.score", "--model", f"{out}/model.pt", "--data",
                  f"dump/fbank/{job['test_set']}", "--output_dir", f"{out}/decode_{job['test_set']}",
                  "--device", "cpu"]]
        with open(log, "a") as f:
            for cmd in steps:
                f.write(f"# {shlex.join(cmd)}\n")
                f.flush()
                rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
                if rc:
                    return rc
        return 0


def _mean_std(values) -> tuple[float, float]:
    a = np.array(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def previous_rows(path: str = PREVIOUS_ROWS) -> list[dict]:
    """Issue 14's rows (fine-tuned accuracy only), in summarise's row format."""
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        rows = json.load(f)["rows"]
    out = []
    for r in rows:
        mean, std = _mean_std(r["per_seed"])
        out.append(dict(r, mean=mean, std=std, probe=None, probe_per_seed=[], rerun=False))
    return out


def summarise(records: list[dict], full_flops: float, previous: list[dict] = (),
              plan=()) -> tuple[str, list[dict]]:
    """Markdown table (mean ± std over seeds per variant and budget) and the rows behind it. Rows of ``previous``
    (issue 14's study) that no record re-ran are kept, marked as such; entries of ``plan`` ([(variant, budget)])
    with no finished run get a row saying so."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        if "error" not in r:
            groups.setdefault((r["variant"], r["budget"]), []).append(r)
    rows = []
    for (variant, budget), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        mean, std = _mean_std([r["pretrained_accuracy"] for r in rs])
        probes = [r["linear_probe_accuracy"] for r in rs if "linear_probe_accuracy" in r]
        means = [r["linear_probe_mean_accuracy"] for r in rs if "linear_probe_mean_accuracy" in r]
        rows.append(dict(variant=variant, budget=budget, seeds=[r["seed"] for r in rs],
                         flops_fraction=float(np.mean([r["flops_fraction"] for r in rs])),
                         mean=mean, std=std, per_seed=[r["pretrained_accuracy"] for r in rs],
                         probe=_mean_std(probes) if probes else None, probe_per_seed=probes,
                         probe_mean=_mean_std(means) if means else None, probe_mean_per_seed=means,
                         minutes=float(np.mean([r["cpu_seconds"] for r in rs])) / 60,
                         loss_ratio=float(np.mean([r["loss_ratio"] for r in rs])),
                         epochs=rs[0]["epochs"], batch_size=rs[0]["batch_size"], rerun=True))
        scratch = [r["scratch_accuracy"] for r in rs if "scratch_accuracy" in r]
        if scratch:
            mean, std = _mean_std(scratch)
            seeds = [r["seed"] for r in rs if "scratch_accuracy" in r]
            rows.append(dict(variant="from scratch", budget="0", seeds=seeds, flops_fraction=0.0, mean=mean, std=std,
                             per_seed=scratch, probe=None, probe_per_seed=[],
                             minutes=0.0, loss_ratio=None, epochs=0, batch_size=0, rerun=True))
    # a re-run row replaces issue 14's once it has as many seeds
    measured = {(r["variant"], r["budget"]): len(r["per_seed"]) for r in rows}
    rows += [r for r in previous if measured.get((r["variant"], r["budget"]), 0) < len(r["per_seed"])]
    done = {(r["variant"], r["budget"]) for r in rows}
    for variant, frac in plan:
        if (variant, str(frac)) not in done:
            done.add((variant, str(frac)))
            rows.append(dict(variant=variant, budget=str(frac), flops_fraction=float(frac), not_run=True))
    rows.sort(key=lambda r: (list(VARIANTS).index(r["variant"]) if r["variant"] in VARIANTS else -1,
                             -r["flops_fraction"]))
    lines = [f"Pre-training compute as a fraction of the paper method's full mini run ({full_flops / 1e12:.2f} "
             f"TFLOP, analytic, from each run's history.json; the bootstrap objective's teacher pass included); CPU "
             f"minutes of the pre-training process (one thread; wall time depends on what else runs); validation "
             f"loss / mean-prediction loss at the end of pre-training (bootstrap: the patch loss against "
             f"predicting each clip's mean target); test accuracy of the fine-tuned model and of the linear probe "
             f"(frozen encoder, on the mean of its patch tokens; bootstrap: on its cls token, the scene embedding "
             f"the recipe's probe uses, and on the mean of its patch tokens), mean ± std over seeds. Rows marked † "
             f"are issue 14's runs, not (or not yet on every seed) re-run here: their runs are not kept, so they "
             f"have no linear probe.", "",
             "| variant | budget | FLOPs / full run | epochs x batch | CPU minutes | valid loss ratio | "
             "fine-tuned test accuracy | per seed | linear probe | per seed |", "|---" * 10 + "|"]
    for r in rows:
        desc = VARIANTS[r["variant"]][2] if r["variant"] in VARIANTS else "no pre-training (conf/finetune_mini.yaml)"
        if r.get("not_run"):
            lines.append(f"| {r['variant']}: {desc} | {r['budget']} | - | - | - | - | not run: out of session time | "
                         f"- | not run: out of session time | - |")
            continue
        ratio = f"{r['loss_ratio']:.3f}" if r["loss_ratio"] is not None else "-"
        if r["probe"] is not None:
            probe = f"**{r['probe'][0]:.3f} ± {r['probe'][1]:.3f}**"
            probe_seeds = ", ".join(f"{a:.3f}" for a in r["probe_per_seed"])
            if r.get("probe_mean") is not None:  # bootstrap: the cls token's probe, then the patch mean's
                probe = f"cls {probe}; mean **{r['probe_mean'][0]:.3f} ± {r['probe_mean'][1]:.3f}**"
                probe_seeds = f"cls {probe_seeds}; mean " + ", ".join(f"{a:.3f}" for a in r["probe_mean_per_seed"])
        elif r["variant"] == "from scratch":
            probe, probe_seeds = "-", "-"
        else:
            probe, probe_seeds = "not re-run (issue 14's runs not kept; out of session time)", "-"
        mark = "" if r.get("rerun", True) else " †"
        n = len(r["per_seed"])
        seeds = "" if n >= 3 else f" ({n} seed{'s' if n > 1 else ''})"
        lines.append(f"| {r['variant']}{mark}: {desc} | {r['budget']} | {r['flops_fraction']:.3f} | "
                     f"{r['epochs']} x {r['batch_size']} | {r['minutes']:.1f} | {ratio} | "
                     f"**{r['mean']:.3f} ± {r['std']:.3f}**{seeds} | {', '.join(f'{a:.3f}' for a in r['per_seed'])} | "
                     f"{probe} | {probe_seeds} |")
    return "\n".join(lines) + "\n", rows


def plot(rows: list[dict], path: str) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    # one colour per variant in both panels (matplotlib's 10-colour cycle, then black)
    colours = {v: f"C{i}" if i < 10 else "black" for i, v in enumerate(VARIANTS)}
    # (panel, value key): the fine-tuned accuracy; the probes (bootstrap: patch mean and cls)
    series = ((axes[0], "mean"), (axes[1], "probe_mean"), (axes[1], "probe"))
    for ax, key in series:
        for variant in VARIANTS:
            boot = variant in BOOTSTRAP_VARIANTS
            if key == "probe_mean" and not boot:
                continue
            rs = sorted((r for r in rows if r["variant"] == variant and not r.get("not_run")
                         and (key == "mean" or r.get(key) is not None)), key=lambda r: r["flops_fraction"])
            if not rs:
                continue
            ys = [r["mean"] if key == "mean" else r[key][0] for r in rs]
            es = [r["std"] if key == "mean" else r[key][1] for r in rs]
            label = variant + (" (cls)" if key == "probe" and boot else " (patch mean)" if key == "probe_mean" else "")
            cls = label.endswith("(cls)")
            ax.errorbar([r["flops_fraction"] for r in rs], ys, yerr=es, marker="x" if cls else "o", capsize=3,
                        label=label, color=colours[variant],
                        linestyle="--" if cls else "-" if boot or variant == "paper" else ":")
    for ax in axes:
        for r in rows:
            if r["variant"] == "from scratch":
                ax.axhline(r["mean"], color="grey", linestyle="--", label="from scratch")
        ax.axvline(1 / 3, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("pre-training FLOPs / paper method's full run")
        ax.grid(alpha=0.3)
    axes[0].set_title("fine-tuned (mean ± std over seeds)", fontsize=9)
    axes[1].set_title("linear probe (mean ± std over seeds)", fontsize=9)
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    fig.suptitle("mini corpus: accuracy against pre-training compute", fontsize=10)
    fig.tight_layout()
    save_png(fig, path, dpi=100)


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
    p.add_argument("--collect_only", default="false", choices=["true", "false"],
                   help="start no pre-training or fine-tuning: collect the runs of the plan that have finished (e.g. "
                        "from several study processes) and write the outputs (a finished bootstrap run's mean-pooled "
                        "probe is still trained if missing, ~0.5 CPU-min); planned rows without runs say 'not run'")
    args = p.parse_args(argv)
    try:
        plan = parse_plan(args.plan)
        seeds = [int(s) for s in args.seeds.split()]
    except ValueError as e:
        print(f"ssl_study: {e}", file=sys.stderr)
        return 2
    study = Study(args)
    # in the plan's order, seed by seed within each entry: a partial study has whole rows of the first entries
    jobs = study.jobs(plan, seeds)
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
    records: list[dict] = []
    lock = threading.Lock()
    previous = previous_rows()

    def write_out() -> str:
        """results.json, RESULTS.md, the plot (and README.md, ssl_study.png with --publish) from the runs so far."""
        with atomic_open(os.path.join(STUDY_DIR, "results.json")) as f:
            json.dump(dict(full_flops=study.full_flops, runs=records), f, indent=1)
        table, rows = summarise(records, study.full_flops, previous, plan)
        with atomic_open(os.path.join(STUDY_DIR, "RESULTS.md")) as f:
            f.write(table)
        plot(rows, os.path.join(STUDY_DIR, "accuracy_vs_compute.png"))
        if args.publish == "true":
            replace_section("README.md", SECTION, table)
            plot(rows, "ssl_study.png")
        return table

    def run_and_record(job: dict) -> None:
        rec = None
        if args.collect_only == "true":
            if not os.path.isfile(f"exp/finetune_{job['tag']}/linear_probe/decode_{job['test_set']}/results.json"):
                return
        else:
            rec = study.run_job(job)
        if rec is not None:
            pass
        elif job["variant"] in BOOTSTRAP_VARIANTS and study.mean_probe(job) != 0:
            rec = dict(job, error=f"the mean-pooled linear probe of {job['tag']} failed")
        else:
            try:
                rec = study.collect(job)
            except (OSError, KeyError, ValueError, IndexError) as e:  # one unreadable run must not stop the others
                rec = dict(job, error=f"results of {job['tag']} unreadable: {type(e).__name__}: {e}")
        with lock:
            records.append(rec)
            write_out()

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(run_and_record, jobs))
    print(write_out())
    failed = [r["tag"] for r in records if "error" in r]
    if failed:
        print(f"ssl_study: {len(failed)} runs failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
