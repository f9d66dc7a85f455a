"""CTC speech recognition on the MaskSpec encoder (``task_type: ctc``): data, length checks, the Task, decoding.

Utterances are used whole (a transcript cannot be cropped with its audio); a batch is zero-padded to its longest
utterance (zero = the normalised mean) and the loss counts only each utterance's own output steps. The encoder is
given each utterance's frame count and masks the padded patch columns out of attention, so an utterance's outputs
do not depend on what it is batched with; the training sampler still draws batches of similar length
(``LengthBucketSampler``) so that little compute goes to padding.

CTC needs at least one output step per unit plus one between two equal neighbours; a transcript that does not
fit the output steps of its utterance (``CTCModel.output_lengths``) stops the run with an error naming the
utterance, before training starts.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from maskspec.data.dataset import FeatDataset, collate
from maskspec.tasks.augment import spec_augment
from maskspec.tasks.ctc_decode import greedy_decode, prefix_beam_search
from maskspec.tasks.wer import score_corpus
from maskspec.text.tokenizer import Tokenizer, read_text
from maskspec.train import distributed as D

logger = logging.getLogger("maskspec.finetune")


class SpeechDataset(FeatDataset):
    """FeatDataset items (whole utterances, normalised) plus ``tokens`` (long [U]) and ``text`` from ``<dir>/text``."""

    def __init__(self, data_dir: str, tokenizer: Tokenizer, stats: Optional[Mapping], normalize: str):
        super().__init__(data_dir, None, stats, normalize, crop="none")
        path = os.path.join(self.data_dir, "text")
        if not os.path.isfile(path):
            raise ValueError(f"{path} is missing: CTC training and scoring need the transcripts")
        texts = read_text(path)
        missing = [u for u in self.utts if u not in texts]
        if missing:
            raise ValueError(f"{path}: no transcript for utterance '{missing[0]}' of feats.scp ({len(missing)} missing)")
        self.texts = [texts[u] for u in self.utts]
        self.tokens = [tokenizer.encode(t) for t in self.texts]
        frames_path = os.path.join(self.data_dir, "utt2num_frames")
        if os.path.isfile(frames_path):
            from maskspec.data.datadir import read_kv

            frames = read_kv(frames_path)
            self.frames = [int(frames[u]) if u in frames else None for u in self.utts]
        else:
            self.frames = [None] * len(self.utts)

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        item["tokens"] = torch.tensor(self.tokens[index], dtype=torch.long)
        item["text"] = self.texts[index]
        return item


def ctc_collate(items: Sequence[Mapping]) -> dict:
    """``collate`` plus ``tokens`` (all units of the batch concatenated, long [sum U]) and ``token_lengths`` [B]."""
    batch = collate(items)
    batch["tokens"] = torch.cat([it["tokens"] for it in items])
    batch["token_lengths"] = torch.tensor([len(it["tokens"]) for it in items], dtype=torch.long)
    batch["text"] = [it["text"] for it in items]
    return batch


def required_steps(tokens: Sequence[int]) -> int:
    """Output steps CTC needs for this unit sequence: one per unit, plus a blank between equal neighbours."""
    return len(tokens) + sum(1 for a, b in zip(tokens, tokens[1:]) if a == b)


def check_fit(dataset: SpeechDataset, patch_size: int, upsample: int, frame_shift_ms: float) -> dict:
    """Stop (ValueError naming the utterance) when a transcript needs more output steps than its utterance has;
    return the token rate of the set: {units_per_second, max_units_per_second, max_rate_utt, output_steps_per_second,
    num_units}. Frame counts come from utt2num_frames (feature files are read only when it is missing)."""
    total_units = total_frames = 0
    worst_rate, worst_utt = 0.0, None
    for i, utt in enumerate(dataset.utts):
        frames = dataset.frames[i]
        if frames is None:
            frames = len(dataset[i]["feats"])
        steps = frames // patch_size * upsample
        need = required_steps(dataset.tokens[i])
        if need > steps:
            raise ValueError(
                f"utterance '{utt}' of {dataset.data_dir}: its transcript has {len(dataset.tokens[i])} units "
                f"(needing {need} CTC steps) but its {frames} frames give the model only {steps} output steps "
                f"({upsample} per {patch_size}-frame patch column); raise --ctc_upsample, use larger units (--nbpe), or "
                f"drop the utterance")
        total_units += len(dataset.tokens[i])
        total_frames += frames
        rate = len(dataset.tokens[i]) / max(frames * frame_shift_ms / 1000.0, 1e-9)
        if rate > worst_rate:
            worst_rate, worst_utt = rate, utt
    seconds = total_frames * frame_shift_ms / 1000.0
    return dict(units_per_second=total_units / max(seconds, 1e-9), max_units_per_second=worst_rate,
                max_rate_utt=worst_utt, output_steps_per_second=1000.0 * upsample / (patch_size * frame_shift_ms),
                num_units=total_units)


class LengthBucketSampler(torch.utils.data.Sampler):
    """Indices in batches of similar length, batch order shuffled per (seed, epoch); this rank's share.

    The utterances are sorted by length with a little seeded jitter, cut into runs of ``batch_size``, and the runs
    shuffled; the trainer then cuts the stream back into the same batches. Deterministic given (seed, epoch), so
    resuming skips exactly the finished batches.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.lengths = np.asarray(lengths, dtype=np.float64)
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.epoch = 0
        per_rank = len(self.lengths) // world_size
        self.num = per_rank - per_rank % batch_size if per_rank >= batch_size else per_rank

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num

    def __iter__(self):
        rng = np.random.default_rng((self.seed, self.epoch))
        jitter = rng.uniform(0.9, 1.1, size=len(self.lengths))
        order = np.argsort(self.lengths * jitter, kind="stable")
        shard = order[self.rank::self.world_size][: self.num]
        runs = [shard[i:i + self.batch_size] for i in range(0, len(shard), self.batch_size)]
        for k in rng.permutation(len(runs)):
            yield from runs[k].tolist()


