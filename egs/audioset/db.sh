# Root of your AudioSet copy (see README.md for the layout). Overridden by the AUDIOSET environment variable
# or by `./run.sh --db_root DIR`.
AUDIOSET=${AUDIOSET:-/data/corpora/audioset}
