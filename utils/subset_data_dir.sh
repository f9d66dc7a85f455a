#!/usr/bin/env bash
# Copies a consistent subset of a MaskSpec data directory's utterances to a new directory.
set -euo pipefail

utt_list=""  # keep the utterances listed (first field of each line) in this file
first=""     # keep the first N utterances (LC_ALL=C order)
last=""      # keep the last N utterances
random=""    # keep N utterances drawn at random, reproducibly for a given --seed
seed=1       # seed for --random
help_message="Usage: $0 [--utt-list <file> | --first N | --last N | --random N [--seed S]] <src-dir> <dest-dir>
Writes to <dest-dir> the chosen utterances' lines of every utterance-level file (segments, utt2label,
utt2label_known, text, utt2dur, utt2spk, feats.scp, utt2num_frames), the wav.scp lines of their recordings,
a spk2utt rebuilt from utt2spk, and copies labels.txt and fbank.yaml.  stats.json is not copied (it
depends on the utterances).  Utterances are ranked by their id in LC_ALL=C order.
e.g.: $0 --random 1000 --seed 3 data/train data/train_1k
Options:
  --utt-list F   keep the utterances listed in F (ids missing from <src-dir> are counted and skipped)
  --first N      keep the first N utterances
  --last N       keep the last N utterances
  --random N     keep N utterances chosen at random (the same ones for the same seed and source)
  --seed S       random seed for --random (default: $seed)"

. "$(dirname "$0")/parse_options.sh"

