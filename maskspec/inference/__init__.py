"""Using a model file outside training: features from raw audio (``featurize``), a classifier ready to predict
(``classifier``), embeddings (``embed``) and the pictures of a scored set (``score_plots``). The command lines in
``maskspec.bin`` (score, maskspec-infer, maskspec-embed) and ``maskspec.hear`` sit on top of it; clip-level
windowing of a classifier is ``maskspec.models.windows`` (fine-tuning validation uses it too)."""
