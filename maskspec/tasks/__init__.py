"""Tasks run by the shared trainer (pre-training, classification) and their helpers (augmentation, metrics). A
task provides ``train_step``, ``validate`` and optionally ``on_epoch_end``; see maskspec.train.trainer. Using a
trained model file (features from audio, embeddings, score pictures) is ``maskspec.inference``."""
