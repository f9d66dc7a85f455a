"""Fine-tuning a MaskSpec encoder for classification (recipe stage 4): the run behind maskspec.bin.finetune.

The options are documented in ``maskspec.bin.finetune``; this module builds the data sets, the model (from
``--init`` or from scratch), the sampler and the task, runs the shared Trainer, and writes ``model.pt``.
"""
from __future__ import annotations

import logging
import math
import os
import sys
from typing import Optional

logger = logging.getLogger("maskspec.finetune")


def resolve_model(args, init: Optional[dict], num_mel_bins: int):
    """ModelConfig: the --init model's (or --model's) config < --model_conf < --drop_path, --num_frames."""
    from maskspec.models.configs import training_model_config

    if init is not None and not init.get("model_config"):
        raise ValueError(f"--init {args.init}: has no model_config; it was not written by MaskSpec training")
    base = args.model if init is None else init["model_config"]
    cfg = training_model_config(base, args.model_conf, dict(drop_path=args.drop_path, num_frames=args.num_frames),
                                num_mel_bins, args.train_data)
    args.num_frames = cfg.num_frames
    f_p, t_p = cfg.grid
    if args.patch_drop >= f_p * t_p:
        raise ValueError(f"--patch_drop {args.patch_drop} must be below the {f_p * t_p} patches of a "
                         f"{cfg.num_mel_bins} x {cfg.num_frames} input")
    return cfg


def build_sampler(args, train_set, dist_info):
    from maskspec.data.balanced import WeightedDistributedSampler, class_balanced_weights
    from maskspec.train import distributed as D

    if not args.balanced_sampling:
        return D.DistributedShuffleSampler(len(train_set), seed=args.seed, rank=dist_info.rank,
                                           world_size=dist_info.world_size, shuffle=True)
    weights = class_balanced_weights(train_set.labels)
    unused = int((weights == 0).sum())
    if unused:
        logger.warning("class-balanced sampling: %d of %d clips have no positive label and are never drawn",
                       unused, len(weights))
    n = args.samples_per_epoch or len(train_set)
    logger.info("class-balanced sampling: %d clips per epoch, weights from %s (min %.3g, max %.3g)", n,
                args.train_data, weights[weights > 0].min(), weights.max())
    return WeightedDistributedSampler(weights, n, rank=dist_info.rank, world_size=dist_info.world_size,
                                      seed=args.seed)


def final_weights(args, valid: bool) -> tuple[dict, dict]:
    """(state_dict for model.pt, description): the average of the last N epoch-end checkpoints, the best
    validation checkpoint, or the newest checkpoint."""
    from maskspec.tasks.classification import average_state_dicts
    from maskspec.train.checkpoint import BEST_NAME, checkpoint_dir, list_checkpoints, load_checkpoint

    ckpt_dir = checkpoint_dir(args.exp_dir)
    if args.average_last > 0:
        states = [load_checkpoint(p) for p in list_checkpoints(ckpt_dir)]
        ends = [s for s in states if int(s["batches_done"]) == 0]
        picked = ends[-args.average_last:]
        if not picked:
            raise ValueError(f"{ckpt_dir}: no epoch-end checkpoint to average")
        if len(picked) < args.average_last:
            logger.warning("--average_last %d: only %d epoch-end checkpoints exist", args.average_last, len(picked))
        epochs = [int(s["epoch"]) for s in picked]
        logger.info("model.pt: mean of the checkpoints after epochs %s", epochs)
        return average_state_dicts([s["model"] for s in picked]), dict(selected="average", epochs=epochs)
    best = os.path.join(ckpt_dir, BEST_NAME)
    if valid and os.path.isfile(best):
        state = load_checkpoint(best)
        logger.info("model.pt: best validation checkpoint (%s %.5g, step %d)", state.get("best_metric_name"),
                    state["best_metric"], state["step"])
        return state["model"], dict(selected="best", selected_step=int(state["step"]), best_metric=state["best_metric"],
                                    best_metric_name=state.get("best_metric_name"), valid=state.get("valid"))
    paths = list_checkpoints(ckpt_dir)
    if not paths:
        raise ValueError(f"{ckpt_dir}: no checkpoint written")
    state = load_checkpoint(paths[-1])
    logger.info("model.pt: newest checkpoint %s", paths[-1])
    return state["model"], dict(selected="last", selected_step=int(state["step"]))


