"""Fine-tune a MaskSpec encoder for audio classification (recipe stage 4).

e.g.:
  python -m maskspec.bin.finetune --config conf/finetune_esc50.yaml --train_data dump/fbank/fold1_train \\
      --valid_data dump/fbank/fold1_valid --exp_dir exp/esc50_fold1 --init exp/pretrain_base/model.pt
  python -m maskspec.bin.finetune ... --init none --model base        # from-scratch baseline
  python -m maskspec.bin.finetune ... --freeze_encoder true          # linear probe

--init takes a pre-training or fine-tuning checkpoint (exp/<tag>/checkpoints/*.pt) or a model file; the model
configuration comes from it (so the sizes match), with --model_conf, --drop_path and --num_frames applied on
top. Reads <train_data>/feats.scp, utt2label[, utt2label_known], labels.txt (class order), stats.json (the
fine-tuning set's own statistics) and fbank.yaml. Writes in --exp_dir: config.yaml, train.log, checkpoints/
(best.pt = best validation accuracy or mAP), tensorboard/, and model.pt: a model file with the best (or, with
--average_last N, the averaged) weights, the classes, task type, feature settings and stats, for
maskspec.bin.score and maskspec-infer. Rerunning continues from the newest valid checkpoint.
Exit status 0 on success, 1 on an error (message on stderr), 2 on bad options.
"""
from __future__ import annotations

import logging
import math
import os
import sys
from typing import Optional, Sequence

PROG = "maskspec.bin.finetune"
logger = logging.getLogger("maskspec.finetune")


def build_parser():
    from maskspec.data.dataset import NORMALIZE_MODES
    from maskspec.train.config import (StrictArgumentParser, add_training_args, int_or_none, str2bool, str_or_none,
                                       yaml_dict)

    p = StrictArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    g = p.add_argument_group("data")
    g.add_argument("--train_data", required=True, help="data directory with feats.scp, utt2label, labels.txt, "
                                                       "stats.json, fbank.yaml")
    g.add_argument("--valid_data", type=str_or_none, default=None,
                   help="validation data directory (none: no validation; model.pt = last or averaged weights)")
    g.add_argument("--exp_dir", required=True, help="output folder")
    g.add_argument("--stats", type=str_or_none, default=None, help="stats.json (default <train_data>/stats.json)")
    g.add_argument("--normalize", type=str_or_none, default=None, choices=(None, *NORMALIZE_MODES),
                   help="feature standardisation (default: as the --init model was trained, else per_bin)")
    g.add_argument("--valid_batch_size", type=int, default=0, help="validation clips per batch (0: --batch_size)")
    g.add_argument("--valid_hop_frames", type=int_or_none, default=None,
                   help="validation window hop (default: half of --num_frames)")
    m = p.add_argument_group("model")
    m.add_argument("--init", required=True,
                   help="pre-training/fine-tuning checkpoint or model file to start from; 'none' = from scratch")
    m.add_argument("--ignore_init_mismatch", type=str2bool, default=False,
                   help="skip --init weights whose shape differs instead of stopping")
    m.add_argument("--model", default="base", help="model size with --init none: tiny, small, base")
    m.add_argument("--model_conf", type=yaml_dict, default={},
                   help="model fields as YAML/JSON, applied over --model or the --init model's config")
    m.add_argument("--drop_path", type=float, default=0.1, help="stochastic depth rate of the last block")
    m.add_argument("--num_frames", type=int_or_none, default=None,
                   help="training crop (and test window) in frames (default: the model config's)")
    m.add_argument("--freeze_encoder", type=str2bool, default=False,
                   help="linear probe: train only the head (LayerNorm + Linear); encoder frozen, in eval mode")
    t = p.add_argument_group("task")
    t.add_argument("--task_type", default="auto", choices=("auto", "single_label", "multi_label"),
                   help="auto: multi_label if utt2label_known exists or a clip has != 1 label")
    t.add_argument("--label_smoothing", type=float, default=0.0, help="label smoothing of the loss")
    t.add_argument("--layer_decay", type=float, default=0.75, help="layer-wise lr decay (1: none)")
    t.add_argument("--balanced_sampling", type=str2bool, default=False,
                   help="draw clips with class-balanced weights (sum over labels of 1000/(100+count))")
    t.add_argument("--samples_per_epoch", type=int, default=0,
                   help="clips drawn per epoch with --balanced_sampling (0: the training set size)")
    t.add_argument("--average_last", type=int, default=0,
                   help="model.pt = mean of the last N epoch-end checkpoints (0: best on validation)")
    a = p.add_argument_group("augmentation (training only)")
    a.add_argument("--mixup", type=float, default=0.0, help="mixup Beta(alpha, alpha); 0: off")
    a.add_argument("--mixup_prob", type=float, default=1.0, help="share of batches mixed")
    a.add_argument("--freqm", type=int, default=0, help="max mel bins per frequency mask (SpecAugment)")
    a.add_argument("--timem", type=int, default=0, help="max frames per time mask (SpecAugment)")
    a.add_argument("--num_freq_masks", type=int, default=1, help="frequency masks per clip")
    a.add_argument("--num_time_masks", type=int, default=1, help="time masks per clip")
    a.add_argument("--time_shift", type=int, default=0, help="max random roll in frames")
    a.add_argument("--patch_drop", type=int, default=0, help="patches dropped per clip (patch-out)")
    add_training_args(p)
    # the paper's fine-tuning settings (maskspec-paper.md); batch_size is per GPU
    p.set_defaults(epochs=80, warmup_epochs=5, base_lr=1e-3, weight_decay=0.05, betas=[0.9, 0.999], batch_size=32)
    return p