if [ $# -ne 2 ]; then
  echo "$0: expected <src-dir> <dest-dir>" >&2
  echo "$help_message" >&2
  exit 1
fi
src=${1%/}
dest=${2%/}
modes=0
for value in "$utt_list" "$first" "$last" "$random"; do
  if [ -n "$value" ]; then modes=$((modes + 1)); fi
done
if [ "$modes" -ne 1 ]; then
  echo "$0: give exactly one of --utt-list, --first, --last, --random" >&2
  exit 1
fi
for value in "$first" "$last" "$random"; do
  if [ -n "$value" ] && ! [[ $value =~ ^[1-9][0-9]*$ ]]; then
    echo "$0: the number of utterances must be a positive integer, got '$value'" >&2
    exit 1
  fi
done
if ! [[ $seed =~ ^[0-9]+$ ]]; then
  echo "$0: --seed must be a non-negative integer, got '$seed'" >&2
  exit 1
fi
if [ ! -d "$src" ]; then
  echo "$0: $src is not a directory" >&2
  exit 1
fi
if [ -n "$utt_list" ] && [ ! -r "$utt_list" ]; then
  echo "$0: cannot read utterance list $utt_list" >&2
  exit 1
fi
if [ -d "$dest" ] && [ "$(cd "$src" && pwd -P)" = "$(cd "$dest" && pwd -P)" ]; then
  echo "$0: source and destination are the same directory" >&2
  exit 1
fi

exec perl -I "$(dirname "$0")/lib" - "$0" "$src" "$dest" "$utt_list" "$first" "$last" "$random" "$seed" <<'PERL'
use strict;
use warnings;
use File::Copy qw(copy);
use File::Path qw(make_path);
require "datadir.pl";  # utils/lib: utt_level_files, write_atomic

my ($prog, $src, $dest, $utt_list, $first, $last, $random, $seed) = @ARGV;
sub fail { print STDERR "$prog: $_[0]\n"; exit 1; }

my @utt_level = utt_level_files();
my @data_files = ('wav.scp', @utt_level, 'spk2utt');

sub read_lines {
  my ($name) = @_;
  open(my $fh, '<', "$src/$name") or fail("cannot read $src/$name: $!");
  my @lines = <$fh>;
  close($fh);
  $_ .= "\n" for grep { !/\n$/ } @lines;
  return \@lines;
}
sub key_of { return (split(' ', $_[0]))[0] // ''; }

my $has_segments = -e "$src/segments";
my ($ref) = grep { -e "$src/$_" } (($has_segments ? () : ('wav.scp')), @utt_level);
fail("$src has no utterance-level file (wav.scp, segments, utt2label, feats.scp, ...)") unless defined $ref;
my @all = sort map { key_of($_) } grep { /\S/ } @{ read_lines($ref) };
fail("$src/$ref is empty") unless @all;

my @chosen;
if ($utt_list ne '') {
  my %in_src = map { $_ => 1 } @all;
  open(my $fh, '<', $utt_list) or fail("cannot read $utt_list: $!");
  my (%wanted, $missing);
  while (my $line = <$fh>) {
    my ($id) = split(' ', $line);
    next unless defined $id;
    if ($in_src{$id}) { $wanted{$id} = 1; } else { $missing++; }
  }
  close($fh);
  print STDERR "$prog: warning: $missing ids of $utt_list are not in $src/$ref\n" if $missing;
  @chosen = grep { $wanted{$_} } @all;
  fail("none of the ids in $utt_list is in $src/$ref") unless @chosen;
} else {
  my $n = $first || $last || $random;
  fail("asked for $n utterances but $src has " . scalar(@all)) if $n > @all;
  if ($first) {
    @chosen = @all[0 .. $n - 1];
  } elsif ($last) {
    @chosen = @all[@all - $n .. $#all];
  } else {
    # Partial Fisher-Yates shuffle over the sorted ids: the draw depends only on the seed and the ids.
    srand($seed);
    my @pool = @all;
    for my $i (0 .. $n - 1) {
      my $j = $i + int(rand(@pool - $i));
      @pool[$i, $j] = @pool[$j, $i];
    }
    @chosen = sort @pool[0 .. $n - 1];
  }
}
my %keep = map { $_ => 1 } @chosen;
# Created only now, so that a bad request leaves no empty destination behind.
make_path($dest, { error => \my $err }) unless -d $dest;
fail("cannot create $dest") unless -d $dest;

# Recordings of the chosen segments.
my %keep_reco;
if ($has_segments) {
  for my $line (@{ read_lines('segments') }) {
    my ($utt, $reco) = split(' ', $line);
    $keep_reco{$reco} = 1 if defined $reco && $keep{$utt};
  }
}

my @written;
for my $name (@data_files) {
  next if $name eq 'spk2utt' || !-e "$src/$name";
  my $wanted = ($name eq 'wav.scp' && $has_segments) ? \%keep_reco : \%keep;
  write_atomic($dest, $name, join('', grep { $wanted->{ key_of($_) } } @{ read_lines($name) }));
  push @written, $name;
}
if (-e "$src/utt2spk") {
  my %utts;
  for my $line (@{ read_lines('utt2spk') }) {
    my ($utt, $spk) = split(' ', $line);
    push @{ $utts{$spk} }, $utt if defined $spk && $keep{$utt};
  }
  write_atomic($dest, 'spk2utt', join('', map { join(' ', $_, sort @{ $utts{$_} }) . "\n" } sort keys %utts));
  push @written, 'spk2utt';
}
for my $name ('labels.txt', 'fbank.yaml') {
  next unless -e "$src/$name";
  copy("$src/$name", "$dest/$name.tmp") && rename("$dest/$name.tmp", "$dest/$name")
    or fail("cannot copy $src/$name to $dest: $!");
  push @written, $name;
}
# A data file left from an earlier run would not match the new subset.
my %written = map { $_ => 1 } @written;
for my $name (@data_files, 'labels.txt', 'fbank.yaml', 'stats.json') {
  next if $written{$name} || !-e "$dest/$name";
  unlink("$dest/$name") or fail("cannot remove stale $dest/$name: $!");
}
print "$prog: $dest: " . scalar(@chosen) . " of " . scalar(@all) . " utterances of $src (" . join(' ', @written) . ")\n";
exit 0;
PERL