def ctc_loss(model, logits: torch.Tensor, batch: Mapping) -> torch.Tensor:
    """Sum of the utterances' CTC losses divided by the batch size (ESPnet's normalisation)."""
    log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # [T, B, V]
    lengths = D.unwrap(model).output_lengths(batch["num_frames"]).clamp(max=logits.shape[1])
    loss = F.ctc_loss(log_probs, batch["tokens"], lengths, batch["token_lengths"], blank=0, reduction="sum",
                      zero_infinity=False)
    return loss / logits.shape[0]


def decode_logits(model, logits: torch.Tensor, num_frames: torch.Tensor, tokenizer: Tokenizer,
                  beam_size: int = 1) -> list[str]:
    """Transcripts from logits [B, T_out, V] of inputs with ``num_frames`` [B] valid frames: greedy when
    ``beam_size`` is 1, else prefix beam search."""
    lengths = D.unwrap(model).output_lengths(num_frames).clamp(max=logits.shape[1]).tolist()
    log_probs = F.log_softmax(logits.float(), dim=-1).cpu().numpy()
    out = []
    for lp, n in zip(log_probs, lengths):
        ids = greedy_decode(lp[:n]) if beam_size <= 1 else prefix_beam_search(lp[:n], beam_size)
        out.append(tokenizer.decode(ids))
    return out


class CTCTask:
    """Task for maskspec.train.trainer.Trainer: CTC loss with SpecAugment; validation = loss, greedy WER and CER."""

    def __init__(self, tokenizer: Tokenizer, freqm: int = 0, timem: int = 0, num_freq_masks: int = 1,
                 num_time_masks: int = 1, freeze_encoder: bool = False):
        self.tokenizer = tokenizer
        self.freqm, self.timem, self.num_freq_masks, self.num_time_masks = freqm, timem, num_freq_masks, num_time_masks
        self.freeze_encoder = freeze_encoder

    def train_step(self, model, batch: dict):
        if self.freeze_encoder:
            D.unwrap(model).encoder.eval()
        x = spec_augment(batch["feats"], self.freqm, self.timem, self.num_freq_masks, self.num_time_masks)
        loss = ctc_loss(model, model(x, num_frames=batch["num_frames"]), batch)
        return loss, {}

    def validate(self, model, loader) -> dict:
        refs, hyps, loss_sum, n = {}, {}, 0.0, 0
        for batch in loader:
            logits = model(batch["feats"], num_frames=batch["num_frames"])
            loss_sum += float(ctc_loss(model, logits, batch)) * len(batch["utt"])
            n += len(batch["utt"])
            texts = decode_logits(model, logits, batch["num_frames"], self.tokenizer)
            for utt, ref, hyp in zip(batch["utt"], batch["text"], texts):
                refs[utt], hyps[utt] = ref, hyp
        parts = D.all_gather_object((refs, hyps, loss_sum, n))
        refs = {k: v for p in parts for k, v in p[0].items()}
        hyps = {k: v for p in parts for k, v in p[1].items()}
        total = sum(p[3] for p in parts)
        if not total:
            return {}
        wer, _ = score_corpus(refs, hyps, "word")
        cer, _ = score_corpus(refs, hyps, "char")
        return {"loss": sum(p[2] for p in parts) / total, "wer": wer["error_rate"], "cer": cer["error_rate"]}


def finite_or_none(value: float) -> Optional[float]:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None
