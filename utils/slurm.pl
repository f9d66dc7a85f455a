#!/usr/bin/env perl
# Submits a command to Slurm as ONE array job (sbatch --array=1-N%max --parsable) and waits for it, Kaldi
# convention (same interface as run.pl and queue.pl).  Options come from conf/slurm.conf (or --config):
# --mem, --gpu (--gres=gpu:N), --num-threads (--cpus-per-task), --time, --max-jobs-run (the %max of the
# array); a partition is set in the config, e.g. "command sbatch --export=PATH -p cpu" or
# "option gpu=* -p gpu --gres=gpu:$0".  Run with --help for the details.
# The submission, job script and waiting are shared with queue.pl, which this script runs with the
# Slurm backend selected. Jobs run with the submitting shell's environment whatever --export says (the job
# script sets it again), and with SLURM_EXPORT_ENV=ALL, so that srun inside passes it on to every node.
use strict;
use warnings;
use FindBin;

our $BACKEND = 'slurm';
my $engine = "$FindBin::RealBin/queue.pl";
do $engine;
# queue.pl always exits, so reaching this line means it could not be loaded or died.
print STDERR "$0: " . ($@ ? "error in $engine: $@" : "cannot load $engine: $!\n");
exit 1;
