# Root of your TAU Urban Acoustic Scenes 2019 development set (all zip parts unpacked into one folder: audio/,
# meta.csv, evaluation_setup/). Overridden by the DCASE2019_TASK1A environment variable or `./run.sh --db_root DIR`.
DCASE2019_TASK1A=${DCASE2019_TASK1A:-/data/corpora/TAU-urban-acoustic-scenes-2019-development}
