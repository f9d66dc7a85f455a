"""Small helpers shared by several packages: atomic file writes (``atomic``), strict dataclass keys (``fields``),
JSON files read with errors naming the file (``jsonfile``), and the ``--device`` choice of the command lines
(``device``)."""
