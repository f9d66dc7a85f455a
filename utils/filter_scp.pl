#!/usr/bin/env perl
# Keeps (or, with --exclude, drops) the lines of a Kaldi-style file whose key is in an id list.
use strict;
use warnings;

my $usage = <<"END";
Usage: $0 [--exclude] [-f <field>] <id-list> [<in.scp>] > <out.scp>
Writes the lines of <in.scp> (or standard input) whose field number <field> (1-based, default 1) is the
first field of some line of <id-list>, in the order of <in.scp>.  --exclude keeps the other lines.
e.g.: $0 data/dev/utt_ids data/train/utt2label > data/dev/utt2label
      $0 -f 2 recording_ids data/train/segments
END

sub fail { print STDERR "$0: $_[0]\n"; exit 1; }

my ($exclude, $field) = (0, 1);
while (@ARGV && $ARGV[0] =~ /^-./) {
  my $arg = shift @ARGV;
  if ($arg eq '--help' || $arg eq '-h') { print $usage; exit 0; }
  if ($arg eq '--exclude') {
    $exclude = 1;
  } elsif ($arg eq '-f' || $arg eq '--field') {
    fail("option $arg needs a value") unless @ARGV;
    $field = shift @ARGV;
  } elsif ($arg =~ /^-f(\d+)$/) {
    $field = $1;
  } else {
    fail("unknown option $arg (see --help)");
  }
}
fail("-f takes a positive field number, got '$field'") unless $field =~ /^\d+$/ && $field > 0;
fail("expected an id list and at most one input\n$usage") if @ARGV < 1 || @ARGV > 2;
my ($list, $in) = @ARGV;

my %wanted;
open(my $lfh, '<', $list) or fail("cannot read $list: $!");
while (my $line = <$lfh>) {
  my ($id) = split(' ', $line);
  $wanted{$id} = 1 if defined $id;
}
close($lfh);

my $ifh;
if (defined $in && $in ne '-') {
  open($ifh, '<', $in) or fail("cannot read $in: $!");
} else {
  ($ifh, $in) = (\*STDIN, 'standard input');
}
while (my $line = <$ifh>) {
  my @f = split(' ', $line);
  fail("$in:$.: has " . scalar(@f) . " fields, fewer than $field") if @f < $field;
  print $line if $exclude xor exists $wanted{ $f[$field - 1] };
}
exit 0;
