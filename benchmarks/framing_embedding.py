"""How much the encoder's clip embedding changes between the MaskSpec authors' front end and ours, and what the
sources' padding of short clips does.

e.g.: python benchmarks/framing_embedding.py --num_clips 8
      python benchmarks/framing_embedding.py --model maskspec_as2m.pt     # an imported model file

The authors compute features on the fly (github WangHelin1997/MaskSpec, models/models_mae.py, AugmentMelSTFT, in
eval mode): pre-emphasis over the whole waveform, a centred STFT (reflect padding, frame k centred on sample
320 k), Kaldi mel banks, log(x + 1e-5); ``their_logmel`` below re-computes that with the same torch calls, as
the yardstick. Ours, two ways: ``framing: centered`` (egs/TEMPLATE/conf/fbank_paper_centered.yaml, what
maskspec-import now records for their models) and Kaldi framing (fbank_paper.yaml, what it recorded before):
frame k starts at sample 320 k (centred 400 samples = 1.25 frames later) and pre-emphasis runs inside each
frame. All are standardised with the same per-bin statistics (the model file's, or those of our features of
these clips) and cropped to the model's frames.

Printed per clip, cosine similarity of the clip embeddings (the classifier's pooled vector; the mean of the patch
tokens for a pre-training model) with their front end's:
  centred  ours with framing: centered;
  kaldi    ours with Kaldi framing;
  aligned  ours with Kaldi framing against theirs without its first frame (0.25 frame off instead of 1.25);
  shift    baseline measured in the same run: ours (Kaldi) vs ours on the audio delayed by one hop (10 ms);
  other    baseline: ours (Kaldi) vs ours of the next clip (what a different sound gives).
Then the padding of short clips (``--short_seconds``), each source's way against the padding of normalised
features with zeros (what every tool did before, and still does for models trained here):
  authors  their tagger pads the audio with silence to 10 s, then computes the features (1000 frames);
  Audio-MAE / EAT  the raw fbank of a 10 s clip at 16 kHz (998 frames) is padded with zeros to 1024 frames,
           then normalised ((x + 4.27) / 9.14: the padded frames hold +0.467 instead of 0); a 16 kHz ViT-Base.
Without --model the encoders are ViT-Bases with random weights (seed 0): the published weights cannot be
fetched here, so those figures bound what front ends do to a network that has not learnt to ignore them.
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
    p.add_argument("--short_seconds", type=float, default=4.0, help="clip length of the padding comparison")
    p.add_argument("--model", default=None, help="model file (default: ViT-Base, random weights)")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    conf = os.path.join(REPO, "egs", "TEMPLATE", "conf")
    cfg = FbankConfig.from_yaml(os.path.join(conf, "fbank_paper.yaml"))
    centred_cfg = FbankConfig.from_yaml(os.path.join(conf, "fbank_paper_centered.yaml"))
    embed, norm, num_frames = load_network(args.model)
    clips = [make_clip(i, args.seconds) for i in range(args.num_clips)]
    delayed = [np.concatenate([np.zeros(HOP, np.float32), c[:-HOP]]) for c in clips]
    ours = [compute_fbank(c, SR, cfg) for c in clips]
    centred = [compute_fbank(c, SR, centred_cfg) for c in clips]
    ours_delayed = [compute_fbank(c, SR, cfg) for c in delayed]
    theirs = [their_logmel(c) for c in clips]
    if norm is None:
        allf = np.concatenate(ours)
        stats = dict(mean=allf.mean(0).tolist(), std=allf.std(0).tolist(), global_mean=float(allf.mean()),
                     global_std=float(allf.std()))
        norm = (stats, "per_bin")

    def emb(feats, frames=num_frames, net=embed):
        x = np.stack([f[:frames] for f in feats])
        with torch.no_grad():
            return net(torch.from_numpy(np.asarray(x, dtype=np.float32)))

    def nemb(feats):
        return emb([normalize(f, *norm) for f in feats])

    e_theirs = nemb(theirs)
    e_ours, e_centred = nemb(ours), nemb(centred)
    e_aligned, e_shift = nemb([t[1:] for t in theirs]), nemb(ours_delayed)
    cos = {name: F.cosine_similarity(ref, e, dim=1).numpy()
           for name, ref, e in (("centred", e_theirs, e_centred), ("kaldi", e_theirs, e_ours),
                                ("aligned", nemb([t[1:] for t in theirs]), e_ours), ("shift", e_ours, e_shift),
                                ("other", e_ours, torch.roll(e_ours, 1, dims=0)))}
    diff = [np.abs(normalize(t[1:1 + len(o)], *norm) - normalize(o[:len(t) - 1], *norm)).mean()
            for t, o in zip(theirs, ours)]
    cdiff = np.concatenate([np.abs(normalize(t, *norm) - normalize(c, *norm)).ravel()
                            for t, c in zip(theirs, centred)])
    print(f"framing_embedding: {args.num_clips} clips x {args.seconds:g} s, 32 kHz, {num_frames} frames; model "
          f"{args.model or 'ViT-Base, random weights (seed 0)'}; {platform.machine()}, torch {torch.__version__}")
    print(f"frames per clip: theirs {len(theirs[0])}, ours centred {len(centred[0])}, ours Kaldi {len(ours[0])}")
    print("\n| clip | centred | kaldi | kaldi, aligned | shift (10 ms, baseline) | other clip (baseline) |"
          "\n|---|---|---|---|---|---|")
    names = ("centred", "kaldi", "aligned", "shift", "other")
    for i in range(args.num_clips):
        print(f"| {i} | " + " | ".join(f"{cos[k][i]:.6f}" for k in names) + " |")
    print("| mean | " + " | ".join(f"{cos[k].mean():.6f}" for k in names) + " |")
    print("| min | " + " | ".join(f"{cos[k].min():.6f}" for k in names) + " |")
    gap = lambda k: 1.0 - cos[k].mean()  # noqa: E731
    print(f"\n1 - cos: centred {gap('centred'):.2e}, kaldi {gap('kaldi'):.4f}, aligned {gap('aligned'):.4f}, "
          f"a 10 ms shift {gap('shift'):.4f}; kaldi / shift = {gap('kaldi') / max(gap('shift'), 1e-12):.2f}")
    print(f"normalised features, ours centred vs theirs: mean |difference| {cdiff.mean():.2e}, max "
          f"{cdiff.max():.2e}, elements above 1e-4: {(cdiff > 1e-4).mean():.2e}")
    print(f"mean |difference| of normalised features, Kaldi aligned (their frame k+1 vs our k): {np.mean(diff):.3f}")

    # padding of short clips: the authors' (audio padded to 10 s) against normalised features padded with zeros
    short = [c[: int(args.short_seconds * SR)] for c in clips]
    padded_audio = [np.concatenate([c, np.zeros(int(10 * SR) - c.size, np.float32)]) for c in short]
    theirs_short = nemb([compute_fbank(c, SR, centred_cfg) for c in padded_audio])

    def zero_padded(f, frames):
        f = normalize(f, *norm)
        return np.concatenate([f, np.zeros((max(0, frames - len(f)), f.shape[1]), np.float32)])

    ours_short = emb([zero_padded(compute_fbank(c, SR, centred_cfg), num_frames) for c in short])
    pad_authors = F.cosine_similarity(theirs_short, ours_short, dim=1).numpy()
    # Audio-MAE / EAT: 10 s at 16 kHz, 998 frames padded to 1024 before (theirs) or after (ours) normalising
    from maskspec.models.classifier import AudioClassifier
    from maskspec.models.configs import model_config

    torch.manual_seed(0)
    net16 = AudioClassifier(model_config("base", num_frames=1024), 527).eval()
    ast = FbankConfig()
    mean, std = -4.2677393, 2 * 4.5689974
    raw = [compute_fbank(torchaudio.functional.resample(torch.from_numpy(c), SR, 16000).numpy(), 16000, ast)
           for c in clips]
    before = [(np.concatenate([f, np.zeros((1024 - len(f), f.shape[1]), np.float32)]) - mean) / std for f in raw]
    after = [np.concatenate([(f - mean) / std, np.zeros((1024 - len(f), f.shape[1]), np.float32)]) for f in raw]
    pad_ast = F.cosine_similarity(emb(before, 1024, net16.embed), emb(after, 1024, net16.embed), dim=1).numpy()
    print(f"\npadding of short clips, each source's vs normalised features padded with zeros (cosine of clip "
          f"embeddings):")
    print(f"| source | clip | padded frames | mean cos | min cos | 1 - mean cos |\n|---|---|---|---|---|---|")
    print(f"| MaskSpec authors (audio to 10 s) | {args.short_seconds:g} s, 32 kHz | "
          f"{num_frames - centred_cfg.num_frames(int(args.short_seconds * SR))} of {num_frames} | "
          f"{pad_authors.mean():.4f} | {pad_authors.min():.4f} | {1 - pad_authors.mean():.4f} |")
    print(f"| Audio-MAE / EAT (raw fbank to 1024, +{-mean / std:.3f}) | {args.seconds:g} s, 16 kHz | "
          f"{1024 - len(raw[0])} of 1024 | {pad_ast.mean():.4f} | {pad_ast.min():.4f} | {1 - pad_ast.mean():.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
