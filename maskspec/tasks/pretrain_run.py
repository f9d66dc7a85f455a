"""The pre-training run behind ``maskspec.bin.pretrain`` (recipe stage 3): the pre-training parts of the shared
run skeleton (``maskspec.train.run``).

Model from ``--model`` < ``--model_conf`` < one option per ``ModelConfig`` field; random crops of
``num_frames`` frames for training, the first ``num_frames`` of each clip for validation; ``best.pt`` = lowest
validation loss; ``model.pt`` = the weights after the last step (kind "pretrain"). The model config's
``objective`` picks the network and task: the paper's masked spectrogram prediction (default) or the bootstrap
objective (maskspec.models.bootstrap, maskspec.tasks.bootstrap), whose teacher the model file leaves out.
"""
from __future__ import annotations

import logging

from maskspec.train.run import Run, TrainingRecipe

logger = logging.getLogger("maskspec.pretrain")


class PretrainRecipe(TrainingRecipe):
    kind = "pretrain"
    fbank_required = False  # the model file then lacks feature settings; maskspec-export --fbank_config adds them
    drop_last = True  # equal batches: every step masks the same number of clips
    best_mode = "min"

    def prepare(self, run: Run) -> None:
        if run.args.valid_batch_size < 0 or run.args.num_images < 0:
            raise ValueError("--valid_batch_size and --num_images must not be negative")

    def model_config(self, run: Run):
        from maskspec.train.model_options import model_field_options, resolve_model_options

        names = [name for name, _ in model_field_options()]
        return resolve_model_options(run.args, run.args.model, names, run.feat_dim)

    def datasets(self, run: Run):
        from maskspec.data.dataset import FeatDataset

        args, n = run.args, run.cfg.num_frames
        train = FeatDataset(args.train_data, n, run.stats, args.normalize, crop="random", seed=args.seed)
        valid = FeatDataset(args.valid_data, n, run.stats, args.normalize, crop="start") if args.valid_data else None
        return train, valid

    def build_model(self, run: Run):
        from maskspec.models.bootstrap import build_pretrain_model

        return build_pretrain_model(run.cfg)  # the config's objective: the paper's (MaskSpecModel) or bootstrap

    def build_task(self, run: Run):
        if run.cfg.objective == "bootstrap":
            from maskspec.tasks.bootstrap import BootstrapTask

            return BootstrapTask(run.valid_set, run.args.num_images)
        from maskspec.tasks.pretrain import PretrainTask

        return PretrainTask(run.valid_set, run.args.num_images)

    def best_metric(self, run: Run):
        return "loss"

    def metadata(self, run: Run) -> dict:
        return dict(normalize=run.args.normalize, num_frames=run.cfg.num_frames)

    def finish(self, run: Run) -> None:
        from maskspec.models.model_file import save_model_file

        from maskspec.models.bootstrap import student_weights

        path = run.path("model.pt")
        # the bootstrap objective's EMA teacher is not kept: the student encoder is the pre-trained model
        save_model_file(path, kind="pretrain", model_config=run.cfg,
                        state_dict=student_weights(run.model.state_dict()), fbank_config=run.fbank,
                        stats=run.stats, normalize=run.args.normalize, classes=None,
                        task_type=None, num_frames=run.cfg.num_frames,
                        extra=dict(step=run.result["step"], valid=run.result["valid"]))
        logger.info("done after %d steps; wrote %s", run.result["step"], path)
