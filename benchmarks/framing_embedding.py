"""How much the encoder's clip embedding changes between the MaskSpec authors' spectrogram framing and ours.

e.g.: python benchmarks/framing_embedding.py --num_clips 8
      python benchmarks/framing_embedding.py --model maskspec_as2m.pt     # an imported model file

The authors compute features on the fly (github WangHelin1997/MaskSpec, models/models_mae.py, AugmentMelSTFT, in
eval mode): pre-emphasis over the whole waveform, a centred STFT (reflect padding, frame k centred on sample
320 k), Kaldi mel banks, log(x + 1e-5). Ours are Kaldi fbank frames with egs/TEMPLATE/conf/fbank_paper.yaml: the
same window, banks and log, but frame k starts at sample 320 k (centred 400 samples = 1.25 frames later) and
pre-emphasis runs inside each frame. Both are standardised with the same per-bin statistics (the model file's,
or those of our features of these clips) and cropped to the model's frames.

Printed per clip, cosine similarity of the clip embeddings (the classifier's pooled vector; the mean of the patch
tokens for a pre-training model) between:
  theirs   their framing vs ours;
  aligned  their framing with its first frame dropped (0.25 frame off instead of 1.25) vs ours;
  shift    baseline measured in the same run: ours vs ours on the audio delayed by one hop (10 ms);
  other    baseline: ours vs ours of the next clip (what a different sound gives).
Without --model the encoder is a ViT-Base with random weights (seed 0): the published weights cannot be
fetched here, so that figure bounds what framing does to a network that has not learnt to ignore it.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio

from maskspec.data.synth import background, band_noise, envelope, harmonics
from maskspec.features.fbank import FbankConfig, compute_fbank
from maskspec.features.normalize import normalize

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR, HOP, WIN, NFFT = 32000, 320, 800, 1024


def make_clip(seed: int, seconds: float) -> np.ndarray:
    """A few harmonic events with envelopes, band noise bursts and a tilted background: [N] float32 at 32 kHz."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    x = 0.02 * background(n, SR, rng)
    for _ in range(4):
        start, length = int(rng.uniform(0, 0.8) * n), int(rng.uniform(0.3, 2.0) * SR)
        seg = slice(start, min(n, start + length))
        m = seg.stop - seg.start
        f0 = rng.uniform(80, 1200) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.5, 4) * t[:m]))
        x[seg] += 0.2 * envelope(m, SR, rng) * harmonics(f0, t[:m], SR, [1, 0.6, 0.4, 0.3, 0.2], rng, 15000)
    for _ in range(3):
        start, m = int(rng.uniform(0, 0.9) * n), int(rng.uniform(0.1, 0.6) * SR)
        m = min(m, n - start)
        lo = rng.uniform(200, 6000)
        x[start:start + m] += 0.05 * envelope(m, SR, rng) * band_noise(m, SR, lo, lo * 2, rng)
    return x.astype(np.float32)


def their_logmel(wave: np.ndarray) -> np.ndarray:
    """The authors' eval-mode front end before their (x + 4.5) / 5 rescaling: [frames, 128] log-mel."""
    x = torch.from_numpy(wave)[None, None]
    x = F.conv1d(x, torch.tensor([[[-0.97, 1.0]]])).squeeze(1)  # pre-emphasis over the whole waveform
    spec = torch.stft(x, NFFT, hop_length=HOP, win_length=WIN, window=torch.hann_window(WIN, periodic=False),
                      center=True, normalized=False, return_complex=True).abs() ** 2
    banks, _ = torchaudio.compliance.kaldi.get_mel_banks(128, NFFT, SR, 0.0, 15000.0, 100.0, -500.0, 1.0)
    banks = F.pad(banks, (0, 1))
    return torch.log(banks @ spec[0] + 1e-5).T.numpy()


