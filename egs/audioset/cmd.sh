# How this recipe runs its jobs (sourced by maskspec.sh). Every heavy step goes through one of these:
#   train_cmd   feature extraction, statistics, aggregation (CPU jobs; stage 2 runs --nj of them at once)
#   cuda_cmd    pre-training and fine-tuning (maskspec.sh adds --gpu <ngpu>)
#   decode_cmd  scoring (maskspec.sh adds --gpu 0 or 1)
# Options after the runner (--mem, --gpu, --time, --num-threads, --max-jobs-run) become scheduler arguments
# through conf/queue.conf (Grid Engine) or conf/slurm.conf (Slurm); run.pl accepts and ignores them.
# --num-threads is per process: a training job of --ngpu G > 1 asks for G times as many CPUs.
# AudioSet: pre-training (stage 3) runs for days on 8 GPUs; 8 data-loader workers per GPU (pretrain_base.yaml)
# keep them fed: 10 CPUs per process, 80 per node with --ngpu 8.

# This machine (default).
export train_cmd="run.pl"
export cuda_cmd="run.pl"
export decode_cmd="run.pl"

# Grid Engine (qsub): edit conf/queue.conf for your queues, then use these lines instead.
# export train_cmd="queue.pl --mem 4G"
# export cuda_cmd="queue.pl --mem 64G --num-threads 10"
# export decode_cmd="queue.pl --mem 8G"

# Slurm (sbatch): edit conf/slurm.conf for your partitions, then use these lines instead.
# export train_cmd="slurm.pl --mem 4G"
# export cuda_cmd="slurm.pl --mem 64G --num-threads 10 --time 120:00:00"
# export decode_cmd="slurm.pl --mem 8G"
