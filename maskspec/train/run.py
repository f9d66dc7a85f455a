"""One training run, whatever the task: the skeleton that pre-training and fine-tuning share.

``run_training(args, recipe)`` does, in this order:

1. distributed setup (torchrun's environment), ``<exp_dir>/train.log``, the training options resolved;
2. ``recipe.prepare(run)``: what the task reads before anything else (e.g. the ``--init`` file, whose
   normalisation becomes the default);
3. ``<train_data>/stats.json`` (or ``--stats``) and ``<train_data>/fbank.yaml``, and from them the features'
   dimension (``feature_dim``);
4. ``recipe.model_config(run)``: the ``ModelConfig``, built from that dimension, so the datasets below are
   created knowing the model's input length;
5. ``recipe.datasets(run)`` -> (train, valid or None); then config.yaml and the log lines;
6. with the same seed on every rank: ``recipe.build_model``, ``recipe.param_groups``, ``recipe.build_task``,
   ``recipe.sampler``;
7. the shared ``Trainer`` with the checkpoint metadata (kind, model_config, fbank_config, stats, plus
   ``recipe.metadata``), ``fit()``;
8. on the main rank ``recipe.finish(run)`` (writes ``model.pt``), then all ranks meet and leave.

A new task type is a ``TrainingRecipe`` subclass (the pre-training one is ``maskspec.tasks.pretrain_run``, the
classification one ``maskspec.tasks.finetune``) and a command line that parses its options and calls
``run_training``.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
from typing import Any, Optional

logger = logging.getLogger("maskspec.train")


@dataclasses.dataclass
class Run:
    """What the steps of a run have built so far; a recipe reads and fills it."""

    args: Any
    dist: Any  # maskspec.train.distributed.DistInfo
    stats: Optional[dict] = None  # stats.json content, None when features are not normalised and none exists
    fbank: Optional[dict] = None  # resolved fbank.yaml of --train_data
    feat_dim: int = 0  # values per feature frame (mel bins, + 1 with an energy column)
    cfg: Any = None  # maskspec.models.configs.ModelConfig
    train_set: Any = None
    valid_set: Any = None
    model: Any = None
    task: Any = None
    result: Optional[dict] = None  # Trainer.fit()'s: step, valid, ...

    def path(self, name: str) -> str:
        """``<exp_dir>/<name>``."""
        return os.path.join(self.args.exp_dir, name)


class TrainingRecipe:
    """The task-specific parts of a training run; ``run_training`` calls them in the order of its docstring.

    Subclasses set ``kind`` (the checkpoint and model-file kind) and implement ``model_config``, ``datasets``,
    ``build_model``, ``build_task`` and ``finish``; the other hooks have defaults.
    """

    kind: str = ""
    # Whether <train_data>/fbank.yaml must exist (a model file needs it to featurise audio); else a warning.
    fbank_required: bool = True
    drop_last: bool = False  # of the default sampler
    best_mode: str = "max"  # of best_metric

    def prepare(self, run: Run) -> None:
        """Inputs the task reads first (before stats and features); may set defaults in ``run.args``."""

    def model_config(self, run: Run):
        """The ModelConfig for features of ``run.feat_dim`` values per frame."""
        raise NotImplementedError

    def datasets(self, run: Run) -> tuple[Any, Any]:
        """(training set, validation set or None), for ``run.cfg``."""
        raise NotImplementedError

    def describe_data(self, run: Run) -> str:
        """The log line about the data."""
        valid = run.valid_set
        return (f"train {len(run.train_set)} clips ({run.args.train_data}), valid "
                + (f"{len(valid)} clips ({run.args.valid_data})" if valid is not None else "none"))

    def build_model(self, run: Run):
        """The network (weights initialised or loaded; the seed is the same on every rank)."""
        raise NotImplementedError

    def param_groups(self, run: Run) -> list[dict]:
        from maskspec.train.optim import param_groups

        return param_groups(run.model, run.args.weight_decay)

    def build_task(self, run: Run):
        """The Task object of the trainer (``train_step``, ``validate``, optional ``on_epoch_end``)."""
        raise NotImplementedError

    def sampler(self, run: Run):
        """The training sampler: a shuffle of the whole set every epoch, sharded over the ranks."""
        from maskspec.train.distributed import DistributedShuffleSampler

        return DistributedShuffleSampler(len(run.train_set), seed=run.args.seed, rank=run.dist.rank,
                                         world_size=run.dist.world_size, shuffle=True, drop_last=self.drop_last)

    def collate_fn(self):
        """The batch collate function (a plain function: DataLoader workers may pickle it)."""
        from maskspec.data.dataset import collate

        return collate

    def best_metric(self, run: Run) -> Optional[str]:
        """The validation number that chooses best.pt (None: no best.pt)."""
        return None

    def metadata(self, run: Run) -> dict:
        """Checkpoint entries beyond kind, model_config, fbank_config and stats."""
        return {}

    def finish(self, run: Run) -> None:
        """After training, on the main rank only: write ``model.pt``."""
        raise NotImplementedError


def feature_dim(train_data: str, stats: Optional[dict]) -> int:
    """Values per frame of the features of ``train_data``: the stats' (they normalise every value), else the
    first feature matrix's."""
    if stats:
        return len(stats["mean"])
    from maskspec.data.datadir import iter_kv
    from maskspec.data.feats import load_feat

    for _, _, spec in iter_kv(os.path.join(train_data, "feats.scp")):
        return int(load_feat(spec).shape[1])
    raise ValueError(f"{train_data}/feats.scp: no utterances")


