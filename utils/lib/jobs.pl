#!/usr/bin/env perl
# What run.pl and queue.pl (so also slurm.pl) share: the job range JOB=1:N, the log file and command templates,
# and the checks on them, so that a command behaves the same run locally and on a cluster.
# Loaded with `require "$FindBin::RealBin/lib/jobs.pl"`; the subs land in the caller's package (main).
use strict;
use warnings;

# Run on its own it has nothing to do: say so instead of returning silently.
unless (caller) {
  print STDERR "$0: a library of run.pl, queue.pl and slurm.pl, not a command\n";
  exit 1;
}
use File::Basename qw(dirname);
use File::Path qw(make_path);

sub fail { print STDERR "$0: $_[0]\n"; exit 1; }

sub shell_quote { return "'" . join("'\\''", split(/'/, $_[0], -1)) . "'"; }

# Kaldi's rule for several arguments: a word with no whitespace goes as it is (so "\|" and ">" keep
# their shell meaning), any other word is quoted.
sub join_command {
  my @words = @_;
  return $words[0] if @words == 1;
  return join(' ', map { (/^\S+$/) ? $_ : shell_quote($_) } @words);
}

# --max-jobs-run and --num-threads, where given, must be positive integers.
sub check_job_counts {
  my ($opt) = @_;
  for my $name ('max_jobs_run', 'num_threads') {
    next unless defined $opt->{$name};
    fail("--" . ($name =~ tr/_/-/r) . " must be a positive integer, got '$opt->{$name}'")
      unless $opt->{$name} =~ /^\d+$/ && $opt->{$name} > 0;
  }
}

# Takes [VAR=first[:last]] <log-file> <command...> off @$args: a hash with var ('' without a range), first,
# last, log (template), cmd (template, joined Kaldi style).  Several jobs must not share one log file.
sub parse_jobs {
  my ($args, $usage) = @_;
  my %jobs = (var => '', first => 1, last => 1);
  if (@$args && $args->[0] =~ /^([A-Za-z_]\w*)=(\d+)(?::(\d+))?$/) {
    @jobs{qw(var first last)} = ($1, $2, $3 // $2);
    shift @$args;
    fail("empty job range $jobs{var}=$jobs{first}:$jobs{last}") if $jobs{first} > $jobs{last};
  }
  fail("expected a log file and a command\n$usage") if @$args < 2;
  $jobs{log} = shift @$args;
  $jobs{cmd} = join_command(@$args);
  my $n = $jobs{last} - $jobs{first} + 1;
  if ($jobs{var} ne '' && $n > 1 && index($jobs{log}, $jobs{var}) < 0) {
    fail("$n jobs would share one log file: '$jobs{log}' does not contain $jobs{var}");
  }
  return \%jobs;
}

# $text with the range variable replaced by the job id.
sub for_job {
  my ($jobs, $text, $id) = @_;
  $text =~ s/\Q$jobs->{var}\E/$id/g if $jobs->{var} ne '';
  return $text;
}

# Log folders are made before any job starts, so that jobs do not race to create them.
sub make_log_dirs {
  my ($jobs) = @_;
  for my $id ($jobs->{first} .. $jobs->{last}) {
    my $dir = dirname(for_job($jobs, $jobs->{log}, $id));
    make_path($dir, { error => \my $err }) unless -d $dir;
    fail("cannot create log folder $dir") unless -d $dir;
  }
}

1;
