"""A waveform to model input, knowing nothing of data directories: audio decoding (``audio``), fbank settings and
computation (``fbank``), normalisation with stats.json (``normalize``). The jobs that run these over a data
directory (``maskspec.data.extract``, ``maskspec.data.stats``) sit one layer up, in ``maskspec.data``."""
