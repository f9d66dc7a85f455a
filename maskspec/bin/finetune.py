"""Fine-tune a MaskSpec encoder for audio classification (recipe stage 4).

e.g.:
  python -m maskspec.bin.finetune --config conf/finetune.yaml --train_data dump/fbank/train_fold1 \\
      --valid_data dump/fbank/test_fold1 --exp_dir exp/esc50_fold1 --init ../audioset/exp/pretrain_base/model.pt
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

import sys
from typing import Optional, Sequence

PROG = "maskspec.bin.finetune"


def build_parser():
    from maskspec.features.normalize import NORMALIZE_MODES
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
    t.add_argument("--task_type", default="auto", choices=("auto", "single_label", "multi_label", "ctc"),
                   help="auto: multi_label if utt2label_known exists or a clip has != 1 label; ctc: speech "
                        "recognition from <train_data>/text (maskspec.tasks.ctc_finetune)")
    t.add_argument("--label_smoothing", type=float, default=0.0, help="label smoothing of the loss")
    t.add_argument("--layer_decay", type=float, default=0.75, help="layer-wise lr decay (1: none)")
    t.add_argument("--balanced_sampling", type=str2bool, default=False,
                   help="draw clips with class-balanced weights (sum over labels of 1000/(100+count))")
    t.add_argument("--samples_per_epoch", type=int, default=0,
                   help="clips drawn per epoch with --balanced_sampling (0: the training set size)")
    t.add_argument("--average_last", type=int, default=0,
                   help="model.pt = mean of the last N epoch-end checkpoints (0: best on validation)")
    c = p.add_argument_group("speech recognition (--task_type ctc)")
    c.add_argument("--token_list", type=str_or_none, default=None, help="tokens.txt of the token-list step")
    c.add_argument("--bpemodel", type=str_or_none, default=None,
                   help="sentencepiece model beside tokens.txt (none: character units)")
    c.add_argument("--ctc_upsample", type=int, default=0,
                   help="output steps per patch column (0: patch_time // 4, at least 1: 4 for 16x16 patches, one "
                        "step per token for frame patches such as 64x4)")
    a = p.add_argument_group("augmentation (training only)")
    a.add_argument("--mixup", type=float, default=0.0, help="mixup Beta(alpha, alpha); 0: off")
    a.add_argument("--mixup_prob", type=float, default=1.0, help="share of batches mixed")
    a.add_argument("--freqm", type=int, default=0, help="max mel bins per frequency mask (SpecAugment)")
    a.add_argument("--timem", type=int, default=0, help="max frames per time mask (SpecAugment)")
    a.add_argument("--num_freq_masks", type=int, default=1, help="frequency masks per clip")
    a.add_argument("--num_time_masks", type=int, default=1, help="time masks per clip")
    a.add_argument("--time_shift", type=int, default=0, help="max random roll in frames")
    a.add_argument("--gain_db", type=float, default=0.0, help="random gain in [-gain_db, gain_db] dB per clip")
    a.add_argument("--filter_db", type=float, default=0.0, help="random smooth filter within +-filter_db dB")
    a.add_argument("--filter_points", type=int, default=5, help="control points of the random filter curve")
    a.add_argument("--noise_prob", type=float, default=0.0,
                   help="share of clips given another clip of the batch as background noise")
    a.add_argument("--noise_snr_min", type=float, default=10.0, help="lowest background SNR (dB)")
    a.add_argument("--noise_snr_max", type=float, default=30.0, help="highest background SNR (dB)")
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
        (args.ctc_upsample >= 0, "--ctc_upsample must be at least 1 (or 0: automatic)"),
        (args.task_type != "ctc" or not (args.mixup or args.time_shift or args.balanced_sampling or args.patch_drop),
         "--task_type ctc: --mixup, --time_shift, --balanced_sampling and --patch_drop do not apply to transcripts"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    from maskspec.tasks.augment import AugmentConfig

    AugmentConfig.from_args(args)  # the augmentation options' own checks
    if args.average_last > 1 and args.keep_checkpoints and (
            args.keep_checkpoints < args.average_last or args.save_interval_steps):
        raise ValueError(f"--average_last {args.average_last} needs the last {args.average_last} epoch-end "
                         f"checkpoints: use --keep_checkpoints 0 or >= {args.average_last}, and "
                         f"--save_interval_steps 0")


def run(args) -> int:
    check_args(args)
    from maskspec.train.run import run_training

    if args.task_type == "ctc":
        from maskspec.tasks.ctc_finetune import CTCRecipe

        return run_training(args, CTCRecipe())
    from maskspec.tasks.finetune import ClassificationRecipe

    return run_training(args, ClassificationRecipe())


def main(argv: Optional[Sequence[str]] = None) -> int:
    from maskspec.utils.cli import run_main

    return run_main(PROG, build_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
