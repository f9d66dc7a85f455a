#!/usr/bin/env perl
# What the data-directory tools (combine_data.sh, subset_data_dir.sh, fix_data_dir.sh) share.  Their Perl runs
# as `perl -I <utils>/lib - ...` and loads this with `require "datadir.pl"`; errors go through the caller's fail().
use strict;
use warnings;

# Run on its own it has nothing to do: say so instead of returning silently.
unless (caller) {
  print STDERR "$0: a library of combine_data.sh, subset_data_dir.sh and fix_data_dir.sh, not a command\n";
  exit 1;
}

# Files with one line per utterance, keyed by the utterance id (wav.scp is too when there is no segments file).
sub utt_level_files { return qw(segments utt2label utt2label_known text utt2dur utt2spk feats.scp utt2num_frames); }

# Writes $text to <dir>/<name> through <name>.tmp, so that a killed run never leaves a half-written file.
sub write_atomic {
  my ($dir, $name, $text) = @_;
  my $path = "$dir/$name";
  open(my $fh, '>', "$path.tmp") or main::fail("cannot write $path.tmp: $!");
  print $fh $text;
  close($fh) or main::fail("cannot write $path.tmp: $!");
  rename("$path.tmp", $path) or main::fail("cannot rename $path.tmp: $!");
}

1;
