#!/usr/bin/env perl
# Submits a command to a batch scheduler as ONE array job and waits for it, Kaldi convention (same interface
# as run.pl).  This file is the engine for two schedulers: run directly it drives Grid Engine (qsub);
# slurm.pl sets $main::BACKEND = 'slurm' and runs this file to drive Slurm (sbatch).  The schedulers differ
# only in the %BACKENDS table below.
#
# How it works: the options are turned into scheduler arguments through a config file; a job script is
# written to <log-dir>/q/<name>.sh; each task turns its task id into the job id, substitutes it into the
# log name and the command, runs the command through bash, writes the log (command, start time, output,
# end time and exit code) and then an exit-status file <log-dir>/q/done.<name>.<task>.  This script polls
# for those files, so it does not depend on the scheduler's own wait mechanism.
# The job's environment is the submitting shell's, whatever the scheduler passes (sbatch --export=PATH and
# qsub -v PATH pass only PATH): the job script sets every exported variable of this process again, except
# those that belong to the host, the login or the scheduler's job (see host_or_job_variable), before
# sourcing ./path.sh.  So OMP_NUM_THREADS, MASKSPEC_RDZV_PORT or NCCL_* set by run.sh reach every task.
use strict;
use warnings;
use Cwd qw(getcwd);
use File::Basename qw(basename dirname);
use File::Path qw(make_path);
use FindBin;
use POSIX qw(strftime);
use Time::HiRes qw(sleep time);

require "$FindBin::RealBin/lib/jobs.pl";  # fail, shell_quote, join_command, parse_jobs, for_job, ...

our $BACKEND;
$BACKEND //= 'sge';

# Default configs, used when neither --config nor the backend's conf file exists.  Config format:
#   command <submit program and fixed arguments>
#   option <name>=* <arguments, $0 replaced by the value>      (any value)
#   option <name>=<value> [<arguments>]                         (that exact value; wins over =*)
#   default <name>=<value>                                      (used when the option is not given)
# An option given on the command line that the config does not describe is an error.
my %BACKENDS = (
  sge => {
    config_file => 'conf/queue.conf',
    default_config => <<'END',
command qsub -v PATH -cwd -S /bin/bash -j y -l arch=*64*
option mem=* -l mem_free=$0
option mem=0
option num_threads=* -pe smp $0
option num_threads=1
option max_jobs_run=* -tc $0
option gpu=* -l gpu=$0 -q g.q
option gpu=0
option time=* -l h_rt=$0
default gpu=0
END
    task_var => 'SGE_TASK_ID',
    job_setup => '',
    # Grid Engine expands the $TASK_ID pseudo variable in -o paths itself.
    array_args => sub { my ($n, $qbase) = @_; ('-o', "$qbase.\$TASK_ID.out", '-t', "1:$n") },
    max_jobs_in_array => 0,
    job_id => sub { $_[0] =~ /(\d+)/ ? $1 : undef },
    alive => sub { my ($id) = @_; return system_quiet('qstat', '-j', $id) == 0; },
    alive_program => 'qstat',
    cancel => ['qdel'],
  },
  slurm => {
    config_file => 'conf/slurm.conf',
    default_config => <<'END',
command sbatch --export=PATH
option mem=* --mem=$0
option mem=0
option num_threads=* --cpus-per-task=$0
option num_threads=1
option gpu=* --gres=gpu:$0
option gpu=0
option time=* --time=$0
option num_nodes=* --nodes=$0 --ntasks-per-node=1
option num_nodes=1 --ntasks=1
default gpu=0
default num_nodes=1
END
    task_var => 'SLURM_ARRAY_TASK_ID',
    # srun inside the job (utils/torchrun_nodes.sh) passes the job's environment on, not --export=PATH's.
    job_setup => "export SLURM_EXPORT_ENV=ALL\n",
    array_args => sub {
      my ($n, $qbase, $max) = @_;
      return ('-o', "$qbase.%a.out", '--array=1-' . $n . (defined $max ? "%$max" : ''), '--parsable');
    },
    # Slurm limits concurrent tasks with "%N" in --array, so --max-jobs-run is not a config option there.
    max_jobs_in_array => 1,
    job_id => sub { $_[0] =~ /^\s*(\d+)/ ? $1 : undef },
    alive => sub {
      my ($id) = @_;
      my $out = `squeue -h -j $id 2>/dev/null`;
      return $? == 0 && defined $out && $out =~ /\S/;
    },
    alive_program => 'squeue',
    cancel => ['scancel'],
  },
);
my $be = $BACKENDS{$BACKEND} or die "$0: unknown backend '$BACKEND'\n";