def load_network(path):
    """(callable [B, T, F] -> [B, D] embeddings, stats or None, num_frames)."""
    from maskspec.models.classifier import AudioClassifier
    from maskspec.models.configs import model_config

    if path is None:
        torch.manual_seed(0)
        net = AudioClassifier(model_config("base"), 527).eval()
        return net.embed, None, 992
    from maskspec.models.model_file import build_model, load_model_file

    mf = load_model_file(path)
    net = build_model(mf)
    if mf["kind"] == "classifier":
        return net.embed, (mf["stats"], mf["normalize"]), mf["num_frames"]
    return (lambda x: net.encoder(x)[0][:, 1:].mean(dim=1)), (mf["stats"], mf["normalize"]), mf["num_frames"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num_clips", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--model", default=None, help="model file (default: ViT-Base, random weights)")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    cfg = FbankConfig.from_yaml(os.path.join(REPO, "egs", "TEMPLATE", "conf", "fbank_paper.yaml"))
    embed, norm, num_frames = load_network(args.model)
    clips = [make_clip(i, args.seconds) for i in range(args.num_clips)]
    delayed = [np.concatenate([np.zeros(HOP, np.float32), c[:-HOP]]) for c in clips]
    ours = [compute_fbank(c, SR, cfg) for c in clips]
    ours_delayed = [compute_fbank(c, SR, cfg) for c in delayed]
    theirs = [their_logmel(c) for c in clips]
    if norm is None:
        allf = np.concatenate(ours)
        stats = dict(mean=allf.mean(0).tolist(), std=allf.std(0).tolist(), global_mean=float(allf.mean()),
                     global_std=float(allf.std()))
        norm = (stats, "per_bin")

    def emb(feats):
        x = np.stack([f[:num_frames] for f in feats])
        with torch.no_grad():
            return embed(torch.from_numpy(np.asarray(normalize(x, *norm), dtype=np.float32)))

    e_ours, e_theirs = emb(ours), emb(theirs)
    e_aligned, e_shift = emb([t[1:] for t in theirs]), emb(ours_delayed)
    e_other = torch.roll(e_ours, 1, dims=0)
    cos = {name: F.cosine_similarity(e_ours, e, dim=1).numpy()
           for name, e in (("theirs", e_theirs), ("aligned", e_aligned), ("shift", e_shift), ("other", e_other))}
    diff = [np.abs(normalize(t[1:1 + len(o)], *norm) - normalize(o[:len(t) - 1], *norm)).mean()
            for t, o in zip(theirs, ours)]
    print(f"framing_embedding: {args.num_clips} clips x {args.seconds:g} s, 32 kHz, {num_frames} frames; model "
          f"{args.model or 'ViT-Base, random weights (seed 0)'}; {platform.machine()}, torch {torch.__version__}")
    print(f"frames per clip: ours {len(ours[0])}, theirs {len(theirs[0])}")
    print("\n| clip | theirs | aligned | shift (10 ms, baseline) | other clip (baseline) |\n|---|---|---|---|---|")
    for i in range(args.num_clips):
        print(f"| {i} | {cos['theirs'][i]:.4f} | {cos['aligned'][i]:.4f} | {cos['shift'][i]:.4f} | "
              f"{cos['other'][i]:.4f} |")
    print("| mean | " + " | ".join(f"{cos[k].mean():.4f}" for k in ("theirs", "aligned", "shift", "other")) + " |")
    print("| min | " + " | ".join(f"{cos[k].min():.4f}" for k in ("theirs", "aligned", "shift", "other")) + " |")
    gap = lambda k: 1.0 - cos[k].mean()  # noqa: E731
    print(f"\n1 - cos: theirs {gap('theirs'):.4f}, aligned {gap('aligned'):.4f}, a 10 ms shift {gap('shift'):.4f}; "
          f"theirs / shift = {gap('theirs') / max(gap('shift'), 1e-12):.2f}")
    print(f"mean |difference| of normalised features, aligned (their frame k+1 vs our k): {np.mean(diff):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
