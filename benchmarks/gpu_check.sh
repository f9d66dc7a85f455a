#!/usr/bin/env bash
# Every GPU-only measurement of benchmarks/RESULTS.md in one run, under 9 minutes on one H100/H200:
#   1. pretrain_throughput, base config, bf16, batch 64, eager: MaskSpecModel vs the timm reference MAE
#      (samples/s, peak memory, MFU), plus MaskSpecModel with 4 masked views per clip (clips/s and views/s) and
#      the bootstrap objective with EAT's settings at 1 and 16 views per clip (clips/s with the teacher's pass,
#      views/s, peak memory, MFU)
#   2. the same compiled (torch.compile, inductor)
#   3. one 1-GPU torchrun pre-training run of 8 steps (base config, bf16, batch 64) on generated HDF5 features:
#      the real CLI, DataLoader workers, checkpoint, history.json with its FLOPs record
# Results go to $OUT (if set, else a new temporary folder): one log per step and summary.md with the tables
# to paste into benchmarks/RESULTS.md.
#
# The GPU machine has Python 3.12, torch, h5py, timm, tensorboard and PyYAML but not configargparse, kaldiio,
# soundfile, and no internet. Download their wheels into the git-ignored wheels/ folder of the repository
# first (on a machine with internet), and pass the folder along (the device tool's `carry: ["wheels"]`):
#   pip download -d wheels --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
#       configargparse kaldiio soundfile
# This script installs them with `pip install --no-index` when the folder exists (or $WHEELS names another).
# The repository is used in place (PYTHONPATH), not installed.
#
#   benchmarks/gpu_check.sh             on a GPU machine
#   benchmarks/gpu_check.sh --dry-run   every step on CPU with tiny sizes (aot_eager instead of inductor),
#                                       to check the script itself; about 2 minutes on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

dry_run=false
case "${1:-}" in
  --dry-run) dry_run=true ;;
  "") ;;
  *) echo "usage: $0 [--dry-run]" >&2; exit 2 ;;
esac

if [ -z "${PYTHON:-}" ]; then
  if [ -x tools/venv/bin/python ]; then PYTHON=tools/venv/bin/python; else PYTHON=python3; fi
fi
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}
mkdir -p "$OUT"
export PYTHONPATH=$root${PYTHONPATH:+:$PYTHONPATH}
summary=$OUT/summary.md
: > "$summary"

log() { echo "$(date '+%H:%M:%S') gpu_check: $*" | tee -a "$OUT/gpu_check.log" >&2; }

wheels=${WHEELS:-$root/wheels}
if [ -d "$wheels" ]; then
  log "installing the wheels of $wheels (no index)"
  "$PYTHON" -m pip install --quiet --no-index --find-links "$wheels" configargparse kaldiio soundfile \
    >> "$OUT/pip.log" 2>&1 || { log "pip install from $wheels failed: see $OUT/pip.log"; exit 1; }
fi

# <name> <seconds> <command...>: runs with a time limit, output to $OUT/<name>.txt and into the summary
step() {
  local name=$1 limit=$2 rc=0
  shift 2
  log "$name: $*"
  local t0=$SECONDS
  timeout --signal=TERM --kill-after=10 "$limit" "$@" > "$OUT/$name.txt" 2>&1 || rc=$?
  log "$name: exit $rc after $((SECONDS - t0)) s (limit $limit s)"
  {
    echo "## $name (exit $rc, $((SECONDS - t0)) s)"
    echo
    echo '```'
    echo "$*"
    echo '```'
    grep -E '^(\||device|model FLOPs)' "$OUT/$name.txt" || tail -n 20 "$OUT/$name.txt"
    echo
  } >> "$summary"
  return 0  # a failed step must not stop the later ones; the summary shows its exit status
}

if [ "$dry_run" = true ]; then
  bench=(--device cpu --size tiny --batch_size 2 --steps 1 --warmup 1 --num_frames 32 --compile_backend aot_eager)
  pretrain_conf=egs/TEMPLATE/conf/pretrain_tiny.yaml
  clips=32 frames=160 mel=32 device=cpu batch=8
  limits=(300 300 300)
else
  "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: use --dry-run')"
  bench=(--device cuda --size base --batch_size 64 --steps 20)
  pretrain_conf=egs/audioset/conf/pretrain_base.yaml
  clips=256 frames=1000 mel=128 device=cuda batch=64
  limits=(150 270 100)  # seconds: under 9 minutes together, with the start-up
fi

{
  echo "# gpu_check $(date -u '+%F %T') UTC ($([ "$dry_run" = true ] && echo 'dry run on CPU' || echo GPU))"
  echo
  "$PYTHON" -c "import torch; print('torch', torch.__version__, '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2> /dev/null || true
  echo
} >> "$summary"

step throughput_eager "${limits[0]}" "$PYTHON" benchmarks/pretrain_throughput.py "${bench[@]}" --num_masks 1 4 \
  --bootstrap_masks 1 16
step throughput_compiled "${limits[1]}" "$PYTHON" benchmarks/pretrain_throughput.py "${bench[@]}" --num_masks 1 4 \
  --compile

# generated features (HDF5: h5py is on the GPU machine), then one torchrun process through the real CLI
data=$OUT/torchrun_data
"$PYTHON" - "$data" "$clips" "$frames" "$mel" <<'EOF'
import json, os, sys
import numpy as np
from maskspec.data.feats import FeatWriter

out, clips, frames, mel = sys.argv[1], *map(int, sys.argv[2:])
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
with FeatWriter(os.path.join(out, "feats"), "hdf5", "float16") as w:
    for i in range(clips):
        w.write(f"clip{i:04d}", rng.standard_normal((frames, mel)).astype(np.float32))
stats = dict(num_utts=clips, num_frames=clips * frames, mean=[0.0] * mel, std=[1.0] * mel, global_mean=0.0,
             global_std=1.0)
with open(os.path.join(out, "stats.json"), "w") as f:
    json.dump(stats, f)
EOF
step torchrun_step "${limits[2]}" "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node 1 \
  -m maskspec.bin.pretrain --config "$pretrain_conf" --train_data "$data" --valid_data "$data" \
  --exp_dir "$OUT/torchrun_exp" --device "$device" --effective_batch_size "$batch" --batch_size "$batch" --max_steps 8 \
  --num_workers 2 --log_interval 1 --num_images 1
if [ -f "$OUT/torchrun_exp/history.json" ]; then
  "$PYTHON" -c "import json, sys; h = json.load(open(sys.argv[1]))[-1]; print('torchrun_step history:', {k: h[k] for k in ('step', 'train_loss', 'train_flops', 'flops_per_step', 'train_seconds', 'device_seconds')})" \
    "$OUT/torchrun_exp/history.json" | tee -a "$summary"
  grep -E 'samples/s' "$OUT/torchrun_exp/train.log" | tail -n 3 >> "$summary" || true
fi
log "done in $SECONDS s; results in $OUT (summary: $summary)"
