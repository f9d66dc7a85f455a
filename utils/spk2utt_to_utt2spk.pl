#!/usr/bin/env perl
# Converts spk2utt ("<spk> <utt1> <utt2> ..." lines) back to utt2spk ("<utt> <spk>" lines).
use strict;
use warnings;

my $usage = <<"END";
Usage: $0 [<spk2utt>] > <utt2spk>
Reads spk2utt (a file, or standard input) and writes one "<utt> <spk>" line per utterance, in input
order; pipe through "LC_ALL=C sort" if the speakers were not in utterance order.
e.g.: $0 data/train/spk2utt > data/train/utt2spk
END

if (@ARGV && ($ARGV[0] eq '--help' || $ARGV[0] eq '-h')) { print $usage; exit 0; }
if (@ARGV > 1 || (@ARGV && $ARGV[0] =~ /^-./)) { print STDERR "$0: expected at most one file\n$usage"; exit 1; }
my $name = @ARGV ? $ARGV[0] : 'standard input';

my %seen;
while (my $line = <>) {
  my ($spk, @utts) = split(' ', $line);
  if (!@utts) {
    chomp $line;
    print STDERR "$0: $name:$.: expected '<spk> <utt> ...', got '$line'\n";
    exit 1;
  }
  for my $utt (@utts) {
    if ($seen{$utt}++) { print STDERR "$0: $name:$.: utterance $utt appears twice\n"; exit 1; }
    print "$utt $spk\n";
  }
}
exit 0;
