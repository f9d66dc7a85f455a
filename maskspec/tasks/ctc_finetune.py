"""CTC fine-tuning (``maskspec.bin.finetune --task_type ctc``): speech recognition on the MaskSpec encoder.

A ``TrainingRecipe`` for ``maskspec.train.run.run_training``, sharing the classification recipe's ``--init``
handling, model options, layer-wise lr decay and encoder freezing. It reads ``<train_data>/{feats.scp,text,
utt2num_frames}`` and the token list (``--token_list tokens.txt`` and, for sentencepiece units, ``--bpemodel
bpe.model``); builds a ``CTCModel``; checks before training that every transcript fits its utterance's output steps
and logs the token rate (also in ``<exp_dir>/token_rate.json``); and writes ``model.pt`` (kind ``ctc``: the token
list as its classes, the tokenizer and ``ctc_upsample`` in ``extra``) with the weights of the best validation WER.
"""
from __future__ import annotations

import json
import logging

from maskspec.tasks.finetune import ClassificationRecipe, _finite, final_weights
from maskspec.train.run import Run

logger = logging.getLogger("maskspec.finetune")


class CTCRecipe(ClassificationRecipe):
    kind = "ctc"
    best_mode = "min"

    def prepare(self, run: Run) -> None:
        from maskspec.text.tokenizer import Tokenizer

        if not run.args.token_list:
            raise ValueError("--task_type ctc needs --token_list (tokens.txt of maskspec.sh's token-list step)")
        self.tokenizer = Tokenizer.from_files(run.args.token_list, run.args.bpemodel)
        super().prepare(run)

    def datasets(self, run: Run):
        from maskspec.tasks.ctc import SpeechDataset, check_fit
        from maskspec.utils.atomic import atomic_open

        args = run.args
        self.classes = self.tokenizer.token_list
        train = SpeechDataset(args.train_data, self.tokenizer, run.stats, args.normalize)
        valid = SpeechDataset(args.valid_data, self.tokenizer, run.stats, args.normalize) if args.valid_data else None
        from maskspec.models.ctc import resolve_upsample

        shift = run.fbank["frame_shift"]
        self.upsample = resolve_upsample(run.cfg, args.ctc_upsample)
        columns = run.cfg.patch_shape[1]  # frames per patch column
        self.rate = check_fit(train, columns, self.upsample, shift)
        if valid is not None:
            check_fit(valid, columns, self.upsample, shift)
        logger.info("token rate of %s: %.2f units/s on average, at most %.2f (%s); the model gives %.1f output "
                    "steps/s (%d per %d-frame column)", args.train_data, self.rate["units_per_second"],
                    self.rate["max_units_per_second"], self.rate["max_rate_utt"],
                    self.rate["output_steps_per_second"], self.upsample, columns)
        if run.dist.is_main:
            with atomic_open(run.path("token_rate.json"), "w", encoding="utf-8") as f:
                json.dump(self.rate, f, indent=2)
                f.write("\n")
        return train, valid

    def describe_data(self, run: Run) -> str:
        valid = run.valid_set
        return (f"ctc, {len(self.tokenizer)} units ({self.tokenizer.token_type}); train {len(run.train_set)} "
                f"utterances ({run.args.train_data}), valid "
                + (f"{len(valid)} utterances ({run.args.valid_data})" if valid is not None else "none"))

    def network(self, run: Run):
        from maskspec.models.ctc import CTCModel

        return CTCModel(run.cfg, len(self.tokenizer), self.upsample)

    def build_task(self, run: Run):
        from maskspec.tasks.ctc import CTCTask

        a = run.args
        return CTCTask(self.tokenizer, a.freqm, a.timem, a.num_freq_masks, a.num_time_masks, a.freeze_encoder)

    def sampler(self, run: Run):
        from maskspec.tasks.ctc import LengthBucketSampler

        lengths = [f if f is not None else 0 for f in run.train_set.frames]
        return LengthBucketSampler(lengths, run.args.batch_size, seed=run.args.seed, rank=run.dist.rank,
                                   world_size=run.dist.world_size)

    def collate_fn(self):
        from maskspec.tasks.ctc import ctc_collate

        return ctc_collate

    def best_metric(self, run: Run):
        return "wer"

    def metadata(self, run: Run) -> dict:
        return dict(classes=self.tokenizer.token_list, task_type="ctc")

    def finish(self, run: Run) -> None:
        from maskspec.models.model_file import save_model_file

        args = run.args
        state_dict, selection = final_weights(args, run.valid_set is not None)
        path = run.path("model.pt")
        save_model_file(path, kind="ctc", model_config=run.cfg, state_dict=state_dict, fbank_config=run.fbank,
                        stats=run.stats, normalize=args.normalize, classes=self.tokenizer.token_list,
                        task_type="ctc", num_frames=run.cfg.num_frames,
                        extra=dict(init=args.init, step=run.result["step"], freeze_encoder=args.freeze_encoder,
                                   tokenizer=self.tokenizer.to_dict(), ctc_upsample=self.upsample,
                                   token_rate=self.rate, **{k: _finite(v) for k, v in selection.items()}))
        logger.info("done after %d steps; wrote %s", run.result["step"], path)
