#!/usr/bin/env python3
"""Does pre-training help speech recognition here? Scratch vs pre-trained, square vs frame patches, random vs
time-span masking, at equal pre-training FLOPs, over seeds: test WER and CER of the CTC recogniser.

Settings (model options on top of conf/pretrain_mini_speech.yaml and conf/finetune_ctc_mini.yaml, written to
exp/speech_study/conf/ so the two files of a setting always agree on the encoder):

* ``scratch_square`` / ``scratch_frame``: CTC from a random encoder with 16 x 16 or 64 x 4 patches (no
  pre-training);
* ``square_random``, ``square_span``, ``frame_random``, ``frame_span``: pre-trained with that patch shape and
  mask, then fine-tuned as ``./run.sh`` does (stages 3-5 of maskspec.sh).

Every pre-training run gets the FLOPs of the ``square_random`` run at the base config's epochs (a budget becomes
whole epochs, rounded down); 64 x 4 patches on 64 mel bins give the same 48 tokens per 192-frame crop as 16 x 16,
so the epochs come out equal, and the table reports the FLOPs each run recorded (history.json). Each seed is the
corpus and training seed, as ``./run.sh --seed N``; its corpus and features (stages 1-2) are made once and shared
by every setting.

Writes exp/speech_study/results.json (one record per run), exp/speech_study/RESULTS.md (table) and
exp/speech_study/wer.png after every finished run; with --publish true also the table into README.md (between the
speech_study markers) and the plot to speech_study.png. Finished runs are reused (maskspec.sh's .done markers),
so an interrupted study continues where it stopped. Run from egs/mini_speech through local/speech_study.sh.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np
import yaml

from maskspec.models.configs import model_config
from maskspec.models.flops import pretrain_flops_per_clip
from maskspec.utils.atomic import atomic_open
from maskspec.utils.sections import replace_section
from maskspec.utils.plots import pyplot, save_png

STUDY_DIR = "exp/speech_study"
PRETRAIN_CONFIG = "conf/pretrain_mini_speech.yaml"
FINETUNE_CONFIG = "conf/finetune_ctc_mini.yaml"
SECTION = "speech_study"  # the README section between <!-- speech_study:begin --> and <!-- speech_study:end -->
NUM_PRETRAIN_CLIPS = 3000  # local/data.sh's full corpus (not --quick)
GOAL = 0.25  # relative WER reduction the best pre-trained setting must reach against scratch, on every seed

SQUARE = {"patch_freq": 0, "patch_time": 0}  # 16 x 16 (patch_size)
FRAME = {"patch_freq": 64, "patch_time": 4}  # every mel bin x 4 frames: one token per 40 ms
RANDOM = {"mask_type": "random"}


def span(columns: int) -> dict:
    return {"mask_type": "time_span", "mask_span": columns}


# name -> (patch options, mask options or None (no pre-training), description)
VARIANTS = {
    "scratch_square": (SQUARE, None, "from scratch, 16 x 16 patches (4 CTC steps per column)"),
    "scratch_frame": (FRAME, None, "from scratch, 64 x 4 frame patches (1 CTC step per token)"),
    "square_random": (SQUARE, RANDOM, "16 x 16 patches, random patches masked"),
    "square_span": (SQUARE, span(2), "16 x 16 patches, time spans of 2 columns (320 ms) masked"),
    "frame_random": (FRAME, RANDOM, "64 x 4 frame patches, random patches masked"),
    "frame_span": (FRAME, span(5), "64 x 4 frame patches, time spans of 5 columns (200 ms) masked"),
}
REFERENCE = "square_random"  # its FLOPs at the base config's epochs are every pre-training run's budget
_lock = threading.Lock()


def scratch_of(variant: str) -> str:
    return "scratch_frame" if VARIANTS[variant][0] == FRAME else "scratch_square"


class Study:
    def __init__(self, args):
        with open(PRETRAIN_CONFIG) as f:
            self.pretrain_base = yaml.safe_load(f)
        with open(FINETUNE_CONFIG) as f:
            self.finetune_base = yaml.safe_load(f)
        self.args = args
        self.mask_ratio = args.mask_ratio
        self.base_epochs = args.epochs or self.pretrain_base["epochs"]
        self.batch = self.pretrain_base["batch_size"]
        self.full_flops = self.run_flops(REFERENCE, self.base_epochs)

    def pretrain_options(self, variant: str) -> dict:
        patch, mask, _ = VARIANTS[variant]
        return dict(patch, **(mask or {}), mask_ratio=self.mask_ratio)

    def model(self, variant: str):
        fields = {k: v for k, v in self.pretrain_base.items() if k in model_config("tiny").to_dict()}
        fields.update(self.pretrain_options(variant))
        return model_config(self.pretrain_base["model"], num_mel_bins=64, **fields)

    def run_flops(self, variant: str, epochs: int) -> float:
        cfg = self.model(variant)
        return NUM_PRETRAIN_CLIPS // self.batch * epochs * self.batch * pretrain_flops_per_clip(cfg, cfg.num_frames)

    def epochs_of(self, variant: str) -> int:
        return max(1, math.floor(self.full_flops / self.run_flops(variant, 1) + 1e-9))

    def write_configs(self) -> None:
        """exp/speech_study/conf/{pretrain,finetune}_<variant>.yaml: the base configs with the setting's model
        options (pre-training: top-level fields; fine-tuning: model_conf, which also shapes the scratch model)."""
        os.makedirs(os.path.join(STUDY_DIR, "conf"), exist_ok=True)
        for variant, (patch, mask, desc) in VARIANTS.items():
            ft = dict(self.finetune_base)
            ft["model_conf"] = dict(ft.get("model_conf") or {}, **patch)
            ft["ctc_upsample"] = 0  # automatic: 4 steps per 16-frame column, 1 per 4-frame token
            if self.args.finetune_lr:
                ft["lr"] = self.args.finetune_lr
            self._write(self.finetune_path(variant), ft, desc)
            if mask is not None:
                pt = dict(self.pretrain_base, **self.pretrain_options(variant))
                if self.args.pretrain_lr:
                    pt["lr"] = self.args.pretrain_lr
                self._write(self.pretrain_path(variant), pt, desc)

    @staticmethod
    def _write(path: str, values: dict, desc: str) -> None:
        with atomic_open(path) as f:
            f.write(f"# local/speech_study.py setting: {desc}\n")
            yaml.safe_dump(values, f, sort_keys=False, default_flow_style=None)

    @staticmethod
    def pretrain_path(variant: str) -> str:
        return os.path.join(STUDY_DIR, "conf", f"pretrain_{variant}.yaml")

    @staticmethod
    def finetune_path(variant: str) -> str:
        return os.path.join(STUDY_DIR, "conf", f"finetune_{variant}.yaml")

    def jobs(self, variants, seeds) -> list[dict]:
        out = []
        for seed in seeds:
            suffix = "" if seed == 0 else f"_seed{seed}"
            for variant in variants:
                tag = f"{self.args.prefix}{variant}{suffix}"
                pretrained = VARIANTS[variant][1] is not None
                epochs = self.epochs_of(variant) if pretrained else 0
                cmd = ["./run.sh", "--seed", str(seed), "--tag", tag, "--finetune_config", self.finetune_path(variant),
                       "--finetune_args", f"--seed {seed}", "--scratch_baseline", "false"]
                if pretrained:
                    pretrain_args = ["--seed", str(seed), "--epochs", str(epochs),
                                     "--warmup_epochs", f"{max(1.0, 0.1 * epochs):g}"]
                    cmd += ["--stage", "3", "--pretrain_tag", tag, "--pretrain_config", self.pretrain_path(variant),
                            "--pretrain_args", " ".join(pretrain_args)]
                else:
                    cmd += ["--stage", "4", "--init", "none"]
                out.append(dict(variant=variant, seed=seed, tag=tag, epochs=epochs, cmd=cmd,
                                model="pretrained" if pretrained else "scratch", test_set=f"test{suffix}",
                                cost=self.run_flops(variant, epochs) if pretrained else 0.0))
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
        rec = {k: v for k, v in job.items() if k != "cmd"}
        if job["model"] == "pretrained":
            with open(f"exp/pretrain_{job['tag']}/history.json") as f:
                last = json.load(f)[-1]
            rec.update(train_flops=last["train_flops"], flops_fraction=last["train_flops"] / self.full_flops,
                       cpu_seconds=last["cpu_seconds"], loss_ratio=last.get("loss_ratio"))
        with open(f"exp/finetune_{job['tag']}/{job['model']}/decode_{job['test_set']}/results.json") as f:
            m = json.load(f)["metrics"]
        rec.update(wer=m["wer"], cer=m["cer"], words=m["word_counts"]["num_ref"])
        return rec


def summarise(records: list[dict], full_flops: float, seeds: list[int]) -> tuple[str, list[dict], str]:
    """Markdown table (per setting: WER and CER per seed and mean, relative WER change against scratch with the
    same patches), the rows behind it, and the verdict on the goal."""
    ok = [r for r in records if "error" not in r]
    by = {(r["variant"], r["seed"]): r for r in ok}
    rows = []
    for variant in VARIANTS:
        rs = [by[(variant, s)] for s in seeds if (variant, s) in by]
        row = dict(variant=variant, seeds=[r["seed"] for r in rs], wer=[r["wer"] for r in rs],
                   cer=[r["cer"] for r in rs], desc=VARIANTS[variant][2])
        if VARIANTS[variant][1] is not None:
            row["flops_fraction"] = [r["flops_fraction"] for r in rs]
            row["epochs"] = rs[0]["epochs"] if rs else None
            row["loss_ratio"] = [r["loss_ratio"] for r in rs if r.get("loss_ratio") is not None]
            rel = {}
            for r in rs:
                base = by.get((scratch_of(variant), r["seed"]))
                if base is not None and base["wer"] > 0:
                    rel[r["seed"]] = 1.0 - r["wer"] / base["wer"]
            row["reduction"] = rel
        rows.append(row)

    def cell(values, seed_list, fmt="{:.3f}"):
        out = []
        for s in seeds:
            out.append(fmt.format(values[seed_list.index(s)]) if s in seed_list else "not run: out of session time")
        return out

    lines = [f"Test set of each seed's full corpus (300 utterances), greedy decoding. Pre-training FLOPs as a "
             f"fraction of the square/random run's ({full_flops / 1e12:.2f} TFLOP, analytic, from each run's "
             f"history.json). WER reduction: 1 - WER / WER of scratch with the same patches, per seed "
             f"(goal: >= {GOAL:.0%} on every seed).", "",
             "| setting | " + " | ".join(f"WER seed {s}" for s in seeds) + " | mean WER | mean CER | "
             "WER reduction vs scratch | pre-training FLOPs / epochs |",
             "|---|" + "---|" * len(seeds) + "---|---|---|---|"]
    for row in rows:
        w = cell(row["wer"], row["seeds"])
        mean_w = f"**{np.mean(row['wer']):.3f}**" if row["wer"] else "-"
        mean_c = f"{np.mean(row['cer']):.3f}" if row["cer"] else "-"
        if "reduction" in row:
            red = ", ".join(f"{row['reduction'][s]:+.0%}" if s in row["reduction"] else "-" for s in seeds)
            fl = (f"{np.mean(row['flops_fraction']):.3f} / {row['epochs']}" if row["flops_fraction"] else "-")
        else:
            red, fl = "-", "0"
        lines.append(f"| {row['variant']}: {row['desc']} | " + " | ".join(w) + f" | {mean_w} | {mean_c} | {red} | "
                     f"{fl} |")
    lines += ["", "CER per seed: " + "; ".join(
        f"{row['variant']} " + ", ".join(f"{c:.3f}" for c in row["cer"]) for row in rows if row["cer"])]
    verdict = goal_verdict(rows, seeds)
    lines += ["", verdict]
    return "\n".join(lines) + "\n", rows, verdict


def goal_verdict(rows: list[dict], seeds: list[int]) -> str:
    best, best_min = None, -math.inf
    for row in rows:
        red = row.get("reduction") or {}
        if len(red) == len(seeds):
            worst = min(red.values())
            if worst > best_min:
                best, best_min = row["variant"], worst
    if best is None:
        return "Goal: not decided (not every seed of any pre-trained setting and its scratch baseline has run)."
    met = best_min >= GOAL
    return (f"Goal ({GOAL:.0%} lower WER than scratch on every seed): {'met' if met else 'NOT met'}; best "
            f"pre-trained setting {best}, its smallest reduction over the seeds {best_min:+.1%}.")


def plot(rows: list[dict], seeds: list[int], path: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.0))
    names = [r["variant"] for r in rows]
    for i, r in enumerate(rows):
        if r["wer"]:
            ax.bar(i, np.mean(r["wer"]), color="lightgrey" if "reduction" not in r else "tab:blue", alpha=0.7)
            ax.scatter([i] * len(r["wer"]), r["wer"], color="black", s=12, zorder=3)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=20, fontsize=8)
    ax.set_ylabel("test WER (bars: mean, dots: seeds)")
    ax.set_title(f"mini speech: CTC WER, scratch vs pre-trained (seeds {', '.join(map(str, seeds))})", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_png(fig, path, dpi=100)


def write_outputs(study: Study, records: list[dict], seeds: list[int], publish_readme: bool) -> str:
    """results.json (merged with the runs other invocations wrote there: the same study over other seeds or
    settings, under a file lock), RESULTS.md and the plot (and README.md and speech_study.png)."""
    import fcntl

    with _lock, open(os.path.join(STUDY_DIR, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = os.path.join(STUDY_DIR, "results.json")
        mine = {(r["variant"], r["seed"]) for r in records}
        others = []
        if os.path.isfile(path):
            with open(path) as f:
                others = [r for r in json.load(f)["runs"] if (r["variant"], r["seed"]) not in mine]
        records = others + records
        seeds = sorted(set(seeds) | {r["seed"] for r in records})
        with atomic_open(path) as f:
            json.dump(dict(full_flops=study.full_flops, runs=records), f, indent=1)
        table, rows, verdict = summarise(records, study.full_flops, seeds)
        with atomic_open(os.path.join(STUDY_DIR, "RESULTS.md")) as f:
            f.write(table)
        plot(rows, seeds, os.path.join(STUDY_DIR, "wer.png"))
        if publish_readme:
            replace_section("README.md", SECTION, table)
            plot(rows, seeds, "speech_study.png")
        return table


def main(argv=None) -> int:
    global STUDY_DIR
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default=" ".join(VARIANTS), help=f"settings among: {', '.join(VARIANTS)}")
    p.add_argument("--seeds", default="0 1 2", help="corpus and training seeds")
    p.add_argument("--table_seeds", default="0 1 2",
                   help="seeds the table has columns for (a seed not run says so); runs of other seeds add theirs")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (each uses one thread)")
    p.add_argument("--epochs", type=int, default=0,
                   help="pre-training epochs of the square/random reference run, which sets every run's FLOPs "
                        "(0: the base config's)")
    p.add_argument("--mask_ratio", type=float, default=0.75, help="masked share of every pre-training setting")
    p.add_argument("--square_span", type=int, default=2, help="span length in columns of square_span (16 frames)")
    p.add_argument("--frame_span", type=int, default=5, help="span length in columns of frame_span (4 frames)")
    p.add_argument("--pretrain_lr", type=float, default=0.0, help="pre-training lr (0: the base config's)")
    p.add_argument("--finetune_lr", type=float, default=0.0, help="fine-tuning lr (0: the base config's)")
    p.add_argument("--prefix", default="speech_", help="experiment name prefix (exp/{pretrain,finetune}_<prefix>...)")
    p.add_argument("--study_dir", default=STUDY_DIR, help="the study's configs, logs and tables")
    p.add_argument("--publish", default="false", choices=["true", "false"],
                   help="also write the table into README.md and the plot to speech_study.png")
    p.add_argument("--prepare", default="true", choices=["true", "false"],
                   help="run stages 1-2 (data, features, token list) of each seed first")
    p.add_argument("--dry_run", default="false", choices=["true", "false"], help="print the runs and stop")
    p.add_argument("--in_order", default="false", choices=["true", "false"],
                   help="run each seed's settings in the order of --variants (default: pre-training runs first)")
    p.add_argument("--tables_only", default="false", choices=["true", "false"],
                   help="run nothing: write the table and plot (and with --publish true README.md) from results.json")
    args = p.parse_args(argv)
    variants = args.variants.split()
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        print(f"speech_study: unknown setting(s) {', '.join(bad)}; use {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split()]
    table_seeds = [int(s) for s in args.table_seeds.split()]
    STUDY_DIR = args.study_dir
    for name, columns, frames in (("square_span", args.square_span, 16), ("frame_span", args.frame_span, 4)):
        patch, _, _ = VARIANTS[name]
        shape = "16 x 16 patches" if patch == SQUARE else "64 x 4 frame patches"
        VARIANTS[name] = (patch, span(columns), f"{shape}, time spans of {columns} columns ({columns * frames * 10} ms) "
                                                f"masked")
    study = Study(args)
    # seed by seed (a seed's table column fills first), pre-training runs before the cheaper scratch ones unless
    # --in_order true (the settings in the order given)
    in_order = args.in_order == "true"
    jobs = sorted(study.jobs(variants, seeds), key=lambda j: (j["seed"], 0 if in_order else -j["cost"]))
    for j in jobs:
        print(f"{j['tag']}: {j['epochs']} pre-training epochs = {j['cost'] / study.full_flops:.3f} of the "
              f"reference; {shlex.join(j['cmd'])}")
    if args.dry_run == "true":
        return 0
    if args.tables_only == "true":
        print(write_outputs(study, [], table_seeds, args.publish == "true"))
        return 0
    os.makedirs(os.path.join(STUDY_DIR, "log"), exist_ok=True)
    study.write_configs()
    for seed in seeds if args.prepare == "true" else []:  # corpus, features, token list; skipped where done
        if subprocess.call(["./run.sh", "--seed", str(seed), "--stop_stage", "2"]) != 0:
            print(f"speech_study: stages 1-2 of seed {seed} failed", file=sys.stderr)
            return 1
    records: list[dict] = []  # runs of other invocations (other settings or seeds) stay in results.json
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(study.run_job, j) for j in jobs]
        for fut in as_completed(futures):
            records.append(fut.result())
            write_outputs(study, records, table_seeds, args.publish == "true")
    print(write_outputs(study, records, table_seeds, args.publish == "true"))
    failed = [r["tag"] for r in records if "error" in r]
    if failed:
        print(f"speech_study: {len(failed)} runs failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
