"""MaskSpec: masked spectrogram prediction for self-supervised audio pre-training."""
__version__ = "0.1.0"
