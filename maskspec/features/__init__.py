"""Audio decoding (``audio``), fbank settings and computation (``fbank``), one extraction job (``extract``) and
normalisation statistics (``stats``)."""
