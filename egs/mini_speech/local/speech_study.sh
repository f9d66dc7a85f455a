#!/usr/bin/env bash
# Does pre-training help speech recognition on the mini speech corpus (issue 22)? Scratch vs pre-trained, 16 x 16
# vs 64 x 4 frame patches, random vs time-span masking, at equal pre-training FLOPs, over 3 seeds; WER and CER.
# Writes exp/speech_study/{results.json,RESULTS.md,wer.png}; with --publish true the table goes into README.md and
# the plot to speech_study.png. See local/speech_study.py --help.
#   local/speech_study.sh [--variants "scratch_frame frame_span"] [--seeds "0 1 2"] [--jobs 2] [--publish true]
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh
export OMP_NUM_THREADS=1  # as run.sh: one thread per job
exec python local/speech_study.py "$@"
