#!/usr/bin/env perl
# Splits a Kaldi-style list (scp or any "<key> <value>" file) into N nearly equal parts, keeping line order.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Path qw(make_path);

my $usage = <<"END";
Usage: $0 [--utt2spk <utt2spk>] <in.scp> <out1> [<out2> ...]
Writes the lines of <in.scp> to N output files, in their original order, with line counts differing by at
most one.  With --utt2spk, all utterances of a speaker go to the same output (speakers taken in order of
first appearance, cut where the running count is nearest the even share), and the counts are as even as
that allows.  It is an error to ask for more outputs than lines (or speakers).
e.g.: $0 data/train/wav.scp data/train/split2/1/wav.scp data/train/split2/2/wav.scp
END

sub fail { print STDERR "$0: $_[0]\n"; exit 1; }

my $utt2spk_file;
while (@ARGV && $ARGV[0] =~ /^-/) {
  my $arg = shift @ARGV;
  if ($arg eq '--help' || $arg eq '-h') { print $usage; exit 0; }
  if ($arg eq '--utt2spk') {
    fail("option --utt2spk needs a value") unless @ARGV;
    $utt2spk_file = shift @ARGV;
  } elsif ($arg =~ /^--utt2spk=(.+)$/) {
    $utt2spk_file = $1;
  } else {
    fail("unknown option $arg (see --help)");
  }
}
fail("expected an input and at least one output\n$usage") if @ARGV < 2;
my ($in, @outs) = @ARGV;
my $n = @outs;

open(my $fh, '<', $in) or fail("cannot read $in: $!");
my @lines = <$fh>;
close($fh);
for my $i (0 .. $#lines) {
  fail("$in:" . ($i + 1) . ": empty line") if $lines[$i] !~ /\S/;
  $lines[$i] .= "\n" unless $lines[$i] =~ /\n$/;
}
fail("cannot split $in: it has " . scalar(@lines) . " lines, fewer than the $n outputs") if @lines < $n;

# Part index of every line.
my @part_of_line;
if (!defined $utt2spk_file) {
  # The first (lines mod n) parts get one extra line.
  my ($size, $extra) = (int(@lines / $n), @lines % $n);
  my $line = 0;
  for my $part (0 .. $n - 1) {
    my $count = $size + ($part < $extra ? 1 : 0);
    $part_of_line[$line++] = $part for 1 .. $count;
  }
} else {
  open(my $sfh, '<', $utt2spk_file) or fail("cannot read $utt2spk_file: $!");
  my %spk_of;
  while (my $l = <$sfh>) {
    my @f = split(' ', $l);
    fail("$utt2spk_file:$.: expected '<utt> <spk>', got '" . ($l =~ s/\n//r) . "'") unless @f == 2;
    $spk_of{$f[0]} = $f[1];
  }
  close($sfh);
  my (@speakers, %count, @spk_of_line);
  for my $i (0 .. $#lines) {
    my ($utt) = split(' ', $lines[$i]);
    my $spk = $spk_of{$utt};
    fail("$in:" . ($i + 1) . ": utterance $utt is not in $utt2spk_file") unless defined $spk;
    push @speakers, $spk unless $count{$spk}++;
    $spk_of_line[$i] = $spk;
  }
  my $num_spk = @speakers;
  fail("cannot split $in by speaker: it has $num_spk speakers, fewer than the $n outputs") if $num_spk < $n;
  # Cut part k after the speaker whose running total is nearest k/n of the lines, leaving at least one
  # speaker for every later part.
  my %part_of_spk;
  my ($spk_index, $total) = (0, 0);
  for my $part (0 .. $n - 1) {
    my $target = @lines * ($part + 1) / $n;
    my $last_allowed = $num_spk - ($n - $part);
    do {
      $part_of_spk{$speakers[$spk_index]} = $part;
      $total += $count{$speakers[$spk_index]};
      $spk_index++;
    } while ($part == $n - 1 ? $spk_index < $num_spk
             : $spk_index <= $last_allowed
               && abs($total + $count{$speakers[$spk_index]} - $target) < abs($total - $target));
  }
  @part_of_line = map { $part_of_spk{$_} } @spk_of_line;
}

my @buffers = ('') x $n;
$buffers[$part_of_line[$_]] .= $lines[$_] for 0 .. $#lines;
for my $part (0 .. $n - 1) {
  my $out = $outs[$part];
  my $dir = dirname($out);
  make_path($dir, { error => \my $err }) unless -d $dir;
  open(my $ofh, '>', "$out.tmp") or fail("cannot write $out.tmp: $!");
  print $ofh $buffers[$part];
  close($ofh) or fail("cannot write $out.tmp: $!");
  rename("$out.tmp", $out) or fail("cannot rename $out.tmp to $out: $!");
}
exit 0;
