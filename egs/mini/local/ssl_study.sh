#!/usr/bin/env bash
# Pre-training variants of MaskSpec against compute on the mini corpus (issue 14): each variant pre-trained for
# fractions of the full run's pre-training FLOPs, fine-tuned and scored as ./run.sh does, over 3 seeds, with
# the from-scratch baseline. Writes exp/ssl_study/{results.json,RESULTS.md,accuracy_vs_compute.png}; with
# --publish true the table goes into README.md and the plot to ssl_study.png. See local/ssl_study.py --help.
# The default plan takes roughly 45 CPU-minutes of pre-training and 20 of fine-tuning (some two hours of wall time
# on a shared 2-core machine, 2 runs at a time).
#   local/ssl_study.sh [--plan "paper:1,1/3 k4_inverse_block:1/3"] [--seeds "0 1 2"] [--jobs 2] [--publish true]
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh
export OMP_NUM_THREADS=1  # as run.sh: one thread per job
exec python local/ssl_study.py "$@"
