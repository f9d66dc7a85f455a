"""Scoring a CTC model on a data directory (``maskspec.bin.score`` on a model file of kind ``ctc``).

Writes to the output folder:
  text          <utt> <hypothesis>, one line per utterance (sorted)
  per_utt       word alignments, Kaldi's layout: '<utt> ref ...', '<utt> hyp ...', '<utt> op C/S/I/D ...',
                '<utt> #csid <C> <S> <I> <D>'
  per_utt_char  the same over characters (spaces left out)
  results.json  {"metrics": {"task_type": "ctc", "wer", "cer", "num_utts", "sentence_error_rate", "word_counts":
                {C, S, I, D, num_ref}, "char_counts": {...}}, "model", "data", "decoding"}
  RESULTS.md    the same, readable, with the worst utterances
Utterances are decoded in batches of equal patch-column count, so batching does not change any transcript.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Optional

import torch

from maskspec.tasks.ctc import SpeechDataset, ctc_collate, decode_logits
from maskspec.tasks.wer import per_utt_lines, score_corpus
from maskspec.text.tokenizer import Tokenizer
from maskspec.utils.atomic import atomic_open

logger = logging.getLogger("maskspec.score")


def load_ctc_model(path: str, device: torch.device, mf: Optional[dict] = None):
    """(CTCModel in eval mode on ``device``, model file dict, Tokenizer); ``mf``: the file's dict when the caller
    has read it already (it is not read again)."""
    from maskspec.models.model_file import ModelFileError, build_model, load_model_file

    mf = load_model_file(path) if mf is None else mf
    if mf["kind"] != "ctc":
        raise ModelFileError(f"{path}: a {mf['kind']} model, not a speech recogniser (kind ctc)")
    return build_model(mf).to(device), mf, Tokenizer.from_dict(mf["extra"]["tokenizer"])


@torch.no_grad()
def transcribe_feats(model, feats, tokenizer: Tokenizer, beam_size: int = 1) -> str:
    """The transcript of one utterance's normalised features ``[T, F]`` (numpy or tensor), whole."""
    device = next(model.parameters()).device
    x = torch.as_tensor(feats, dtype=torch.float32, device=device).unsqueeze(0)
    return decode_logits(model, model(x), torch.tensor([x.shape[1]], device=device), tokenizer, beam_size)[0]


@torch.no_grad()
def transcribe_dataset(model, dataset: SpeechDataset, tokenizer: Tokenizer, beam_size: int, batch_utts: int,
                       num_workers: int, device: torch.device) -> dict[str, str]:
    """{utt: hypothesis} of every utterance of ``dataset``."""
    # A batch holds utterances of the same number of patch columns: the encoder drops the frames after the last
    # full column, so their zero padding never reaches it and each transcript is the one decoded alone.
    patch = model.cfg.patch_shape[1]
    columns = [(f if f is not None else len(dataset[i]["feats"])) // patch for i, f in enumerate(dataset.frames)]
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(columns):
        groups.setdefault(c, []).append(i)
    batches = [same[i:i + batch_utts] for _, same in sorted(groups.items()) for i in range(0, len(same), batch_utts)]
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches, collate_fn=ctc_collate,
                                         num_workers=num_workers)
    hyps = {}
    for batch in loader:
        logits = model(batch["feats"].to(device), num_frames=batch["num_frames"].to(device))
        for utt, hyp in zip(batch["utt"], decode_logits(model, logits, batch["num_frames"].to(device), tokenizer,
                                                        beam_size)):
            hyps[utt] = hyp
    return hyps


def results_markdown(results: dict, worst: list[tuple[str, float]]) -> str:
    m = results["metrics"]
    w, c = m["word_counts"], m["char_counts"]
    lines = [f"# Results: {results['data']}", "", f"- model: `{results['model']}`",
             f"- utterances: {m['num_utts']}, decoding: {results['decoding']}", "",
             "| metric | value | errors (S / D / I) | reference units |", "|---|---|---|---|",
             f"| WER | {m['wer']:.4f} | {w['S']} / {w['D']} / {w['I']} | {w['num_ref']} words |",
             f"| CER | {m['cer']:.4f} | {c['S']} / {c['D']} / {c['I']} | {c['num_ref']} characters |",
             f"| sentence error rate | {m['sentence_error_rate']:.4f} | | |", "",
             "Alignments: `per_utt` (words), `per_utt_char` (characters); hypotheses: `text`.", ""]
    if worst:
        lines += ["## Highest word error rate", "", "| utterance | WER |", "|---|---|"]
        lines += [f"| {u} | {r:.3f} |" for u, r in worst]
    return "\n".join(lines) + "\n"


def score_ctc(args, device: torch.device, mf: Optional[dict] = None) -> Optional[dict]:
    model, mf, tokenizer = load_ctc_model(args.model, device, mf)
    dataset = SpeechDataset(args.data, tokenizer, mf["stats"], mf["normalize"])
    decoding = "greedy" if args.beam_size <= 1 else f"prefix beam search, beam {args.beam_size}"
    logger.info("decoding %d utterances of %s with %s (%s, %d units) on %s", len(dataset), args.data, args.model,
                decoding, len(tokenizer), device)
    hyps = transcribe_dataset(model, dataset, tokenizer, args.beam_size, args.batch_clips, args.num_workers, device)
    refs = dict(zip(dataset.utts, dataset.texts))
    words, word_align = score_corpus(refs, hyps, "word")
    chars, char_align = score_corpus(refs, hyps, "char")
    counts = lambda s: {k: s[k] for k in ("C", "S", "I", "D", "num_ref")}  # noqa: E731
    results = dict(model=os.path.abspath(args.model), data=os.path.abspath(args.data), decoding=decoding,
                   metrics=dict(task_type="ctc", wer=words["error_rate"], cer=chars["error_rate"],
                                num_utts=words["num_utts"], sentence_error_rate=words["sentence_error_rate"],
                                word_counts=counts(words), char_counts=counts(chars)))
    os.makedirs(args.output_dir, exist_ok=True)
    with atomic_open(os.path.join(args.output_dir, "text"), "w", encoding="utf-8") as f:
        f.writelines(f"{u} {hyps[u]}".rstrip() + "\n" for u in sorted(hyps))
    for name, alignment in (("per_utt", word_align), ("per_utt_char", char_align)):
        with atomic_open(os.path.join(args.output_dir, name), "w", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in per_utt_lines(alignment))
    per_utt_wer = {u: sum(op != "C" for op, _, _ in a) / max(sum(op != "I" for op, _, _ in a), 1)
                   for u, a in word_align.items()}
    worst = sorted(per_utt_wer.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    with atomic_open(os.path.join(args.output_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, allow_nan=False, ensure_ascii=False)
        f.write("\n")
    with atomic_open(os.path.join(args.output_dir, "RESULTS.md"), "w", encoding="utf-8") as f:
        f.write(results_markdown(results, worst))
    logger.info("%s: WER %.4f, CER %.4f (%d utterances)", args.data, words["error_rate"], chars["error_rate"],
                len(refs))
    return results
