#!/usr/bin/env perl
# Converts utt2spk ("<utt> <spk>" lines) to spk2utt ("<spk> <utt1> <utt2> ..." lines).
use strict;
use warnings;

my $usage = <<"END";
Usage: $0 [<utt2spk>] > <spk2utt>
Reads utt2spk (a file, or standard input) and writes one line per speaker listing its utterances.
Speakers come in order of first appearance and utterances in input order, so a sorted utt2spk whose
utterance ids start with the speaker id gives a sorted spk2utt.
e.g.: $0 data/train/utt2spk > data/train/spk2utt
END

if (@ARGV && ($ARGV[0] eq '--help' || $ARGV[0] eq '-h')) { print $usage; exit 0; }
if (@ARGV > 1 || (@ARGV && $ARGV[0] =~ /^-./)) { print STDERR "$0: expected at most one file\n$usage"; exit 1; }
my $name = @ARGV ? $ARGV[0] : 'standard input';

my (@speakers, %utts, %seen);
while (my $line = <>) {
  my @f = split(' ', $line);
  if (@f != 2) {
    chomp $line;
    print STDERR "$0: $name:$.: expected '<utt> <spk>', got '$line'\n";
    exit 1;
  }
  my ($utt, $spk) = @f;
  if ($seen{$utt}++) { print STDERR "$0: $name:$.: utterance $utt appears twice\n"; exit 1; }
  push @speakers, $spk unless exists $utts{$spk};
  push @{ $utts{$spk} }, $utt;
}
print join(' ', $_, @{ $utts{$_} }), "\n" for @speakers;
exit 0;
