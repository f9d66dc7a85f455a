# Root of your OpenMIC-2018 copy (openmic-2018-v1.0.0.tgz unpacked: openmic-2018.npz, class-map.json,
# partitions/, audio/). Overridden by the OPENMIC2018 environment variable or by `./run.sh --db_root DIR`.
OPENMIC2018=${OPENMIC2018:-/data/corpora/openmic-2018}
