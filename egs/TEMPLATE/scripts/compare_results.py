#!/usr/bin/env python3
"""RESULTS.md of one fine-tuning experiment: its models side by side on each test set (maskspec.sh stage 5).

e.g.: python egs/TEMPLATE/scripts/compare_results.py --title exp/finetune_base --output exp/finetune_base/RESULTS.md \\
          pretrained test exp/finetune_base/pretrained/decode_test/results.json \\
          scratch test exp/finetune_base/scratch/decode_test/results.json

Inputs are (model, test set, results file) triples; a results file is either one scoring run
(``maskspec.bin.score``: ``{"metrics": {"accuracy": x, ...}}``) or a mean over folds
(``maskspec.bin.aggregate_results``: ``{"num_runs": n, "metrics": {"accuracy": {"mean", "std"}, ...}}``).
The table has a row per model and, per test set, the primary metric (accuracy for single-label, mAP for
multi-label) then mAP and mAUC where they differ from it; for speech recognisers (task type ctc) WER then CER.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from typing import Optional

from maskspec.tasks.metrics import PRIMARY_METRIC
from maskspec.utils.atomic import atomic_open

MODEL_DESCRIPTIONS = {
    "pretrained": "fine-tuned from the pre-trained encoder",
    "scratch": "fine-tuned from a random initialisation (baseline)",
    "linear_probe": "linear head on the frozen pre-trained encoder",
}
EXTRA_METRICS = ("mAP", "mAUC")
# Speech recognisers (maskspec.tasks.ctc_score): word error rate first, then character error rate.
PRIMARY = {**PRIMARY_METRIC, "ctc": "wer"}
EXTRA = {"ctc": ("cer",)}


def read_metrics(path: str) -> tuple[str, dict[str, tuple[Optional[float], Optional[float]]], int]:
    """(task type, {metric: (value or mean, std or None)}, number of runs) of one results file."""
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read results: {e}") from e
    metrics = d.get("metrics") if isinstance(d, dict) else None
    if not isinstance(metrics, dict):
        raise ValueError(f"{path}: no 'metrics' (not written by maskspec.bin.score or aggregate_results)")
    task_type = metrics.get("task_type") or d.get("task_type")
    if task_type not in PRIMARY:
        raise ValueError(f"{path}: unknown task type {task_type!r}")
    out = {}
    for key in (PRIMARY[task_type],) + EXTRA.get(task_type, EXTRA_METRICS):
        v = metrics.get(key)
        if isinstance(v, dict):
            out[key] = (v.get("mean"), v.get("std"))
        else:
            out[key] = (v, None)
    return task_type, out, int(d.get("num_runs", 1))


def fmt(value: Optional[float], std: Optional[float]) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}" if std is None else f"{value:.4f} ± {std:.4f}"


def comparison_markdown(title: str, entries: list[tuple[str, str, str]]) -> str:
    models = list(dict.fromkeys(m for m, _, _ in entries))
    tests = list(dict.fromkeys(t for _, t, _ in entries))
    table, task_types, runs = {}, set(), set()
    for model, test, path in entries:
        task_type, metrics, num_runs = read_metrics(path)
        table[model, test] = metrics
        task_types.add(task_type)
        runs.add(num_runs)
    if len(task_types) > 1:
        raise ValueError(f"the results mix task types {sorted(task_types)}")
    task_type = task_types.pop()
    primary = PRIMARY[task_type]
    columns = [primary] + [k for k in EXTRA.get(task_type, EXTRA_METRICS) if k != primary]
    header = ["model"] + [f"{test} {key}" for test in tests for key in columns]
    lines = [f"## {title}", "",
             f"Written {datetime.datetime.now():%Y-%m-%d %H:%M}. Primary metric: {primary}"
             + (f"; mean ± std over {max(runs)} folds" if max(runs) > 1 else "") + ".", "",
             "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for model in models:
        cells = [f"{model} ({MODEL_DESCRIPTIONS[model]})" if model in MODEL_DESCRIPTIONS else model]
        for test in tests:
            metrics = table.get((model, test))
            cells += [fmt(*metrics[key]) if metrics else "-" for key in columns]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", ("Per-utterance alignments: `<model>/decode_<set>/per_utt`." if task_type == "ctc"
                   else "Per-class results: `<model>/decode_<set>/RESULTS.md`.")]
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--title", required=True, help="heading, usually the experiment directory")
    parser.add_argument("--output", required=True, help="Markdown file to write")
    parser.add_argument("entries", nargs="+", help="<model> <test set> <results.json>, repeated")
    args = parser.parse_args(argv)
    if len(args.entries) % 3:
        parser.error(f"expected <model> <test set> <results.json> triples, got {len(args.entries)} words")
    entries = [tuple(args.entries[i:i + 3]) for i in range(0, len(args.entries), 3)]
    try:
        text = comparison_markdown(args.title, entries)
    except ValueError as e:
        print(f"{sys.argv[0]}: {e}", file=sys.stderr)
        return 1
    with atomic_open(args.output, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
