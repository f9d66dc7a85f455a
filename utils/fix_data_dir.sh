#!/usr/bin/env bash
# Makes a MaskSpec data directory consistent: sorted files and only the utterances every file knows.
set -euo pipefail

help_message="Usage: $0 <data-dir>
Sorts every data file (LC_ALL=C byte order of the key), drops exact duplicate lines, keeps only the
utterances present in all utterance-level files (segments or wav.scp, utt2label, utt2label_known,
text, utt2dur, utt2spk, feats.scp, utt2num_frames) and, with segments, whose recording is in wav.scp; removes
recordings left with no utterance and rebuilds spk2utt from utt2spk.  The original files are copied to
<data-dir>/.backup/ first, and the number of lines kept and dropped is logged per file.  Two lines with
the same key and different values are an error (nothing is changed).  Other files (labels.txt,
fbank.yaml, stats.json, ...) are left as they are.
e.g.: $0 data/train"

if [ $# -eq 1 ] && { [ "$1" = --help ] || [ "$1" = -h ]; }; then
  echo "$help_message"
  exit 0
fi
if [ $# -ne 1 ] || [[ $1 == -* ]]; then
  echo "$0: expected one data directory" >&2
  echo "$help_message" >&2
  exit 1
fi
data=${1%/}
if [ ! -d "$data" ]; then
  echo "$0: $data is not a directory" >&2
  exit 1
fi

exec perl -I "$(dirname "$0")/lib" - "$0" "$data" <<'PERL'
use strict;
use warnings;
use File::Copy qw(copy);
require "datadir.pl";  # utils/lib: utt_level_files, write_atomic

my ($prog, $dir) = @ARGV;
sub fail { print STDERR "$prog: $_[0]\n"; exit 1; }
sub say_ { print "$prog: $_[0]\n"; }

my @utt_level = utt_level_files();
my @known = ('wav.scp', @utt_level, 'spk2utt');
my @present = grep { -e "$dir/$_" } @known;
fail("$dir holds none of: @known") unless @present;
fail("$dir/spk2utt exists without utt2spk, which it would be rebuilt from")
  if -e "$dir/spk2utt" && !-e "$dir/utt2spk";

# Reads a file into {key => line}, dropping exact duplicate and empty lines.
my (%lines, %count_in);
for my $name (@present) {
  next if $name eq 'spk2utt';
  my $path = "$dir/$name";
  open(my $fh, '<', $path) or fail("cannot read $path: $!");
  my (%by_key, %first_line);
  my $n = 0;
  while (my $line = <$fh>) {
    $line =~ s/\r?\n$//;
    $line =~ s/^\s+|\s+$//g;
    next if $line eq '';
    $n++;
    my ($key) = split(' ', $line);
    if (exists $by_key{$key}) {
      next if $by_key{$key} eq $line;
      fail("$path:$.: $key has two different lines (also line $first_line{$key}); fix it by hand");
    }
    ($by_key{$key}, $first_line{$key}) = ($line, $.);
  }
  close($fh);
  ($lines{$name}, $count_in{$name}) = (\%by_key, $n);
}

# Utterances every utterance-level file knows.
my @utt_files = grep { $lines{$_} } (($lines{segments} ? () : ('wav.scp')), @utt_level);
fail("$dir has no utterance-level file") unless @utt_files;
my %keep = %{ $lines{ $utt_files[0] } };
for my $name (@utt_files[1 .. $#utt_files]) {
  delete @keep{ grep { !exists $lines{$name}{$_} } keys %keep };
}
my %keep_reco;
if ($lines{segments}) {
  for my $utt (keys %keep) {
    my (undef, $reco) = split(' ', $lines{segments}{$utt});
    if (!defined $reco || ($lines{'wav.scp'} && !exists $lines{'wav.scp'}{$reco})) {
      delete $keep{$utt};
    } else {
      $keep_reco{$reco} = 1;
    }
  }
}
fail("no utterance is present in all of: @utt_files; nothing changed") unless %keep;

mkdir("$dir/.backup") or -d "$dir/.backup" or fail("cannot create $dir/.backup: $!");
for my $name (@present) {
  copy("$dir/$name", "$dir/.backup/$name") or fail("cannot copy $dir/$name to $dir/.backup: $!");
}

for my $name (sort keys %lines) {
  my $by_key = $lines{$name};
  my $wanted = ($name eq 'wav.scp' && $lines{segments}) ? \%keep_reco : \%keep;
  my @keys = sort grep { exists $wanted->{$_} } keys %$by_key;
  write_atomic($dir, $name, join('', map { "$by_key->{$_}\n" } @keys));
  my $dropped = $count_in{$name} - @keys;
  say_("$name: kept " . scalar(@keys) . " of $count_in{$name} lines" . ($dropped ? ", dropped $dropped" : ''));
}

if (-e "$dir/spk2utt") {
  my (%utts, @speakers);
  for my $utt (sort keys %{ $lines{utt2spk} }) {
    next unless $keep{$utt};
    my (undef, $spk) = split(' ', $lines{utt2spk}{$utt});
    push @{ $utts{$spk} }, $utt;
  }
  write_atomic($dir, 'spk2utt', join('', map { join(' ', $_, @{ $utts{$_} }) . "\n" } sort keys %utts));
  say_("spk2utt: rebuilt from utt2spk, " . scalar(keys %utts) . " speakers");
}
say_("$dir: " . scalar(keys %keep) . " utterances kept; originals in $dir/.backup");
exit 0;
PERL
