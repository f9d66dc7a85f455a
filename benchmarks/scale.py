#!/usr/bin/env python3
"""Does the AudioSet recipe work at AS-2M size? Time and memory of every per-clip step at N clips.

e.g.: nice -n 10 python benchmarks/scale.py --sizes 20000 200000 2000000 --work /tmp/scale --markdown RESULTS.part

For each N this writes an AudioSet-shaped corpus without real audio (``write_corpus``):

* ``csv/``: ``class_labels_indices.csv`` (527 classes) and the three segment CSVs with their ``#`` header lines
  and quoted label lists (unbalanced: N x 2,041,789 / 2,000,000 rows; balanced and eval in AudioSet's
  proportions), plus placeholder audio under three ``--audio_dirs`` in three naming schemes: hard links to one
  0.1 s wav (so 2M files cost directory entries, not data), 3 % of the segments left without audio;
* ``egs/audioset/``: a recipe folder (TEMPLATE's maskspec.sh, utils) with ``data/train`` (N clips: wav.scp, utt2label
  with AudioSet's skew: 1-5 labels per clip, class frequencies Zipf-like from ~50 % of the clips down to ~0.01 %,
  labels.txt, utt2dur) and ``data/eval`` (20k clips), and a complete feature set ``dump/fbank/src`` whose
  feats.scp points every clip into four small arks of the feature pool (64 distinct matrices each).

and then measures, each in its own process (``--probe``), the real code paths:

* stage 1-2 tools: validate (with and without feats), fix, subset, combine, split into 64 jobs, stage 2's
  space check, make_fbank.sh with every clip's features reused from ``src``, compute_stats on a 10k sample,
  the AudioSet reader on the CSVs, and stage 2 of maskspec.sh twice (first run: the space check, copies,
  reuse matching, validation, ``.done`` checksums, pool pruning, compute_stats; rerun: all complete,
  checksums and feature-file checks only);
* one pre-training rank (FeatDataset + shuffle sampler) and one fine-tuning rank (FeatDataset with labels, task
  type, class-balanced weights and sampler, as ``maskspec.tasks.finetune`` builds them): seconds, resident and
  peak memory over the process's own start (VmRSS, VmHWM);
* four forked DataLoader workers over one full pass of the fine-tuning set: their growth in resident and
  private (copied-on-write) memory from the first batch to the end (``/proc/<pid>/smaps_rollup``). Items go
  through FeatDataset.__getitem__ and collate; only the ark read is replaced by a fixed [20, 128] matrix
  (crop 16 frames) so the pass measures the per-clip bookkeeping, not disk speed.
* stage 5's scoring arithmetic on a 20k x 527 eval set (FeatDataset targets, metrics of random scores).

The table ends with the 2M/200k ratio of each row when both sizes ran (10 = linear).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
NUM_CLASSES = 527
AS_UNBALANCED, AS_BALANCED, AS_EVAL = 2_041_789, 22_160, 20_371
EVAL_CLIPS = 20_000
POOL_ARKS, MATS_PER_ARK, FRAMES, MEL = 4, 64, 20, 128
MISSING_AUDIO = 0.03


# --------------------------------------------------------------------------------------------------------------
# memory of this process

def proc_status(pid: str | int = "self") -> dict[str, int]:
    """VmRSS / VmHWM of a process in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def smaps_rollup(pid: int) -> dict[str, int]:
    """Rss, Pss and Private (clean + dirty) of a process in bytes."""
    out = {"Rss": 0, "Pss": 0, "Private": 0}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Rss", "Pss"):
                out[key] = int(value.split()[0]) * 1024
            elif key in ("Private_Clean", "Private_Dirty"):
                out["Private"] += int(value.split()[0]) * 1024
    return out


# --------------------------------------------------------------------------------------------------------------
# the corpus

