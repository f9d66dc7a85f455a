#!/usr/bin/env bash
# Pre-training variants against compute on the mini corpus (issues 14 and 19): each variant pre-trained for
# fractions of the full run's pre-training FLOPs, fine-tuned and scored as ./run.sh does, over 3 seeds, with
# the from-scratch baseline. Writes exp/ssl_study/{results.json,RESULTS.md,accuracy_vs_compute.png}; with
# --publish true the table goes into README.md and the plot to ssl_study.png. See local/ssl_study.py --help.
# Issue 19's default plan (the bootstrap objective at 1/6, 1/3 and 1x with K = 1, 4, 16 views, the paper's method
# at the same budgets with linear probes, dec32 at 1x) takes roughly 50 CPU-minutes of pre-training and 50 of
# fine-tuning and probing over the 3 seeds (about an hour of wall time on an idle 2-core machine, 2 runs at a time;
# several hours when the cores are shared). Issue 14's plan: --plan "paper:1,1/3,1/6 k4_random:1/3 ...".
#   local/ssl_study.sh [--plan "paper:1,1/3 k4_inverse_block:1/3"] [--seeds "0 1 2"] [--jobs 2] [--publish true]
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh
export OMP_NUM_THREADS=1  # as run.sh: one thread per job
exec python local/ssl_study.py "$@"
