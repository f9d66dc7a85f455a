"""Embeddings from a MaskSpec model file: one vector per clip (scene) and one per patch column (frame level).

Which network gives the embeddings:

* kind "classifier" (fine-tuned): its encoder; the scene embedding is ``AudioClassifier.embed``'s vector, the
  input of the classification head: patch tokens averaged, then ``fc_norm``; for a cls-pooled classifier
  (``pool: cls``, e.g. an imported tagger that reads its cls token) the encoder's cls token.
* kind "pretrain": the encoder of the pre-training model, without masking (mask_ratio 0); the scene embedding
  is the plain average of the patch tokens (a pre-training model has no ``fc_norm``), except for the bootstrap
  objective with an utterance loss (``maskspec.models.bootstrap.uses_cls_embedding``), whose cls token was
  trained to be the clip's vector: there it is the cls token. ``Embedder.scene_pooling`` names which.

Frame level: the encoder's patch tokens ``[F_p, T_p, D]`` averaged over frequency give one ``D`` vector per
``p``-frame column (``AudioClassifier.frame_embed``); the scene vector is the average of all columns (= of all
patch tokens), then ``fc_norm`` for a classifier; with cls pooling it is the cls token (averaged over the
windows of a long clip, each weighted by its number of columns).

Any length, windows and padding (documented choices):

* A clip of ``T`` frames is zero-padded at the end to whole patches, ``n_t = ceil(T / p)`` columns (0 = the
  normalised mean; at least one column, so a clip shorter than one patch still gets a vector).
* It is cut into consecutive windows of ``W`` frames, ``W`` = the model file's ``num_frames`` rounded down to
  whole patches, hop = ``W`` (no overlap); the last window holds the remaining columns. Each window is encoded
  on its own and the columns of all windows are concatenated, so column ``j`` of a long clip is column
  ``j mod (W/p)`` of window ``j div (W/p)``.
* The encoder sees only a window's own (patch-padded) frames: with the default "extend" positions, time
  column ``t`` has the same position code at any length, so no padding to ``W`` is needed. A model with
  "interpolate" positions was only ever shown ``W``-frame grids, so there the last window is zero-padded to
  ``W`` frames and only its own columns are kept.
* Batching: windows of the same length (all full windows, and equal tails) are stacked and encoded together;
  windows never share a forward pass with padding of another clip, so a clip's embeddings do not depend on the
  other clips in the batch (equal to one-by-one results up to float rounding).

Timestamps (milliseconds from the start of the audio): the centre of a column, i.e. the mean of the centres of
its ``p`` frames. With Kaldi frames (``snip_edges``; frame ``k`` spans ``[k * shift, k * shift + length)``)
column ``j`` is at ``(j * p + (p - 1) / 2) * shift + length / 2``: 87.5, 247.5, 407.5 ... ms for 16 frames of
10 ms shift and 25 ms length (shift and length taken in whole samples at the feature rate, as Kaldi does).
With centred framing (``framing: centered``, frame ``k`` centred on ``k * shift``) it is
``(j * p + (p - 1) / 2) * shift``: 75, 235, 395 ... ms.

A clip of more frames than a window but no more than the model's input (``num_frames`` not a multiple of ``p``:
the MaskSpec authors' tagger takes 1000 frames and encodes 992) is encoded as the model encodes its input: one
window, the frames beyond the last whole patch dropped.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence, Union

import numpy as np
import torch
from torch import nn

from maskspec.features.fbank import FbankConfig
from maskspec.inference.featurize import model_fbank
from maskspec.models.bootstrap import uses_cls_embedding
from maskspec.models.classifier import AudioClassifier
from maskspec.models.configs import model_config
from maskspec.models.model_file import ModelFileError, build_model

DEFAULT_BATCH_WINDOWS = 32
LEVELS = ("scene", "frame", "both")

Feats = Union[torch.Tensor, Sequence[Any]]


def column_times_ms(num_columns: int, patch_size: int, fbank: FbankConfig) -> torch.Tensor:
    """[num_columns] float64 centre times (ms) of patch columns 0..n-1 (see the module docstring)."""
    j = torch.arange(num_columns, dtype=torch.float64)
    return fbank.frame_center_ms(j * patch_size + (patch_size - 1) / 2.0)


def _embedding_network(model_file: Mapping[str, Any]) -> AudioClassifier:
    """An AudioClassifier whose ``frame_embed`` and ``fc_norm`` give the embeddings of ``model_file``.

    For a pre-training file the encoder of the (strictly loaded) MaskSpecModel is moved into a classifier shell
    whose ``fc_norm`` is the identity and which has no head (the shell is built on the meta device, so its own
    randomly initialised parts cost nothing and none of them survive).
    """
    net = build_model(model_file)
    if model_file["kind"] == "classifier":
        return net
    with torch.device("meta"):
        shell = AudioClassifier(model_config(dict(model_file["model_config"])), num_classes=1)
    shell.encoder = net.encoder
    shell.fc_norm = nn.Identity()
    shell.head = nn.Identity()
    return shell.eval()


class Embedder(nn.Module):
    """Scene and frame-level embeddings of normalised features ``[T, F]`` (see the module docstring).

    Args:
        model_file: dict from ``load_model_file``.
        device: where the network runs; outputs are on the same device. ``.to()`` moves it later.
        batch_windows: windows per forward pass.
    """

    def __init__(self, model_file: Mapping[str, Any], device: Union[str, torch.device] = "cpu",
                 batch_windows: int = DEFAULT_BATCH_WINDOWS):
        super().__init__()
        if batch_windows < 1:
            raise ValueError(f"batch_windows must be at least 1, got {batch_windows}")
        self.net = _embedding_network(model_file).to(device)
        cfg = self.net.cfg
        self.kind = model_file["kind"]
        self.patch_size = cfg.patch_shape[1]  # frames per column
        self.num_mel_bins = cfg.num_mel_bins
        self.embed_dim = cfg.embed_dim
        self.window_frames = max(self.patch_size, model_file["num_frames"] // self.patch_size * self.patch_size)
        self.input_frames = model_file["num_frames"]
        self.pad_to_window = cfg.pos_embed == "interpolate"
        self.batch_windows = batch_windows
        self.fbank = model_fbank(model_file) if model_file.get("fbank_config") is not None else None
        # the scene vector is the cls token (the head's input of a cls-pooled classifier, or the token the bootstrap
        # objective's utterance loss trained), not the column mean
        self.scene_from_cls = ((self.kind == "classifier" and cfg.pool == "cls")
                               or (self.kind == "pretrain" and uses_cls_embedding(cfg)))
        self.scene_pooling = "cls token" if self.scene_from_cls else "mean of patch tokens"  # said by the tools

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def num_columns(self, num_frames: int) -> int:
        """Columns (frame-level vectors) of a clip of ``num_frames`` frames: ceil(T / p), at least 1; a clip
        that fits the model's input (window < T <= num_frames of the model file) gives the window's columns."""
        if self.window_frames < num_frames <= self.input_frames:
            return self.window_frames // self.patch_size
        return max(1, -(-num_frames // self.patch_size))

    def times_ms(self, num_columns: int) -> torch.Tensor:
        """[num_columns] float64 column centres in ms; needs the model file's fbank settings."""
        if self.fbank is None:
            raise ModelFileError("model file has no fbank_config: frame timestamps are unknown")
        return column_times_ms(num_columns, self.patch_size, self.fbank)

    def _clips(self, feats: Feats) -> list[torch.Tensor]:
        """A list of float32 [T_i, F] tensors on the device from a [N, T, F] tensor/array or a list of [T, F]."""
        if isinstance(feats, (torch.Tensor, np.ndarray)) and feats.ndim == 3:
            feats = list(feats)
        clips = []
        for i, x in enumerate(feats):
            x = torch.as_tensor(x).to(self.device, torch.float32)
            if x.dim() != 2 or x.shape[1] != self.num_mel_bins or x.shape[0] == 0:
                raise ValueError(f"embed: clip {i} must be [T > 0, {self.num_mel_bins}] (frames, mel bins), "
                                 f"got shape {tuple(x.shape)}")
            clips.append(x)
        if not clips:
            raise ValueError("embed: no clips")
        return clips

    @torch.no_grad()
    def columns(self, feats: Feats) -> list[torch.Tensor]:
        """Frame-level embeddings: one float32 tensor [n_t_i, D] per clip (n_t_i = ``num_columns(T_i)``).

        ``feats``: a list of normalised [T_i, F] clips (numpy or torch) or a [N, T, F] batch.
        """
        return self._encode(feats)[0]

    @torch.no_grad()
    def embed(self, feats: Feats) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(frame-level [n_t_i, D], scene [D]) of each clip, from one pass of the encoder."""
        cols, cls = self._encode(feats)
        return [(c, self.pool(c, k)) for c, k in zip(cols, cls)]

    def _encode(self, feats: Feats) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Columns [n_t_i, D] of each clip and its cls token [D] (averaged over its windows, weighted by the
        columns each window gives)."""
        clips = self._clips(feats)
        p, w_cols = self.patch_size, self.window_frames // self.patch_size
        # Windows grouped by their input length: (clip index, first column, columns kept, input) per length.
        groups: dict[int, list[tuple[int, int, int, torch.Tensor]]] = {}
        out, cls = [], []
        for i, x in enumerate(clips):
            n_t = self.num_columns(x.shape[0])
            if self.window_frames < x.shape[0] <= self.input_frames:
                x = x[: self.window_frames]  # as the encoder crops its num_frames input to whole patches
            out.append(x.new_empty(n_t, self.embed_dim))
            cls.append(x.new_zeros(self.embed_dim))
            for c0 in range(0, n_t, w_cols):
                cols = min(w_cols, n_t - c0)
                length = self.window_frames if self.pad_to_window else cols * p
                piece = x[c0 * p: c0 * p + length]
                if piece.shape[0] < length:
                    piece = torch.nn.functional.pad(piece, (0, 0, 0, length - piece.shape[0]))
                groups.setdefault(length, []).append((i, c0, cols, piece))
        for items in groups.values():
            for s in range(0, len(items), self.batch_windows):
                chunk = items[s: s + self.batch_windows]
                x = torch.stack([piece for *_, piece in chunk])
                tokens, _, _ = self.net.encoder(x)  # as AudioClassifier.frame_embed, keeping the cls token
                f_p, t_p = self.net.encoder.grid(x.shape[1])
                emb = tokens[:, 1:].reshape(x.shape[0], f_p, t_p, -1).mean(dim=1)  # [B, L/p, D]
                for (i, c0, cols, _), e, c in zip(chunk, emb, tokens[:, 0]):
                    out[i][c0: c0 + cols] = e[:cols]
                    cls[i] += c * (cols / out[i].shape[0])
        return out, cls

    def pool(self, columns: torch.Tensor, cls: torch.Tensor | None = None) -> torch.Tensor:
        """Scene embedding [D] of one clip from its columns [n_t, D]: their mean, then fc_norm (classifier); a
        cls-pooled classifier (``scene_from_cls``) takes its cls token ``cls`` [D] instead."""
        with torch.no_grad():
            if self.scene_from_cls:
                if cls is None:
                    raise ValueError("embed: a cls-pooled model's scene embedding is its cls token; use "
                                     "Embedder.embed or Embedder.scene")
                return self.net.fc_norm(cls)
            return self.net.fc_norm(columns.mean(dim=0))

    def scene(self, feats: Feats) -> torch.Tensor:
        """[N, D] float32 scene embeddings of N clips (list of [T_i, F] or a [N, T, F] batch)."""
        return torch.stack([scene for _, scene in self.embed(feats)])

    def timestamps(self, feats: Feats) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeddings [N, n_t, D] float32, timestamps [N, n_t] float32 ms) for clips with the same number of
        columns (e.g. a [N, T, F] batch); clips of different lengths: use ``columns`` and ``times_ms``."""
        cols = self.columns(feats)
        lengths = {c.shape[0] for c in cols}
        if len(lengths) != 1:
            raise ValueError(f"timestamps: clips have different numbers of columns {sorted(lengths)}; "
                             f"use Embedder.columns for clips of different lengths")
        emb = torch.stack(cols)
        ts = self.times_ms(emb.shape[1]).to(device=emb.device, dtype=torch.float32)
        return emb, ts.unsqueeze(0).expand(emb.shape[0], -1).contiguous()
