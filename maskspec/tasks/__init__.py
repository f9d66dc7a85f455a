"""Tasks run by the shared trainer (pre-training, classification) and their helpers (augmentation, metrics,
inference). A task provides ``train_step``, ``validate`` and optionally ``on_epoch_end``; see
maskspec.train.trainer."""
