#!/usr/bin/env perl
# Runs a command as one or more local jobs, Kaldi convention (same interface as queue.pl and slurm.pl).
use strict;
use warnings;
use FindBin;
use IO::Handle;
use Time::HiRes qw(time);

require "$FindBin::RealBin/lib/jobs.pl";  # fail, join_command, parse_jobs, for_job, ...

my $usage = <<"END";
Usage: $0 [options] [JOB=1:N] <log-file> <command> [<arg>...]
Runs <command> through bash (with pipefail) once per job id in the range, up to --max-jobs-run at a
time, and waits for all of them.  The range variable (any name, JOB here) is replaced by the job id in
<log-file> and in the command.  Each log starts with the command and the start time and ends with the
exit code and the elapsed time.  Exits 1 if any job failed, naming the first failed log.
A single command argument is used as it is, so "a | b > c" works; several arguments are joined, those
holding spaces being quoted, as in Kaldi ("\\|" passes a pipe).
e.g.: $0 JOB=1:4 exp/log/fbank.JOB.log python -m maskspec.bin.compute_fbank --wav_scp data/split4/JOB/wav.scp
Options:
  --max-jobs-run N   jobs running at once (default: number of CPUs)
  --num-threads N    threads each job uses, written to the accounting line (default: 1)
  --mem M, --gpu N, --time T, --config F, --procs-per-node P   accepted so that queue.pl and slurm.pl
                     options can be used unchanged; they have no effect here
END

# Number of CPUs this process may use.
sub cpu_count {
  for my $probe ('nproc 2>/dev/null', 'getconf _NPROCESSORS_ONLN 2>/dev/null') {
    my $n = `$probe`;
    return $1 if defined $n && $n =~ /^\s*(\d+)\s*$/ && $1 > 0;
  }
  return 1;
}

# Exit code of a wait status, with 128+signal for a killed child as bash reports it.
sub exit_code {
  my ($status) = @_;
  return 127 if $status == -1;
  return 128 + ($status & 127) if $status & 127;
  return $status >> 8;
}

my %opt = (max_jobs_run => undef, num_threads => 1, mem => undef, gpu => undef, time => undef,
           config => undef, procs_per_node => undef);
while (@ARGV && $ARGV[0] =~ /^-/) {
  my $arg = shift @ARGV;
  if ($arg eq '--help' || $arg eq '-h') { print $usage; exit 0; }
  my ($name, $value) = $arg =~ /^--([^=]+)=(.*)$/s ? ($1, $2) : ($arg =~ /^--(.+)$/ ? ($1, undef) : ());
  fail("unknown option $arg (see --help)") unless defined $name;
  $name =~ tr/-/_/;
  fail("unknown option $arg (see --help)") unless exists $opt{$name};
  if (!defined $value) {
    fail("option $arg needs a value") unless @ARGV;
    $value = shift @ARGV;
  }
  $opt{$name} = $value;
}
check_job_counts(\%opt);
my $max_jobs = $opt{max_jobs_run} // cpu_count();
my $jobs = parse_jobs(\@ARGV, $usage);
my ($first, $last) = @$jobs{qw(first last)};

sub log_of { return for_job($jobs, $jobs->{log}, $_[0]); }

# Runs one job in the current (child) process and returns its exit code.
sub run_job {
  my ($id) = @_;
  my $log = log_of($id);
  my $cmd = for_job($jobs, $jobs->{cmd}, $id);
  if (!open(STDOUT, '>', $log)) { print STDERR "$0: cannot write log file $log: $!\n"; return 1; }
  open(STDERR, '>&', \*STDOUT) or return 1;
  open(STDIN, '<', '/dev/null') or return 1;
  STDOUT->autoflush(1);
  print "# $cmd\n# Started at " . localtime() . "\n#\n";
  my $t0 = time();
  my $code = exit_code(system('bash', '-o', 'pipefail', '-c', $cmd));
  my $elapsed = int(time() - $t0 + 0.5);
  print "# Accounting: time=$elapsed threads=$opt{num_threads}\n";
  print "# Ended (code $code) at " . localtime() . ", elapsed time $elapsed seconds\n";
  return $code;
}

make_log_dirs($jobs);

my (%job_of_pid, %failed);
my $running = 0;
sub reap_one {
  my $pid = waitpid(-1, 0);
  return if $pid <= 0;
  my $id = delete $job_of_pid{$pid};
  return unless defined $id;
  $failed{$id} = 1 if $? != 0;
  $running--;
}

for my $id ($first .. $last) {
  reap_one() while $running >= $max_jobs;
  my $pid = fork();
  fail("cannot fork: $!") unless defined $pid;
  if ($pid == 0) {
    my $code = run_job($id);
    exit($code == 0 ? 0 : 1);
  }
  $job_of_pid{$pid} = $id;
  $running++;
}
reap_one() while $running > 0;

my @failed = sort { $a <=> $b } keys %failed;
if (@failed) {
  my $total = $last - $first + 1;
  fail(scalar(@failed) . " / $total failed, log is in " . log_of($failed[0]));
}
exit 0;