def check_args(args) -> None:
    """Option values argparse cannot check on its own."""
    checks = [
        (0.0 <= args.drop_path < 1.0, "--drop_path must be in [0, 1)"),
        (args.num_frames is None or args.num_frames >= 16, "--num_frames must be at least one patch (16)"),
        (0.0 <= args.label_smoothing < 1.0, "--label_smoothing must be in [0, 1)"),
        (0.0 < args.layer_decay <= 1.0, "--layer_decay must be in (0, 1]"),
        (args.samples_per_epoch >= 0 and args.average_last >= 0 and args.valid_batch_size >= 0,
         "--samples_per_epoch, --average_last and --valid_batch_size must not be negative"),
        (args.mixup >= 0 and 0.0 <= args.mixup_prob <= 1.0, "--mixup must be >= 0 and --mixup_prob in [0, 1]"),
        (min(args.freqm, args.timem, args.num_freq_masks, args.num_time_masks, args.time_shift, args.patch_drop) >= 0,
         "augmentation sizes must not be negative"),
        (args.valid_hop_frames is None or args.valid_hop_frames >= 1, "--valid_hop_frames must be >= 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    if args.average_last > 1 and args.keep_checkpoints and (
            args.keep_checkpoints < args.average_last or args.save_interval_steps):
        raise ValueError(f"--average_last {args.average_last} needs the last {args.average_last} epoch-end "
                         f"checkpoints: use --keep_checkpoints 0 or >= {args.average_last}, and "
                         f"--save_interval_steps 0")


def resolve_model(args, init: Optional[dict], num_mel_bins: int):
    """ModelConfig: the --init model's (or --model's) config < --model_conf < --drop_path, --num_frames."""
    from maskspec.models.configs import model_config

    if init is not None:
        if not init.get("model_config"):
            raise ValueError(f"--init {args.init}: has no model_config; it was not written by MaskSpec training")
        base = dict(init["model_config"])
    else:
        base = model_config(args.model, num_mel_bins=num_mel_bins).to_dict()
    base.update(args.model_conf)
    base["drop_path"] = args.drop_path
    if args.num_frames is not None:
        base["num_frames"] = args.num_frames
    cfg = model_config(base)
    if cfg.num_mel_bins != num_mel_bins:
        raise ValueError(f"the model takes {cfg.num_mel_bins} mel bins but the features of {args.train_data} have "
                         f"{num_mel_bins}")
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
    weights = class_balanced_weights(train_set.targets)
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


def run(args) -> int:
    import torch

    from maskspec.data.datadir import read_classes
    from maskspec.data.dataset import FeatDataset, collate
    from maskspec.data.feats import load_feat
    from maskspec.features.fbank import FbankConfig
    from maskspec.models.classifier import AudioClassifier
    from maskspec.models.configs import count_parameters, describe
    from maskspec.models.model_file import save_model_file
    from maskspec.tasks.augment import AugmentConfig
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
        check_args(args)
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
        detected = infer_task_type(train_set.targets, train_set.known is not None)
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
            args.task_type, cfg.num_frames, args.label_smoothing,
            AugmentConfig(mixup=args.mixup, mixup_prob=args.mixup_prob, freqm=args.freqm, timem=args.timem,
                          num_freq_masks=args.num_freq_masks, num_time_masks=args.num_time_masks,
                          time_shift=args.time_shift),
            patch_drop=args.patch_drop, freeze_encoder=args.freeze_encoder, valid_hop=args.valid_hop_frames,
            classes=classes)
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    from maskspec.train.cli import run_main

    return run_main(PROG, build_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
