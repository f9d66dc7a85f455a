"""Fine-tuning a MaskSpec encoder for classification (recipe stage 4): the classification parts of the shared
run skeleton (``maskspec.train.run``) behind ``maskspec.bin.finetune``.

The options are documented in ``maskspec.bin.finetune``. ``ClassificationRecipe`` reads ``--init``, builds the
model config from it, the labelled data sets, the classifier (encoder from ``--init`` or random), the sampler
(shuffled or class-balanced) and the task, and writes ``model.pt`` (best, averaged or last weights).
"""
from __future__ import annotations

import logging
import math
import os
from typing import Optional

from maskspec.train.run import Run, TrainingRecipe

logger = logging.getLogger("maskspec.finetune")


def resolve_model(args, init: Optional[dict], num_mel_bins: int):
    """ModelConfig: the --init model's (or --model's) config < --model_conf < --drop_path, --num_frames."""
    from maskspec.train.model_options import resolve_model_options

    if init is not None and not init.get("model_config"):
        raise ValueError(f"--init {args.init}: has no model_config; it was not written by MaskSpec training")
    base = args.model if init is None else init["model_config"]
    cfg = resolve_model_options(args, base, ("drop_path", "num_frames"), num_mel_bins, write_back=("num_frames",))
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


def check_init_fbank(init: Optional[dict], fbank: dict, args) -> None:
    """Warn when the fbank settings of ``--train_data`` differ from those the ``--init`` model was trained on."""
    from maskspec.features.fbank import FbankConfig

    if init is None or not init.get("fbank_config"):
        return
    init_fbank = FbankConfig.from_dict(dict(init["fbank_config"]), source=f"--init {args.init}").to_dict()
    diff = sorted(k for k in fbank if fbank[k] != init_fbank.get(k))
    if diff:
        logger.warning("fbank settings of %s differ from those of --init in %s", args.train_data, diff)


class ClassificationRecipe(TrainingRecipe):
    """Single- or multi-label classification (``--task_type``), the model from ``--init`` or from scratch."""

    kind = "classifier"
    fbank_required = True  # model.pt must be able to featurise raw audio
    best_mode = "max"

    def prepare(self, run: Run) -> None:
        from maskspec.tasks.classification import read_init

        args = run.args
        self.init = None if args.init.strip().lower() == "none" else read_init(args.init)
        if args.normalize is None:
            args.normalize = (self.init or {}).get("normalize") or "per_bin"

    def model_config(self, run: Run):
        check_init_fbank(self.init, run.fbank, run.args)
        return resolve_model(run.args, self.init, run.feat_dim)

    def datasets(self, run: Run):
        from maskspec.data.datadir import read_classes
        from maskspec.data.dataset import FeatDataset
        from maskspec.tasks.classification import infer_task_type

        args = run.args
        self.classes = read_classes(args.train_data)
        train = FeatDataset(args.train_data, run.cfg.num_frames, run.stats, args.normalize, crop="random",
                            seed=args.seed, with_labels=True, classes=self.classes)
        detected = infer_task_type(train.labels)
        if args.task_type == "auto":
            args.task_type = detected
        elif args.task_type == "single_label" and detected == "multi_label":
            raise ValueError(f"--task_type single_label, but {args.train_data} has clips with other than one label "
                             f"or partial labels (utt2label_known)")
        valid = (FeatDataset(args.valid_data, None, run.stats, args.normalize, crop="none", with_labels=True,
                             classes=self.classes) if args.valid_data else None)
        return train, valid

    def describe_data(self, run: Run) -> str:
        return f"{run.args.task_type}, {len(self.classes)} classes; {super().describe_data(run)}"

    def network(self, run: Run):
        """The randomly initialised network that build_model loads --init into."""
        from maskspec.models.classifier import AudioClassifier

        return AudioClassifier(run.cfg, len(self.classes))

    def build_model(self, run: Run):
        from maskspec.tasks.classification import load_init

        args = run.args
        model = self.network(run)
        if self.init is not None:
            load_init(model, self.init, args.ignore_init_mismatch, where=f"--init {args.init}")
        else:
            logger.info("--init none: training from random initialisation")
        if args.freeze_encoder:
            model.freeze_encoder()
        return model

    def param_groups(self, run: Run) -> list[dict]:
        from maskspec.train.optim import param_groups

        model, args = run.model, run.args
        return param_groups(model, args.weight_decay, layer_id=model.layer_id, num_layers=model.num_layers,
                            layer_decay=1.0 if args.freeze_encoder else args.layer_decay)

    def build_task(self, run: Run):
        from maskspec.tasks.augment import AugmentConfig, LogMelScale
        from maskspec.tasks.classification import ClassificationTask

        args = run.args
        return ClassificationTask(
            args.task_type, run.cfg.num_frames, args.label_smoothing, AugmentConfig.from_args(args),
            patch_drop=args.patch_drop, freeze_encoder=args.freeze_encoder, valid_hop=args.valid_hop_frames,
            classes=self.classes, feature_scale=LogMelScale.from_features(run.stats, args.normalize, run.fbank))

    def sampler(self, run: Run):
        return build_sampler(run.args, run.train_set, run.dist)

    def best_metric(self, run: Run):
        from maskspec.tasks.metrics import PRIMARY_METRIC

        return PRIMARY_METRIC[run.args.task_type]

    def metadata(self, run: Run) -> dict:
        return dict(classes=self.classes, task_type=run.args.task_type)

    def finish(self, run: Run) -> None:
        import torch

        from maskspec.models.model_file import save_model_file

        args, model, valid_set = run.args, run.model, run.valid_set
        state_dict, selection = final_weights(args, valid_set is not None)
        if selection["selected"] == "average" and valid_set is not None:
            model.load_state_dict(state_dict)
            loader = torch.utils.data.DataLoader(valid_set, batch_size=args.valid_batch_size or args.batch_size,
                                                 collate_fn=self.collate_fn(), num_workers=args.num_workers)
            model.eval()
            with torch.no_grad():
                selection["valid"] = run.task.metrics(*run.task.evaluate(model.to(run.dist.device), loader)[1:])
            logger.info("averaged weights on %s:%s", args.valid_data,
                        "".join(f" {k} {v:.5g}" for k, v in selection["valid"].items()))
        path = run.path("model.pt")
        save_model_file(path, kind="classifier", model_config=run.cfg, state_dict=state_dict, fbank_config=run.fbank,
                        stats=run.stats, normalize=args.normalize, classes=self.classes, task_type=args.task_type,
                        num_frames=run.cfg.num_frames,
                        extra=dict(init=args.init, step=run.result["step"], freeze_encoder=args.freeze_encoder,
                                   **{k: _finite(v) for k, v in selection.items()}))
        logger.info("done after %d steps; wrote %s", run.result["step"], path)


def _finite(value):
    """NaN/inf (an undefined metric) stored as None so the model file stays plain data."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value
