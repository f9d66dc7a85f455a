# How this recipe runs its jobs (sourced by maskspec.sh). Every heavy step goes through one of these:
#   train_cmd   feature extraction, statistics, aggregation (CPU jobs; stage 2 runs --nj of them at once)
#   cuda_cmd    pre-training and fine-tuning (maskspec.sh adds --gpu <ngpu>)
#   decode_cmd  scoring (maskspec.sh adds --gpu 0 or 1)
# Options after the runner (--mem, --gpu, --time, --num-threads, --max-jobs-run) become scheduler arguments
# through conf/queue.conf (Grid Engine) or conf/slurm.conf (Slurm); run.pl accepts and ignores them.
# --num-threads is per process: a training job of --ngpu G > 1 asks for G times as many CPUs.
# LibriSpeech 100 h: one long CTC fine-tuning job (GPU), four decoding jobs.

# This machine (default).
export train_cmd="run.pl"
export cuda_cmd="run.pl"
export decode_cmd="run.pl"

# Grid Engine (qsub): edit conf/queue.conf for your queues, then use these lines instead.
# export train_cmd="queue.pl --mem 4G"
# export cuda_cmd="queue.pl --mem 32G --num-threads 8"
# export decode_cmd="queue.pl --mem 8G"

# Slurm (sbatch): edit conf/slurm.conf for your partitions, then use these lines instead.
# export train_cmd="slurm.pl --mem 4G"
# export cuda_cmd="slurm.pl --mem 32G --num-threads 8 --time 24:00:00"
# export decode_cmd="slurm.pl --mem 8G"
