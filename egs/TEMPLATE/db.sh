# Where the corpora are on this machine: set the roots you have (download them yourself; see each recipe's
# README for the expected layout). A recipe's local/data.sh reads its root from here, and fails with a clear
# message when it is empty or a file it needs is missing. --db_root on the command line overrides these.
AUDIOSET=          # holds class_labels_indices.csv, *_segments.csv and the audio files
ESC50=             # the ESC-50-master folder: meta/esc50.csv, audio/*.wav
SPEECHCOMMANDS=    # speech_commands_v0.02: <word>/*.wav, validation_list.txt, testing_list.txt
OPENMIC=           # openmic-2018: openmic-2018.npz, class-map.json, audio/, partitions/
DCASE2019_TASK1A=  # TAU-urban-acoustic-scenes-2019-development: audio/, meta.csv, evaluation_setup/
LIBRISPEECH=       # the folder holding LibriSpeech/<subset>/ (the unpacked openslr.org/12 archives)