def run_finetuning(args) -> int:
    import torch

    from maskspec.data.datadir import read_classes
    from maskspec.data.dataset import FeatDataset, collate
    from maskspec.data.feats import load_feat
    from maskspec.features.fbank import FbankConfig
    from maskspec.models.classifier import AudioClassifier
    from maskspec.models.model_file import save_model_file
    from maskspec.models.summary import count_parameters, describe
    from maskspec.tasks.augment import AugmentConfig, LogMelScale
    from maskspec.tasks.classification import ClassificationTask, infer_task_type, load_init, read_init
    from maskspec.tasks.metrics import PRIMARY_METRIC
    from maskspec.train import distributed as D
    from maskspec.train.cli import load_input_stats, read_fbank_config
    from maskspec.train.config import resolve_training_args, save_config
    from maskspec.train.logs import setup_logging
    from maskspec.train.optim import param_groups
    from maskspec.train.rng import seed_everything
    from maskspec.train.trainer import Trainer

    dist_info = D.init_distributed(args.device)
    try:
        setup_logging(os.path.join(args.exp_dir, "train.log"), dist_info.is_main, dist_info.rank)
        resolve_training_args(args, dist_info.world_size, dist_info.device.type)
        init = None if args.init.strip().lower() == "none" else read_init(args.init)
        if args.normalize is None:
            args.normalize = (init or {}).get("normalize") or "per_bin"
        stats = load_input_stats(args)
        fbank = read_fbank_config(args.train_data, required=True)
        if init is not None and init.get("fbank_config"):
            init_fbank = FbankConfig.from_dict(dict(init["fbank_config"]), source=f"--init {args.init}").to_dict()
            diff = sorted(k for k in fbank if fbank[k] != init_fbank.get(k))
            if diff:
                logger.warning("fbank settings of %s differ from those of --init in %s", args.train_data, diff)

        classes = read_classes(args.train_data)
        train_set = FeatDataset(args.train_data, None, stats, args.normalize, crop="random", seed=args.seed,
                                with_labels=True, classes=classes)
        detected = infer_task_type(train_set.labels)
        if args.task_type == "auto":
            args.task_type = detected
        elif args.task_type == "single_label" and detected == "multi_label":
            raise ValueError(f"--task_type single_label, but {args.train_data} has clips with other than one label "
                             f"or partial labels (utt2label_known)")
        num_mel_bins = len(stats["mean"]) if stats else load_feat(train_set.specs[0]).shape[1]
        cfg = resolve_model(args, init, num_mel_bins)
        train_set.num_frames = cfg.num_frames
        valid_set = (FeatDataset(args.valid_data, None, stats, args.normalize, crop="none", with_labels=True,
                                 classes=classes) if args.valid_data else None)
        if dist_info.is_main:
            save_config(args, os.path.join(args.exp_dir, "config.yaml"))
        logger.info("command: %s", " ".join(sys.argv))
        logger.info("%s, %d classes; train %d clips (%s), valid %s; %d processes, device %s", args.task_type,
                    len(classes), len(train_set), args.train_data,
                    f"{len(valid_set)} clips ({args.valid_data})" if valid_set else "none", dist_info.world_size,
                    dist_info.device)

        seed_everything(args.seed)  # identical initial head on every rank
        model = AudioClassifier(cfg, len(classes))
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

        task = ClassificationTask(
            args.task_type, cfg.num_frames, args.label_smoothing, AugmentConfig.from_args(args),
            patch_drop=args.patch_drop, freeze_encoder=args.freeze_encoder, valid_hop=args.valid_hop_frames,
            classes=classes, feature_scale=LogMelScale.from_features(stats, args.normalize, fbank))
        metadata = dict(kind="classifier", model_config=cfg.to_dict(), fbank_config=fbank, stats=stats,
                        classes=classes, task_type=args.task_type)
        trainer = Trainer(model=model, task=task, train_dataset=train_set,
                          train_sampler=build_sampler(args, train_set, dist_info), collate_fn=collate,
                          param_groups=groups, args=args, exp_dir=args.exp_dir, dist_info=dist_info,
                          valid_dataset=valid_set, metadata=metadata,
                          best_metric=PRIMARY_METRIC[args.task_type] if valid_set else None, best_mode="max",
                          valid_batch_size=args.valid_batch_size or None)
        result = trainer.fit()
        if dist_info.is_main:
            state_dict, selection = final_weights(args, valid_set is not None)
            if selection["selected"] == "average" and valid_set is not None:
                model.load_state_dict(state_dict)
                loader = torch.utils.data.DataLoader(valid_set, batch_size=args.valid_batch_size or args.batch_size,
                                                     collate_fn=collate, num_workers=args.num_workers)
                model.eval()
                with torch.no_grad():
                    selection["valid"] = task.metrics(*task.evaluate(model.to(dist_info.device), loader)[1:])
                logger.info("averaged weights on %s:%s", args.valid_data,
                            "".join(f" {k} {v:.5g}" for k, v in selection["valid"].items()))
            path = os.path.join(args.exp_dir, "model.pt")
            save_model_file(path, kind="classifier", model_config=cfg, state_dict=state_dict, fbank_config=fbank,
                            stats=stats, normalize=args.normalize, classes=classes, task_type=args.task_type,
                            num_frames=cfg.num_frames,
                            extra=dict(init=args.init, step=result["step"], freeze_encoder=args.freeze_encoder,
                                       **{k: _finite(v) for k, v in selection.items()}))
            logger.info("done after %d steps; wrote %s", result["step"], path)
        D.barrier()
    finally:
        D.cleanup()
    return 0


def _finite(value):
    """NaN/inf (an undefined metric) stored as None so the model file stays plain data."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value
