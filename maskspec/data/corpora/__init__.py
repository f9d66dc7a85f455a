"""Corpus readers for the recipes: each module parses one corpus in its official layout and writes Kaldi data
directories (see docs/ARCHITECTURE.md) with the official splits.

Modules: ``audioset``, ``esc50``, ``speechcommands``, ``openmic``, ``dcase2019``; shared helpers in ``common``.
Each is a CLI, ``python -m maskspec.data.corpora.<name> --db_root D --out_dir data``, called by the recipe's
``local/data.sh``.
"""
