# How the mini speech recipe runs its jobs: on this machine (see egs/TEMPLATE/cmd.sh for Grid Engine and Slurm).
#   train_cmd: feature extraction and statistics; cuda_cmd: pre-training and fine-tuning; decode_cmd: scoring
export train_cmd="run.pl"
export cuda_cmd="run.pl"
export decode_cmd="run.pl"
# export train_cmd="queue.pl --mem 2G"; export cuda_cmd="queue.pl --mem 8G"; export decode_cmd="queue.pl --mem 4G"
# export train_cmd="slurm.pl --mem 2G"; export cuda_cmd="slurm.pl --mem 8G"; export decode_cmd="slurm.pl --mem 4G"
