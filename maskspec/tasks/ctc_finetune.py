"""CTC fine-tuning run (``maskspec.bin.finetune --task_type ctc``): speech recognition on the MaskSpec encoder.

Reads ``<train_data>/{feats.scp,text,utt2num_frames,stats.json,fbank.yaml}`` and the token list
(``--token_list tokens.txt`` and, for sentencepiece units, ``--bpemodel bpe.model``); builds a ``CTCModel`` (encoder
from ``--init`` or random), checks that every transcript fits its utterance's output steps and logs the token
rate, runs the shared Trainer, and writes ``model.pt`` (kind ``ctc``: the token list as its classes, the
tokenizer and the upsampling factor in ``extra``) with the weights of the best validation WER.
"""
from __future__ import annotations

import json
import logging
import os
import sys

logger = logging.getLogger("maskspec.finetune")


def run_ctc_finetuning(args) -> int:
    from maskspec.models.ctc import CTCModel
    from maskspec.models.model_file import save_model_file
    from maskspec.models.summary import count_parameters, describe
    from maskspec.tasks.classification import load_init, read_init
    from maskspec.tasks.ctc import CTCTask, LengthBucketSampler, SpeechDataset, check_fit, ctc_collate
    from maskspec.tasks.finetune import _finite, final_weights, resolve_model
    from maskspec.text.tokenizer import Tokenizer
    from maskspec.train import distributed as D
    from maskspec.train.cli import load_input_stats, read_fbank_config
    from maskspec.train.config import resolve_training_args, save_config
    from maskspec.train.logs import setup_logging
    from maskspec.train.optim import param_groups
    from maskspec.train.rng import seed_everything
    from maskspec.train.trainer import Trainer
    from maskspec.utils.atomic import atomic_open

    if not args.token_list:
        raise ValueError("--task_type ctc needs --token_list (tokens.txt of maskspec.sh's token-list step)")
    dist_info = D.init_distributed(args.device)
    try:
        setup_logging(os.path.join(args.exp_dir, "train.log"), dist_info.is_main, dist_info.rank)
        resolve_training_args(args, dist_info.world_size, dist_info.device.type)
        tokenizer = Tokenizer.from_files(args.token_list, args.bpemodel)
        init = None if args.init.strip().lower() == "none" else read_init(args.init)
        if args.normalize is None:
            args.normalize = (init or {}).get("normalize") or "per_bin"
        stats = load_input_stats(args)
        fbank = read_fbank_config(args.train_data, required=True)
        train_set = SpeechDataset(args.train_data, tokenizer, stats, args.normalize)
        cfg = resolve_model(args, init, len(stats["mean"]) if stats else train_set[0]["feats"].shape[1])
        rate = check_fit(train_set, cfg.patch_size, args.ctc_upsample, fbank["frame_shift"])
        valid_set = SpeechDataset(args.valid_data, tokenizer, stats, args.normalize) if args.valid_data else None
        if valid_set is not None:
            check_fit(valid_set, cfg.patch_size, args.ctc_upsample, fbank["frame_shift"])
        logger.info("token rate of %s: %.2f units/s on average, at most %.2f (%s); the model gives %.1f output "
                    "steps/s (%d per %d-frame column)", args.train_data, rate["units_per_second"],
                    rate["max_units_per_second"], rate["max_rate_utt"], rate["output_steps_per_second"],
                    args.ctc_upsample, cfg.patch_size)
        if dist_info.is_main:
            save_config(args, os.path.join(args.exp_dir, "config.yaml"))
            with atomic_open(os.path.join(args.exp_dir, "token_rate.json"), "w", encoding="utf-8") as f:
                json.dump(rate, f, indent=2)
                f.write("\n")
        logger.info("command: %s", " ".join(sys.argv))
        logger.info("ctc, %d units (%s); train %d utterances (%s), valid %s; %d processes, device %s",
                    len(tokenizer), tokenizer.token_type, len(train_set), args.train_data,
                    f"{len(valid_set)} utterances" if valid_set else "none", dist_info.world_size, dist_info.device)

        seed_everything(args.seed)
        model = CTCModel(cfg, len(tokenizer), args.ctc_upsample)
        logger.info("%s", describe(cfg))
        if init is not None:
            load_init(model, init, args.ignore_init_mismatch, where=f"--init {args.init}")
        else:
            logger.info("--init none: training from random initialisation")
        if args.freeze_encoder:
            model.freeze_encoder()
        groups = param_groups(model, args.weight_decay, layer_id=model.layer_id, num_layers=model.num_layers,
                              layer_decay=1.0 if args.freeze_encoder else args.layer_decay)
        logger.info("trainable parameters: %d", count_parameters(model, trainable_only=True))
        task = CTCTask(tokenizer, args.freqm, args.timem, args.num_freq_masks, args.num_time_masks,
                       args.freeze_encoder)
        lengths = [f if f is not None else 0 for f in train_set.frames]
        sampler = LengthBucketSampler(lengths, args.batch_size, seed=args.seed, rank=dist_info.rank,
                                      world_size=dist_info.world_size)
        metadata = dict(kind="ctc", model_config=cfg.to_dict(), fbank_config=fbank, stats=stats,
                        classes=tokenizer.token_list, task_type="ctc")
        trainer = Trainer(model=model, task=task, train_dataset=train_set, train_sampler=sampler,
                          collate_fn=ctc_collate, param_groups=groups, args=args, exp_dir=args.exp_dir,
                          dist_info=dist_info, valid_dataset=valid_set, metadata=metadata,
                          best_metric="wer" if valid_set else None, best_mode="min",
                          valid_batch_size=args.valid_batch_size or None)
        result = trainer.fit()
        if dist_info.is_main:
            state_dict, selection = final_weights(args, valid_set is not None)
            path = os.path.join(args.exp_dir, "model.pt")
            save_model_file(path, kind="ctc", model_config=cfg, state_dict=state_dict, fbank_config=fbank,
                            stats=stats, normalize=args.normalize, classes=tokenizer.token_list, task_type="ctc",
                            num_frames=cfg.num_frames,
                            extra=dict(init=args.init, step=result["step"], freeze_encoder=args.freeze_encoder,
                                       tokenizer=tokenizer.to_dict(), ctc_upsample=args.ctc_upsample,
                                       token_rate=rate, **{k: _finite(v) for k, v in selection.items()}))
            logger.info("done after %d steps; wrote %s", result["step"], path)
        D.barrier()
    finally:
        D.cleanup()
    return 0