def run_training(args, recipe: TrainingRecipe) -> int:
    """Run ``recipe`` with the options ``args`` (see the module docstring); returns the exit status 0."""
    from maskspec.models.summary import count_parameters, describe
    from maskspec.train import distributed as D
    from maskspec.train.cli import load_input_stats, read_fbank_config
    from maskspec.train.config import resolve_training_args, save_config
    from maskspec.train.logs import setup_logging
    from maskspec.train.rng import seed_everything
    from maskspec.train.trainer import Trainer

    run = Run(args=args, dist=D.init_distributed(args.device))
    try:
        setup_logging(run.path("train.log"), run.dist.is_main, run.dist.rank)
        resolve_training_args(args, run.dist.world_size, run.dist.device.type)
        recipe.prepare(run)
        run.stats = load_input_stats(args)
        run.fbank = read_fbank_config(args.train_data, required=recipe.fbank_required)
        run.feat_dim = feature_dim(args.train_data, run.stats)
        run.cfg = recipe.model_config(run)
        run.train_set, run.valid_set = recipe.datasets(run)
        if run.dist.is_main:
            save_config(args, run.path("config.yaml"))
        logger.info("command: %s", " ".join(sys.argv))
        logger.info("%s; %d processes, device %s", recipe.describe_data(run), run.dist.world_size, run.dist.device)

        seed_everything(args.seed)  # identical initial weights on every rank
        run.model = recipe.build_model(run)
        logger.info("%s", describe(run.cfg))
        groups = recipe.param_groups(run)
        logger.info("parameters of the %s network: %.2fM (%d trainable)", recipe.kind,
                    count_parameters(run.model) / 1e6, count_parameters(run.model, trainable_only=True))
        run.task = recipe.build_task(run)
        metadata = dict(kind=recipe.kind, model_config=run.cfg.to_dict(), fbank_config=run.fbank, stats=run.stats,
                        **recipe.metadata(run))
        best = recipe.best_metric(run) if run.valid_set is not None else None
        trainer = Trainer(model=run.model, task=run.task, train_dataset=run.train_set,
                          train_sampler=recipe.sampler(run), collate_fn=recipe.collate_fn(), param_groups=groups,
                          args=args, exp_dir=args.exp_dir,
                          dist_info=run.dist, valid_dataset=run.valid_set, metadata=metadata, best_metric=best,
                          best_mode=recipe.best_mode, valid_batch_size=args.valid_batch_size or None)
        run.result = trainer.fit()
        if run.dist.is_main:
            recipe.finish(run)
        D.barrier()
    finally:
        D.cleanup()
    return 0
