#!/usr/bin/env bash
# Combines several MaskSpec data directories into one.
set -euo pipefail

help_message="Usage: $0 <dest-dir> <src-dir1> [<src-dir2> ...]
Writes to <dest-dir> every data file (wav.scp, segments, utt2label, utt2label_known, text, utt2dur, utt2spk,
feats.scp, utt2num_frames) present in all sources, their lines concatenated and sorted (LC_ALL=C), plus
spk2utt rebuilt from utt2spk.  A file missing from some sources is left out with a warning.  An utterance
id found in two sources is an error; so is a recording id with two different wav.scp entries when the
sources have segments.  labels.txt and fbank.yaml are copied when identical in every source and are an
error when they differ.  stats.json is not written (recompute it for the combined data).
e.g.: $0 data/train_all data/train_a data/train_b"

if [ $# -ge 1 ] && { [ "$1" = --help ] || [ "$1" = -h ]; }; then
  echo "$help_message"
  exit 0
fi
if [ $# -lt 2 ]; then
  echo "$0: expected a destination and at least one source" >&2
  echo "$help_message" >&2
  exit 1
fi
for arg in "$@"; do
  if [[ $arg == -* ]]; then
    echo "$0: unknown option $arg (see --help)" >&2
    exit 1
  fi
done
dest=${1%/}
shift
dest_real=""
if [ -d "$dest" ]; then dest_real=$(cd "$dest" && pwd -P); fi
for src in "$@"; do
  if [ ! -d "$src" ]; then
    echo "$0: $src is not a directory" >&2
    exit 1
  fi
  if [ -n "$dest_real" ] && [ "$(cd "$src" && pwd -P)" = "$dest_real" ]; then
    echo "$0: the destination $dest is also a source" >&2
    exit 1
  fi
done

exec perl -I "$(dirname "$0")/lib" - "$0" "$dest" "${@%/}" <<'PERL'
use strict;
use warnings;
use File::Path qw(make_path);
require "datadir.pl";  # utils/lib: utt_level_files, write_atomic

my ($prog, $dest, @srcs) = @ARGV;
sub fail { print STDERR "$prog: $_[0]\n"; exit 1; }
sub warn_ { print STDERR "$prog: warning: $_[0]\n"; }

my @utt_level = utt_level_files();
my @data_files = ('wav.scp', @utt_level);

sub slurp {
  my ($path) = @_;
  open(my $fh, '<', $path) or fail("cannot read $path: $!");
  local $/;
  my $text = <$fh>;
  close($fh);
  return $text;
}

sub present_in { my ($name) = @_; return grep { -e "$_/$name" } @srcs; }

my @with_segments = present_in('segments');
fail("segments exists in " . join(', ', @with_segments) . " but not in every source; "
     . "give the others a segments file covering whole recordings (end time -1)")
  if @with_segments && @with_segments < @srcs;
my $has_segments = @with_segments > 0;

# Everything is checked and built in memory first, so that an error leaves <dest-dir> untouched.
my (@written, %out, %utts);
for my $name (@data_files) {
  my @have = present_in($name);
  next unless @have;
  if (@have < @srcs) {
    warn_("$name is not in every source (only " . join(', ', @have) . "), leaving it out");
    next;
  }
  # Recordings may be shared between sources that cut different segments from them.
  my $shared_ok = $name eq 'wav.scp' && $has_segments;
  my (%line, %from);
  for my $src (@srcs) {
    open(my $fh, '<', "$src/$name") or fail("cannot read $src/$name: $!");
    while (my $text = <$fh>) {
      next unless $text =~ /\S/;
      $text .= "\n" unless $text =~ /\n$/;
      my ($key) = split(' ', $text);
      if (exists $line{$key}) {
        next if $shared_ok && $line{$key} eq $text;
        fail("$src/$name:$.: " . ($shared_ok ? "recording $key has a different entry in $from{$key}"
                                            : "id $key is also in $from{$key}"));
      }
      ($line{$key}, $from{$key}) = ($text, "$src/$name");
    }
    close($fh);
  }
  $out{$name} = join('', map { $line{$_} } sort keys %line);
  push @written, $name;
  if (!($name eq 'wav.scp' && $has_segments)) { $utts{$_} = 1 for keys %line; }
}
fail("no data file is present in every source") unless @written;

if (grep { $_ eq 'utt2spk' } @written) {
  my %utts_of;
  for my $line (split(/\n/, $out{utt2spk})) {
    my ($utt, $spk) = split(' ', $line);
    push @{ $utts_of{$spk} }, $utt if defined $spk;
  }
  $out{spk2utt} = join('', map { join(' ', $_, @{ $utts_of{$_} }) . "\n" } sort keys %utts_of);
  push @written, 'spk2utt';
}

for my $name ('labels.txt', 'fbank.yaml') {
  my @have = present_in($name);
  next unless @have;
  if (@have < @srcs) {
    warn_("$name is not in every source (only " . join(', ', @have) . "), leaving it out");
    next;
  }
  my $text = slurp("$srcs[0]/$name");
  for my $src (@srcs[1 .. $#srcs]) {
    fail("$src/$name differs from $srcs[0]/$name; the sources cannot be combined")
      if slurp("$src/$name") ne $text;
  }
  $out{$name} = $text;
  push @written, $name;
}

make_path($dest, { error => \my $err }) unless -d $dest;
fail("cannot create $dest") unless -d $dest;
write_atomic($dest, $_, $out{$_}) for @written;
# A data file left from an earlier run would not match the combined data.
my %written = map { $_ => 1 } @written;
for my $name (@data_files, 'spk2utt', 'labels.txt', 'fbank.yaml', 'stats.json') {
  next if $written{$name} || !-e "$dest/$name";
  unlink("$dest/$name") or fail("cannot remove stale $dest/$name: $!");
}
print "$prog: $dest: " . scalar(keys %utts) . " utterances from " . scalar(@srcs) . " sources ("
  . join(' ', @written) . ")\n";
exit 0;
PERL