my $usage = <<"END";
Usage: $0 [options] [JOB=1:N] <log-file> <command> [<arg>...]
Submits <command> as one array job of N tasks, waits for all of them and exits 1 if any failed, naming the
first failed log.  The range variable (any name, JOB here) is replaced by the job id in <log-file> and in
the command, which runs through bash (with pipefail) from the current directory, after ./path.sh if present.
A single command argument is used as it is, so "a | b > c" works; several arguments are joined, those
holding spaces being quoted, as in Kaldi ("\\|" passes a pipe).
e.g.: $0 --mem 4G JOB=1:8 exp/log/fbank.JOB.log python -m maskspec.bin.compute_fbank --wav_scp data/split8/JOB/wav.scp
Options (mapped to scheduler arguments by the config file):
  --mem M            memory per job, e.g. 4G
  --gpu N            GPUs per job (default 0)
  --num-threads N    CPU threads per job (default 1)
  --max-jobs-run N   tasks running at once
  --time T           run-time limit, HH:MM:SS
  --num-nodes N      nodes per job (Slurm's default config; for utils/torchrun_nodes.sh)
  --procs-per-node P processes the job starts on each node, e.g. torchrun's ranks (default 1): the CPUs
                     asked for (the config's num_threads option) are --num-threads x P
  --config F         config file (default: $be->{config_file} if it exists, else a built-in one;
                     any other "option name=..." it describes becomes a --name option)
Environment: the job runs with this shell's exported variables (not the host's, login's or scheduler's own:
HOSTNAME, HOME, TMPDIR, CUDA_VISIBLE_DEVICES, SLURM_*, SGE_*, ...), whatever the config's --export or -v say.
MASKSPEC_QUEUE_GRACE (seconds, default 60) is how long to wait for the exit-status files of
tasks that the scheduler no longer lists before counting them as failed.
Default config:
$be->{default_config}
END

sub system_quiet {
  my @cmd = @_;
  my $pid = fork();
  return -1 unless defined $pid;
  if ($pid == 0) {
    open(STDOUT, '>', '/dev/null');
    open(STDERR, '>', '/dev/null');
    exec(@cmd) or exit 127;
  }
  waitpid($pid, 0);
  return $?;
}

# Variables that belong to the host, the login session or the scheduler's job rather than to the recipe: the
# job keeps its own values of these (its host name, home, scratch folder, GPUs, task ids).
my $HOST_OR_JOB_PREFIX = qr/^(?:SLURM|SBATCH|SALLOC|SRUN|SGE|PBS|LSB|PMI|PMIX|OMPI|SSH|XDG|DBUS)_/;
my %HOST_OR_JOB = map { $_ => 1 } qw(HOSTNAME HOST HOME USER LOGNAME SHELL MAIL PWD OLDPWD SHLVL _ TERM
  DISPLAY TMPDIR TMP TEMP JOB_ID JOB_NAME JOB_SCRIPT TASK_ID QUEUE NHOSTS NQUEUES NSLOTS PE PE_HOSTFILE
  ENVIRONMENT REQUEST RESTARTED ARC CUDA_VISIBLE_DEVICES GPU_DEVICE_ORDINAL ROCR_VISIBLE_DEVICES
  HIP_VISIBLE_DEVICES KRB5CCNAME LS_COLORS PS1 PROMPT_COMMAND COLUMNS LINES);
# SLURM_CONF says which cluster the client commands talk to: the user's, kept.
sub host_or_job_variable { return $_[0] ne 'SLURM_CONF' && ($HOST_OR_JOB{$_[0]} || $_[0] =~ $HOST_OR_JOB_PREFIX); }

# 'export NAME=value' lines that give a job this process's environment (names a shell can set only).
sub environment_exports {
  my @names = sort grep { /^[A-Za-z_][A-Za-z0-9_]*$/ && !host_or_job_variable($_) } keys %ENV;
  return join('', map { "export $_=" . shell_quote($ENV{$_}) . "\n" } @names);
}

sub in_path {
  my ($prog) = @_;
  return scalar grep { -x "$_/$prog" } split(/:/, $ENV{PATH} // '');
}

# Returns (command words, {name => {value|'*' => args}}, {name => default}) from config text.
sub parse_config {
  my ($text, $source) = @_;
  my (@command, %options, %defaults);
  my $lineno = 0;
  for my $line (split(/\n/, $text)) {
    $lineno++;
    $line =~ s/#.*$//;
    $line =~ s/^\s+|\s+$//g;
    next if $line eq '';
    if ($line =~ /^command\s+(\S.*)$/) {
      @command = split(/\s+/, $1);
    } elsif ($line =~ /^option\s+(\w+)=(\S+)(?:\s+(.*))?$/) {
      $options{$1}{$2} = $3 // '';
    } elsif ($line =~ /^default\s+(\w+)=(\S+)$/) {
      $defaults{$1} = $2;
    } else {
      fail("$source:$lineno: cannot parse '$line' (expected command, option or default)");
    }
  }
  fail("$source: no 'command' line") unless @command;
  return (\@command, \%options, \%defaults);
}

# Scheduler arguments for one option value.
sub option_args {
  my ($options, $name, $value, $source) = @_;
  my $choices = $options->{$name};
  my $dashed = $name =~ tr/_/-/r;
  fail("option --$dashed is not described in config $source") unless $choices;
  my $args = $choices->{$value};
  if (!defined $args) {
    fail("option --$dashed $value is not allowed by config $source") unless exists $choices->{'*'};
    ($args = $choices->{'*'}) =~ s/\$0/$value/g;
  }
  return split(' ', $args);
}

# --- command line ---
my (@given, %given);
while (@ARGV && $ARGV[0] =~ /^-/) {
  my $arg = shift @ARGV;
  if ($arg eq '--help' || $arg eq '-h') { print $usage; exit 0; }
  my ($name, $value) = $arg =~ /^--([^=]+)=(.*)$/s ? ($1, $2) : ($arg =~ /^--(.+)$/ ? ($1, undef) : ());
  fail("unknown option $arg (see --help)") unless defined $name && $name =~ /^[\w-]+$/;
  $name =~ tr/-/_/;
  if (!defined $value) {
    fail("option $arg needs a value") unless @ARGV;
    $value = shift @ARGV;
  }
  push @given, $name unless exists $given{$name};
  $given{$name} = $value;
}
check_job_counts(\%given);
fail("--gpu must be a non-negative integer, got '$given{gpu}'")
  if defined $given{gpu} && $given{gpu} !~ /^\d+$/;
my $procs = delete $given{procs_per_node} // 1;
@given = grep { $_ ne 'procs_per_node' } @given;
fail("--procs-per-node must be a positive integer, got '$procs'") unless $procs =~ /^\d+$/ && $procs > 0;

my $jobs = parse_jobs(\@ARGV, $usage);
my ($var, $first, $last, $log_template, $cmd_template) = @$jobs{qw(var first last log cmd)};
my $num_tasks = $last - $first + 1;

# --- config ---
my ($config_text, $config_source);
if (defined $given{config}) {
  $config_source = $given{config};
} elsif (-f $be->{config_file}) {
  $config_source = $be->{config_file};
}
if (defined $config_source) {
  open(my $fh, '<', $config_source) or fail("cannot read config file $config_source: $!");
  local $/;
  $config_text = <$fh>;
  close($fh);
} else {
  ($config_text, $config_source) = ($be->{default_config}, 'built-in default');
}
my ($command, $options, $defaults) = parse_config($config_text, $config_source);
my %value = (%$defaults, %given);
my @names = (@given, sort grep { !exists $given{$_} } keys %$defaults);
# Per-process CPUs: P processes per node need P times the threads of one (torchrun's ranks each get theirs).
if ($procs > 1) {
  $value{num_threads} = ($value{num_threads} // 1) * $procs;
  push @names, 'num_threads' unless grep { $_ eq 'num_threads' } @names;
  fail("--procs-per-node $procs needs CPUs per process, but config $config_source does not describe "
       . "num_threads (e.g. 'option num_threads=* --cpus-per-task=\$0')") unless $options->{num_threads};
}
my @submit_args;
for my $name (@names) {
  next if $name eq 'config';
  next if $name eq 'max_jobs_run' && $be->{max_jobs_in_array};
  push @submit_args, option_args($options, $name, $value{$name}, $config_source);
}
my $threads = $value{num_threads} // 1;

# --- files ---
# The q/ folder sits beside the logs; a log folder named after the job id contributes its parent.
my $logdir = dirname($log_template);
if ($var ne '' && index($logdir, $var) >= 0) {
  my @parts = split(m{/}, $logdir, -1);
  my @keep;
  for my $part (@parts) { last if index($part, $var) >= 0; push @keep, $part; }
  $logdir = @keep ? join('/', @keep) : '.';
  $logdir = '/' if $logdir eq '';
}
my $qdir = "$logdir/q";
my $base = basename($log_template);
$base =~ s/\.[^.]*$// unless $base =~ /^\.[^.]*$/;
$base =~ s/\.?\Q$var\E//g if $var ne '';
$base = 'job' if $base eq '';
my $qbase = "$qdir/$base";
make_log_dirs($jobs);
make_path($qdir, { error => \my $err }) unless -d $qdir;
fail("cannot create $qdir") unless -d $qdir;
sub done_file { return "$qdir/done.$base.$_[0]"; }
for my $task (1 .. $num_tasks) {
  my $f = done_file($task);
  unlink($f) or fail("cannot remove stale $f: $!") if -e $f;
}

my $script = "$qbase.sh";
my @submit = (@$command, @submit_args,
              $be->{array_args}->($num_tasks, $qbase, $value{max_jobs_run}), $script);
my $substitute = $var eq '' ? '' : '//' . shell_quote($var) . '/$job';
my $cwd = getcwd();
my $job_script = <<"END";
#!/bin/bash
# Written by $0 at @{[strftime('%Y-%m-%d %H:%M:%S', localtime)]}; submitted with:
# @{[join(' ', map { /^[\w.,:=\/\@%+-]+$/ ? $_ : shell_quote($_) } @submit)]}
cd @{[shell_quote($cwd)]} || exit 1
# The submitting shell's environment, whatever the scheduler passed (see utils/queue.pl).
@{[environment_exports()]}$be->{job_setup}if [ -f ./path.sh ]; then . ./path.sh; fi
task=\${$be->{task_var}:?the scheduler did not set $be->{task_var}}
job=\$((task + @{[$first - 1]}))
log_template=@{[shell_quote($log_template)]}
cmd_template=@{[shell_quote($cmd_template)]}
log=\${log_template$substitute}
cmd=\${cmd_template$substitute}
done_file=@{[shell_quote("$qdir/done.$base.")]}\$task
mkdir -p "\$(dirname "\$log")"
start=\$(date +%s)
if { printf '# %s\\n' "\$cmd"; echo "# Started at \$(date) on \$(hostname)"; echo '#'; } > "\$log"; then
  bash -o pipefail -c "\$cmd" >> "\$log" 2>&1 < /dev/null
  ret=\$?
  elapsed=\$((\$(date +%s) - start))
  echo "# Accounting: time=\$elapsed threads=$threads" >> "\$log"
  echo "# Ended (code \$ret) at \$(date), elapsed time \$elapsed seconds" >> "\$log"
else
  echo "cannot write log file \$log" >&2
  ret=1
fi
echo "\$ret" > "\$done_file.tmp" && mv -f "\$done_file.tmp" "\$done_file"
# Grid Engine gives exit codes 99 and 100 special meanings, so report plain failure.
[ "\$ret" -eq 0 ] || exit 1
END
{
  # Only the user reads it: it holds the submitting shell's environment.
  my $old_umask = umask(077);
  open(my $fh, '>', "$script.tmp") or fail("cannot write $script.tmp: $!");
  umask($old_umask);
  print $fh $job_script;
  close($fh) or fail("cannot write $script.tmp: $!");
  chmod(0700, "$script.tmp");
  rename("$script.tmp", $script) or fail("cannot rename $script.tmp: $!");
}

# --- submit ---
my $output = '';
{
  open(my $fh, '-|', @submit) or fail("cannot run $submit[0]: $!");
  local $/;
  $output = <$fh> // '';
  close($fh);
  fail("submission failed (exit " . ($? >> 8) . "): " . join(' ', @submit) . "\n$output") if $? != 0;
}
my $job_id = $be->{job_id}->($output);
fail("cannot find a job id in the output of $submit[0]: $output") unless defined $job_id;

my $cancel = sub {
  system_quiet(@{ $be->{cancel} }, $job_id) if in_path($be->{cancel}[0]);
  print STDERR "$0: interrupted; cancelled job $job_id\n";
  exit 130;
};
local $SIG{INT} = $cancel;
local $SIG{TERM} = $cancel;

# --- wait ---
# Quick jobs are seen quickly: the interval starts small and grows to 10 s.  Tasks the scheduler no longer
# lists get a grace period (shared file systems show new files late) before they count as failed.
my $grace = $ENV{MASKSPEC_QUEUE_GRACE} // 60;
fail("MASKSPEC_QUEUE_GRACE must be a number of seconds, got '$grace'") unless $grace =~ /^\d+(\.\d*)?$/;
my $can_check = in_path($be->{alive_program});
my (%code, %lost);
my ($interval, $last_check, $gone_since) = (0.05, time(), undef);
while (1) {
  # Listing the folder makes NFS clients refresh their view of it.
  if (opendir(my $dh, $qdir)) { closedir($dh); }
  for my $task (1 .. $num_tasks) {
    next if exists $code{$task};
    my $f = done_file($task);
    next unless -e $f;
    open(my $fh, '<', $f) or next;
    my $text = <$fh>;
    close($fh);
    $code{$task} = (defined $text && $text =~ /^\s*(-?\d+)\s*$/) ? $1 : 1;
  }
  last if keys(%code) == $num_tasks;
  if ($can_check && time() - $last_check >= ($interval > 1 ? $interval : 1)) {
    $last_check = time();
    if ($be->{alive}->($job_id)) {
      $gone_since = undef;
    } else {
      $gone_since //= time();
      if (time() - $gone_since >= $grace) {
        for my $task (1 .. $num_tasks) {
          next if exists $code{$task};
          $code{$task} = 1;
          $lost{$task} = 1;
        }
        last;
      }
    }
  }
  sleep($interval);
  $interval = $interval * 1.5 > 10 ? 10 : $interval * 1.5;
}
unlink(map { done_file($_) } grep { !$lost{$_} } 1 .. $num_tasks);

my @failed = sort { $a <=> $b } grep { $code{$_} != 0 } keys %code;
if (%lost) {
  print STDERR "$0: job $job_id: the scheduler no longer lists task(s) "
    . join(',', sort { $a <=> $b } keys %lost) . " but they wrote no exit status (killed?); see $qbase.*.out\n";
}
if (@failed) {
  fail(scalar(@failed) . " / $num_tasks failed, log is in " . for_job($jobs, $log_template, $failed[0] + $first - 1));
}
exit 0;