def class_probabilities(num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Zipf-like class frequencies: AudioSet's Speech and Music are on about half of the clips, its rarest
    classes on a few dozen of 2M."""
    p = 1.0 / np.arange(1, num_classes + 1) ** 1.3
    return p / p.sum()


def draw_labels(n: int, seed: int) -> list[np.ndarray]:
    """Sorted distinct class indices of each clip: 1-5 labels, skewed classes."""
    rng = np.random.default_rng(seed)
    k = rng.choice(5, size=n, p=[0.35, 0.3, 0.2, 0.1, 0.05]) + 1
    cand = rng.choice(NUM_CLASSES, size=(n, 10), p=class_probabilities())
    # keep the first k distinct draws of each row
    dup = np.zeros(cand.shape, bool)
    for j in range(1, cand.shape[1]):
        dup[:, j] = (cand[:, :j] == cand[:, j:j + 1]).any(axis=1)
    keep = ~dup & (np.cumsum(~dup, axis=1) <= k[:, None])
    rows = np.where(keep, cand, NUM_CLASSES)
    rows.sort(axis=1)
    counts = keep.sum(axis=1)
    return [r[:c] for r, c in zip(rows, counts)]


def ytids(n: int, offset: int) -> list[str]:
    """11-character YouTube-like ids (some start with '-', as real ones do)."""
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
    rng = np.random.default_rng(offset)
    chars = alphabet[rng.integers(0, 64, size=(n, 7))]
    return [f"{''.join(c)}{i + offset:04x}"[-11:].rjust(11, "x") for i, c in enumerate(chars)]


def write_lines(path: str, lines) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{line}\n" for line in lines)


def class_names() -> list[tuple[str, str]]:
    """(mid, display name) of 527 classes; names with spaces and commas like AudioSet's."""
    return [(f"/m/{i:05x}x", f"Sound class {i}, kind {i % 7}") for i in range(NUM_CLASSES)]


def write_csvs(root: str, n: int, seed: int) -> dict[str, int]:
    """The AudioSet segment CSVs for an AS-2M of ``n`` clips, and placeholder audio; returns counts."""
    os.makedirs(root, exist_ok=True)
    names = class_names()
    write_lines(os.path.join(root, "class_labels_indices.csv"),
                ["index,mid,display_name"] + [f'{i},{mid},"{name}"' for i, (mid, name) in enumerate(names)])
    sizes = {"unbalanced_train": round(n * AS_UNBALANCED / 2_000_000), "balanced_train": round(n * AS_BALANCED / 2_000_000),
             "eval": round(n * AS_EVAL / 2_000_000)}
    import soundfile
    templates = []
    dirs = [os.path.join(root, f"audio{i}") for i in range(3)]
    rng = np.random.default_rng(seed + 7)
    on_disk = 0
    offset = 0
    for s, (name, count) in enumerate(sizes.items()):
        ids = ytids(count, offset)
        labels = draw_labels(count, seed + 11 + s)
        header = [f"# Segments csv created Sun Mar  5 10:54:25 2017", f"# num_ytids={count}, num_segs={count}, "
                  f"num_unique_labels={NUM_CLASSES}, num_positive_labels=0", "# YTID, start_seconds, end_seconds, "
                  "positive_labels"]
        rows = (f'{y}, 30.000, 40.000, "{",".join(names[c][0] for c in lab)}"' for y, lab in zip(ids, labels))
        write_lines(os.path.join(root, f"{name}_segments.csv"), header + list(rows))
        present = rng.random(count) >= MISSING_AUDIO
        scheme = rng.integers(0, 3, size=count)
        for i in np.flatnonzero(present):
            d = int(scheme[i])
            stem = (f"Y{ids[i]}", f"{ids[i]}_30.000", ids[i])[d]
            sub = os.path.join(dirs[d], f"{(offset + i) // 1000:05d}")
            if (offset + i) % 1000 == 0 or not os.path.isdir(sub):
                os.makedirs(sub, exist_ok=True)
            if on_disk % 50_000 == 0:  # a file system allows some 65,000 links to one file
                templates.append(os.path.join(root, f"placeholder{len(templates)}.wav"))
                soundfile.write(templates[-1], np.zeros(1600, np.float32), 16000)
            os.link(templates[-1], os.path.join(sub, f"{stem}.wav"))
            on_disk += 1
        offset += count + 1_000_000
    return dict(sizes, audio_on_disk=on_disk)


def write_arks(pool: str) -> list[list[str]]:
    """POOL_ARKS arks of MATS_PER_ARK small matrices; returns their feats.scp values."""
    from maskspec.data.feats import FeatWriter
    os.makedirs(pool, exist_ok=True)
    rng = np.random.default_rng(0)
    values = []
    for a in range(POOL_ARKS):
        prefix = os.path.join(pool, f"raw_fbank_src.{a + 1}")
        with FeatWriter(prefix, "ark", "float16") as w:
            for m in range(MATS_PER_ARK):
                w.write(f"m{m:03d}", rng.normal(size=(FRAMES, MEL)).astype(np.float32))
        with open(prefix + ".scp") as f:
            values.append([line.split(maxsplit=1)[1].strip() for line in f])
        os.remove(prefix + ".scp")
    return values


def write_recipe(work: str, n: int, seed: int) -> str:
    """The recipe folder with data/train (n clips), data/eval and a complete feature set dump/fbank/src."""
    rdir = os.path.join(work, "egs", "audioset")
    os.makedirs(os.path.join(rdir, "conf"), exist_ok=True)
    for name in ("tools", "utils"):  # path.sh finds the repository two levels above the recipe
        os.symlink(os.path.join(REPO, name), os.path.join(work, name))
    for name in ("maskspec.sh", "path.sh", "db.sh"):
        os.symlink(os.path.join(REPO, "egs", "TEMPLATE", name), os.path.join(rdir, name))
    os.symlink(os.path.join(REPO, "utils"), os.path.join(rdir, "utils"))
    shutil.copy(os.path.join(REPO, "egs", "audioset", "conf", "fbank.yaml"), os.path.join(rdir, "conf", "fbank.yaml"))
    write_lines(os.path.join(rdir, "cmd.sh"), ['export train_cmd="run.pl"', 'export cuda_cmd="run.pl"',
                                               'export decode_cmd="run.pl"'])
    pool = os.path.join(rdir, "dump", "fbank_pool")
    arks = write_arks(pool)
    names = [f"Sound_class_{i}_kind_{i % 7}" for i in range(NUM_CLASSES)]
    src = os.path.join(rdir, "dump", "fbank", "src")
    os.makedirs(src)
    body = os.path.join(src, "fbank.yaml.body")
    subprocess.run([PYTHON, "-m", "maskspec.bin.compute_fbank", "--config", os.path.join(rdir, "conf", "fbank.yaml"),
                    "--write_config", body], check=True, capture_output=True, cwd=REPO)
    with open(body) as f_in, open(os.path.join(src, "fbank.yaml"), "w") as f:
        f.write("# written by make_fbank.sh: filetype=ark dtype=float16\n" + f_in.read())
    os.remove(body)
    for dset, count, off in (("train", n, 0), ("eval", EVAL_CLIPS, 50_000_000)):
        ddir = os.path.join(rdir, "data", dset)
        os.makedirs(ddir)
        utts = sorted(f"Y{y}" for y in ytids(count, off))
        labels = draw_labels(count, seed + off)
        write_lines(os.path.join(ddir, "labels.txt"), names)
        write_lines(os.path.join(ddir, "wav.scp"), (f"{u} /corpora/audioset/audio/{u}.flac" for u in utts))
        write_lines(os.path.join(ddir, "utt2label"), (f"{u} {','.join(names[c] for c in lab)}"
                                                      for u, lab in zip(utts, labels)))
        write_lines(os.path.join(ddir, "utt2dur"), (f"{u} 10.000" for u in utts))
        mode = "a" if dset == "eval" else "w"
        for fname, val in (("wav.scp", lambda i, u: f"/corpora/audioset/audio/{u}.flac"),
                           ("feats.scp", lambda i, u: arks[i % POOL_ARKS][(i // POOL_ARKS) % MATS_PER_ARK]),
                           ("utt2num_frames", lambda i, u: str(FRAMES)), ("utt2dur", lambda i, u: "10.000")):
            with open(os.path.join(src, fname), mode, encoding="utf-8") as f:
                f.writelines(f"{u} {val(i, u)}\n" for i, u in enumerate(utts))
    for fname in ("wav.scp", "feats.scp", "utt2num_frames", "utt2dur"):
        path = os.path.join(src, fname)
        subprocess.run(f"LC_ALL=C sort -o {path} {path}", shell=True, check=True)
    with open(os.path.join(src, ".done"), "w") as f:
        f.write("complete\n")
    return rdir


# --------------------------------------------------------------------------------------------------------------
# probes: run in a fresh process, print one JSON line

def _finetune_args(data: str):
    return argparse.Namespace(balanced_sampling=True, samples_per_epoch=200_000, seed=0, train_data=data)


def _dist(world_size: int = 8):
    from maskspec.train.distributed import DistInfo
    import torch
    return DistInfo(rank=0, local_rank=0, world_size=world_size, device=torch.device("cpu"))


def _finetune_rank(data: str):
    """What maskspec.tasks.finetune builds for one rank before the model: labelled set, task type, sampler."""
    from maskspec.data.dataset import FeatDataset
    from maskspec.tasks.classification import infer_task_type
    from maskspec.tasks.finetune import build_sampler
    ds = FeatDataset(data, 16, None, "none", crop="random", seed=0, with_labels=True)
    if hasattr(ds, "labels"):
        task_type = infer_task_type(ds.labels)
    else:  # the code before packed labels (run from an older checkout to compare)
        task_type = infer_task_type(ds.targets, ds.known is not None)
    sampler = build_sampler(_finetune_args(data), ds, _dist())
    return ds, task_type, sampler


def probe_pretrain_rank(data: str) -> dict:
    from maskspec.data.dataset import FeatDataset
    from maskspec.train.distributed import DistributedShuffleSampler
    before = proc_status()
    start = time.perf_counter()
    ds = FeatDataset(data, 16, None, "none", crop="random", seed=0)
    sampler = DistributedShuffleSampler(len(ds), seed=0, rank=0, world_size=8, shuffle=True)
    first = next(iter(sampler))
    seconds = time.perf_counter() - start
    after = proc_status()
    return dict(seconds=seconds, rss=after["VmRSS"] - before["VmRSS"], peak=after["VmHWM"] - before["VmRSS"],
                clips=len(ds), first=int(first))


def probe_finetune_rank(data: str) -> dict:
    import maskspec.tasks.finetune  # noqa: F401  (imports are not the data's memory)
    import maskspec.tasks.classification  # noqa: F401
    before = proc_status()
    start = time.perf_counter()
    ds, task_type, sampler = _finetune_rank(data)
    first = next(iter(sampler))
    seconds = time.perf_counter() - start
    after = proc_status()
    return dict(seconds=seconds, rss=after["VmRSS"] - before["VmRSS"], peak=after["VmHWM"] - before["VmRSS"],
                clips=len(ds), task_type=task_type, first=int(first))


def probe_workers(data: str, num_workers: int = 4, batch_size: int = 256) -> dict:
    import torch
    import maskspec.data.dataset as dataset_module
    from maskspec.data.dataset import collate
    fixed = np.random.default_rng(0).normal(size=(FRAMES, MEL)).astype(np.float32)
    fixed.flags.writeable = False
    dataset_module.load_feat = lambda spec: fixed  # the one step skipped: the ark read
    ds, _, _ = _finetune_rank(data)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=num_workers, collate_fn=collate,
                                         persistent_workers=True, shuffle=False)
    start = time.perf_counter()
    it = iter(loader)
    batch = next(it)
    pids = [w.pid for w in it._workers]
    first = [smaps_rollup(p) for p in pids]
    seen = batch["feats"].shape[0]
    positives = float(batch["target"].sum())
    for batch in it:
        seen += batch["feats"].shape[0]
        positives += float(batch["target"].sum())
    last = [smaps_rollup(p) for p in pids]
    seconds = time.perf_counter() - start
    growth_rss = [b["Rss"] - a["Rss"] for a, b in zip(first, last)]
    growth_private = [b["Private"] - a["Private"] for a, b in zip(first, last)]
    return dict(seconds=seconds, clips=seen, positives=positives, workers=num_workers,
                max_growth_rss=max(growth_rss), max_growth_private=max(growth_private),
                growth_rss=growth_rss, growth_private=growth_private)


def probe_score(data: str) -> dict:
    """Stage 5 without the model: labelled eval set, dense targets for the metrics, metrics of random scores."""
    from maskspec.data.dataset import FeatDataset
    from maskspec.tasks.metrics import compute_metrics
    import sklearn.metrics  # noqa: F401  (imports are not the data's memory)
    before = proc_status()
    start = time.perf_counter()
    ds = FeatDataset(data, None, None, "none", crop="none", with_labels=True)
    if hasattr(ds, "labels"):
        targets, known = ds.labels.targets(), None
    else:  # the dense per-clip arrays of the code before packed labels (run from an older checkout to compare)
        targets = np.stack(ds.targets)
        known = np.stack(ds.known) if ds.known is not None else None
    scores = np.random.default_rng(0).random(targets.shape, dtype=np.float32)
    metrics = compute_metrics(scores, targets, known, "multi_label", ds.classes)
    seconds = time.perf_counter() - start
    after = proc_status()
    return dict(seconds=seconds, rss=after["VmRSS"] - before["VmRSS"], peak=after["VmHWM"] - before["VmRSS"],
                clips=len(ds), mAP=float(metrics["mAP"]))


PROBES = dict(pretrain_rank=probe_pretrain_rank, finetune_rank=probe_finetune_rank, workers=probe_workers,
              score=probe_score)


def run_probe(name: str, data: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([PYTHON, os.path.abspath(__file__), "--probe", name, "--data", data], env=env, cwd=REPO,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"probe {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_tool(cmd: str, cwd: str) -> dict:
    """Wall seconds and the peak resident memory of the largest process of a shell command (GNU time)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PATH=os.path.dirname(PYTHON) + os.pathsep + os.environ["PATH"])
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M", "bash", "-c", cmd], cwd=cwd, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    peak = [int(line.split()[1]) * 1024 for line in proc.stderr.splitlines() if line.startswith("MAXRSS ")][-1]
    return dict(seconds=seconds, peak=peak)


# --------------------------------------------------------------------------------------------------------------

def stage2_cmd(extra: str = "") -> str:
    return (". ./path.sh && ./maskspec.sh --stage 2 --stop_stage 2 --pretrain_set train --pretrain_valid_set eval "
            "--train_set train --valid_set eval --test_sets eval --feats_dtype float16 --nj 64 "
            f"--fbank_config conf/fbank.yaml {extra}")


def measure(n: int, work: str, seed: int, only: list[str] | None) -> dict[str, dict]:
    rows: dict[str, dict] = {}

    def want(name: str) -> bool:
        return not only or any(name.startswith(o) for o in only)

    t = time.perf_counter()
    rdir = write_recipe(work, n, seed)
    csv_counts = write_csvs(os.path.join(work, "csv"), n, seed) if want("audioset") else {}
    print(f"[N={n}] corpus written in {time.perf_counter() - t:.0f} s ({csv_counts})", file=sys.stderr, flush=True)
    train = "data/train"
    # (name, untimed set-up, timed command), run in the recipe folder
    tools = [
        ("validate --no-feats", "", f"utils/validate_data_dir.sh --no-feats {train}"),
        ("fix_data_dir", f"mkdir -p scratch && cp -r {train} scratch/fix", "utils/fix_data_dir.sh scratch/fix"),
        ("subset --random N/2", "", f"utils/subset_data_dir.sh --random {n // 2} {train} scratch/half"),
        ("combine (N/2 + eval)", "", "utils/combine_data.sh scratch/comb scratch/half data/eval"),
        ("split_scp --nj 64", "mkdir -p scratch/split", f"utils/split_scp.pl {train}/wav.scp "
         + " ".join(f"scratch/split/wav.{j}" for j in range(1, 65))),
        # exit 1 (too little space) is an answer here: the corpus's durations are AudioSet's, its disk is not
        ("feats_space (all clips)", "", f"{PYTHON} -m maskspec.bin.feats_space --fbank_config conf/fbank.yaml "
         f"--dtype float16 --dir dump/fbank_pool {train} data/eval || [ $? -eq 1 ]"),
        ("make_fbank.sh, all reused", f"mkdir -p scratch && cp -r {train} scratch/mf", "utils/make_fbank.sh --nj 64 --fbank_config "
         "conf/fbank.yaml --dtype float16 --name mf --reuse_from dump/fbank/src scratch/mf scratch/mf/log "
         "dump/fbank_pool"),
        ("validate (feats)", "", "utils/validate_data_dir.sh scratch/mf"),
        ("compute_stats --max_utts 10000", "", f"{PYTHON} -m maskspec.bin.compute_stats --data_dir scratch/mf "
         "--max_utts 10000"),
        ("stage 2, features reused", "", stage2_cmd()),
        ("stage 2 rerun (complete)", "", stage2_cmd()),
    ]
    for name, setup, cmd in tools:
        if want(name.split()[0]):
            if setup:
                subprocess.run(setup, shell=True, check=True, cwd=rdir)
            rows[name] = run_tool(cmd, rdir)
            print(f"[N={n}] {name}: {rows[name]}", file=sys.stderr, flush=True)
    if want("audioset"):
        root = os.path.join(work, "csv")
        rows["audioset reader"] = run_tool(
            f"{PYTHON} -m maskspec.data.corpora.audioset --db_root {root} --out_dir {work}/as_data --nj 4 "
            f"--audio_dirs {root}/audio0 {root}/audio1 {root}/audio2", REPO)
        rows["audioset reader"]["note"] = f"{csv_counts['audio_on_disk']} files on disk"
        print(f"[N={n}] audioset reader: {rows['audioset reader']}", file=sys.stderr, flush=True)
    for name in ("pretrain_rank", "finetune_rank", "workers"):
        if want(name):
            # the training set with features: make_fbank's copy, or stage 2's when only that ran
            data = next(d for d in (os.path.join(rdir, "scratch", "mf"), os.path.join(rdir, "dump", "fbank", "train"))
                        if os.path.isfile(os.path.join(d, "feats.scp")))
            rows[name] = run_probe(name, data)
            print(f"[N={n}] {name}: {rows[name]}", file=sys.stderr, flush=True)
    if want("score"):
        rows["score"] = run_probe("score", os.path.join(rdir, "dump", "fbank", "eval"))
        print(f"[N={n}] score: {rows['score']}", file=sys.stderr, flush=True)
    return rows


def fmt_bytes(b: float | None) -> str:
    return "" if b is None else f"{b / 2**20:,.0f} MB" if b < 2**30 else f"{b / 2**30:.2f} GB"


def table(results: dict[int, dict[str, dict]]) -> str:
    sizes = sorted(results)
    names = list(dict.fromkeys(k for r in results.values() for k in r))
    head = "| step | " + " | ".join(f"N={n:,}" for n in sizes) + (" | 2M/200k |" if {200_000, 2_000_000} <= set(sizes) else " |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name in names:
        cells, ratio = [], ""
        for n in sizes:
            r = results[n].get(name)
            if r is None:
                cells.append("")
                continue
            parts = [f"{r['seconds']:.1f} s"]
            if "rss" in r:
                parts.append(f"resident +{fmt_bytes(r['rss'])}")
            if "peak" in r:
                parts.append(f"peak {'+' if 'rss' in r else ''}{fmt_bytes(r['peak'])}")
            if "max_growth_private" in r:
                parts.append(f"worker growth: private {fmt_bytes(r['max_growth_private'])}, "
                             f"resident {fmt_bytes(r['max_growth_rss'])}")
            cells.append(", ".join(parts))
        a, b = results.get(200_000, {}).get(name), results.get(2_000_000, {}).get(name)
        if a and b:
            ratio = f"{b['seconds'] / max(a['seconds'], 1e-9):.1f}x time"
            key = "rss" if "rss" in a else "peak" if "peak" in a else None
            if key and a[key] > 0:
                ratio += f", {b[key] / a[key]:.1f}x {'resident' if key == 'rss' else 'peak'}"
        lines.append(f"| {name} | " + " | ".join(cells) + (f" | {ratio} |" if head.endswith("200k |") else " |"))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--work", default="/tmp/maskspec_scale", help="scratch folder (one sub-folder per N)")
    parser.add_argument("--only", nargs="*", help="measure only the steps whose names start with these words")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folders")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--json", help="also write the raw figures to this file")
    parser.add_argument("--probe", choices=sorted(PROBES), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(PROBES[args.probe](args.data)))
        return 0
    results = {}
    for n in args.sizes:
        work = os.path.join(args.work, f"n{n}")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        try:
            results[n] = measure(n, work, args.seed, args.only)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    header = (f"scale: AudioSet-shaped data directories, {NUM_CLASSES} classes; {platform.machine()}, "
              f"{os.cpu_count()} cores, python {platform.python_version()}")
    text = header + "\n\n" + table(results) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({str(k): v for k, v in results.items()}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
