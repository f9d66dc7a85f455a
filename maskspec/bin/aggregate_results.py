"""Mean ± standard deviation of scoring results over folds or runs (e.g. ESC-50's five folds).

e.g.: python -m maskspec.bin.aggregate_results --output exp/esc50/results_5fold.json \\
          exp/esc50_fold{1,2,3,4,5}/decode_test/results.json

Writes the JSON summary to --output and a Markdown table beside it (same name, .md). The standard deviation is
the sample one (n - 1), the usual figure for k-fold cross-validation; it is 0 for a single run.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from typing import Optional, Sequence

from maskspec.utils.atomic import atomic_open
from maskspec.utils.jsonfile import read_json

PROG = "aggregate_results.py"
METRICS = ("accuracy", "mAP", "mAUC", "d_prime")
logger = logging.getLogger("maskspec.aggregate")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", help="results.json files written by maskspec.bin.score")
    p.add_argument("--output", required=True, help="summary JSON; the Markdown goes beside it with .md")
    p.add_argument("--names", nargs="+", default=None, help="a name per results file (default: <tag>/<decode folder>)")
    p.add_argument("--title", default="Results", help="heading of the Markdown file")
    return p


def read_results(path: str) -> dict:
    d = read_json(path, "results")
    if not isinstance(d, dict) or not isinstance(d.get("metrics"), dict):
        raise ValueError(f"{path}: not a results.json of maskspec.bin.score (no 'metrics')")
    return d


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std


def aggregate(paths: Sequence[str], names: Sequence[str]) -> dict:
    """{num_runs, runs: [{name, path, metrics}], metrics: {name: {mean, std, values}}} over the metrics every
    run has (a metric missing or undefined in some run is left out, with a warning)."""
    runs = []
    for name, path in zip(names, paths):
        m = read_results(path)["metrics"]
        runs.append(dict(name=name, path=path, metrics={k: m.get(k) for k in METRICS if k in m}))
    summary = {}
    for key in METRICS:
        values = [r["metrics"].get(key) for r in runs]
        if all(v is None for v in values):
            continue
        if any(v is None for v in values):
            logger.warning("%s is missing or undefined in some runs; left out of the summary", key)
            continue
        mean, std = mean_std([float(v) for v in values])
        summary[key] = dict(mean=mean, std=std, values=[float(v) for v in values])
    if not summary:
        raise ValueError("no metric is defined in every results file")
    task_types = {read_results(p)["metrics"].get("task_type") for p in paths}
    if len(task_types) > 1:
        raise ValueError(f"results mix task types {sorted(map(str, task_types))}")
    return dict(num_runs=len(runs), task_type=task_types.pop(), runs=runs, metrics=summary)


def summary_markdown(summary: dict, title: str) -> str:
    keys = list(summary["metrics"])
    lines = [f"# {title}", "", "| run | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for i, run in enumerate(summary["runs"]):
        lines.append(f"| {run['name']} | " + " | ".join(f"{summary['metrics'][k]['values'][i]:.4f}" for k in keys)
                     + " |")
    lines.append(f"| **mean ± std ({summary['num_runs']} runs)** | "
                 + " | ".join(f"**{summary['metrics'][k]['mean']:.4f} ± {summary['metrics'][k]['std']:.4f}**"
                              for k in keys) + " |")
    return "\n".join(lines) + "\n"


def markdown_path(output: str) -> str:
    return (output[:-5] if output.endswith(".json") else output) + ".md"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=f"%(asctime)s {PROG} %(levelname)s: %(message)s")
    # exp/<tag>/decode_<set>/results.json -> "<tag>/decode_<set>": the decode folder alone repeats over folds
    names = args.names or [os.path.join(*os.path.abspath(p).split(os.sep)[-3:-1]) for p in args.results]
    if len(names) != len(args.results):
        logger.error("--names gives %d names for %d results files", len(names), len(args.results))
        return 2
    try:
        summary = aggregate(args.results, names)
    except ValueError as e:
        logger.error("%s", e)
        return 1
    with atomic_open(args.output, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, allow_nan=False)
        f.write("\n")
    with atomic_open(markdown_path(args.output), "w", encoding="utf-8") as f:
        f.write(summary_markdown(summary, args.title))
    for key, s in summary["metrics"].items():
        logger.info("%s: %.4f ± %.4f over %d runs", key, s["mean"], s["std"], summary["num_runs"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
