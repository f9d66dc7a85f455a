# Root of your Speech Commands v0.02 copy (speech_commands_v0.02.tar.gz unpacked: word folders,
# validation_list.txt, testing_list.txt). Overridden by SPEECHCOMMANDS or by `./run.sh --db_root DIR`.
SPEECHCOMMANDS=${SPEECHCOMMANDS:-/data/corpora/speech_commands_v0.02}
