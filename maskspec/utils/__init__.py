"""Small helpers shared by several packages: atomic file writes (``atomic``), strict dataclass keys (``fields``),
JSON files read with errors naming the file (``jsonfile``), the ``--device`` choice of the command lines
(``device``), and random draws with a generator on any device (``rand``)."""
