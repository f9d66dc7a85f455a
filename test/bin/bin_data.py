"""What the tests of the training CLIs share: finishing a generated labelled feature directory."""
import os

from maskspec.data.datadir import write_kv
from maskspec.features.fbank import FbankConfig
from maskspec.data.stats import compute_stats, write_stats

CLASSES = ["bird", "car", "dog"]


def finish_data_dir(d, labels, num_mel_bins, known=None):
    """Beside ``d/feats.scp``: utt2label (``labels``: utt -> "a,b"), utt2label_known when ``known`` is given,
    labels.txt (``CLASSES``), stats.json and fbank.yaml (``num_mel_bins`` mel bins), as a recipe's stage 2 leaves
    them. Returns ``d``."""
    write_kv(os.path.join(d, "utt2label"), labels)
    if known is not None:
        write_kv(os.path.join(d, "utt2label_known"), known)
    with open(os.path.join(d, "labels.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")
    write_stats(compute_stats(os.path.join(d, "feats.scp")), os.path.join(d, "stats.json"))
    FbankConfig(num_mel_bins=num_mel_bins).to_yaml(os.path.join(d, "fbank.yaml"))
    return d
