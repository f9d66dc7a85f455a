# Root of your ESC-50 copy (the ESC-50-master folder of the GitHub archive: meta/esc50.csv and audio/).
# Overridden by the ESC50 environment variable or by `./run.sh --db_root DIR`.
ESC50=${ESC50:-/data/corpora/ESC-50-master}
