#!/usr/bin/env bash
# Checks a MaskSpec data directory (format in docs/ARCHITECTURE.md) and names the file and line of the first
# problem found.
set -euo pipefail

help_message="Usage: $0 [--no-feats] [--no-labels] [--no-wav] <data-dir>
Checks every file of <data-dir> that is present: sorted by key in LC_ALL=C byte order, unique keys,
well-formed values (numbers where numbers belong; utt2label values empty only when utt2label_known
exists, whose values may be empty; text transcripts non-empty UTF-8 without control characters), the same utterances in every utterance-level file, wav.scp
recordings matching segments (or the utterances when there is no segments file), every label listed in
labels.txt and every positive label known.  Stops at the first problem, printing
'<file>:<line>: <problem>', and exits 1; prints a one-line summary otherwise.
By default wav.scp, utt2label, labels.txt and feats.scp must exist; the options below lift that
requirement (the file is still checked when present).
e.g.: $0 --no-feats data/train
Options:
  --no-feats     feats.scp may be missing (before feature extraction)
  --no-labels    utt2label and labels.txt may be missing (unlabelled data)
  --no-wav       wav.scp may be missing (features only)"

need_feats=1
need_labels=1
need_wav=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-feats) need_feats=0 ;;
    --no-labels) need_labels=0 ;;
    --no-wav) need_wav=0 ;;
    --help | -h)
      echo "$help_message"
      exit 0
      ;;
    -*)
      echo "$0: unknown option $1 (see --help)" >&2
      exit 1
      ;;
    *) break ;;
  esac
  shift
done
if [ $# -ne 1 ]; then
  echo "$0: expected one data directory" >&2
  echo "$help_message" >&2
  exit 1
fi
data=${1%/}
if [ ! -d "$data" ]; then
  echo "$0: $data is not a directory" >&2
  exit 1
fi

exec perl - "$0" "$data" "$need_feats" "$need_labels" "$need_wav" <<'PERL'
use strict;
use warnings;

my ($prog, $dir, $need_feats, $need_labels, $need_wav) = @ARGV;
sub fail { print STDERR "$prog: $_[0]\n"; exit 1; }
my $number = qr/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

# Reads a "<key> <value>" file, checking order, uniqueness and that values are present.
# Returns {keys => [...], value => {key => value}, line => {key => line number}}.
sub read_table {
  my ($name, $allow_empty) = @_;
  my $path = "$dir/$name";
  open(my $fh, '<', $path) or fail("cannot read $path: $!");
  my (%value, %line, @keys);
  my $prev;
  while (my $text = <$fh>) {
    my $where = "$path:$.";
    fail("$where: line does not end with a newline") unless $text =~ s/\n$//;
    fail("$where: carriage return (DOS line ending)") if $text =~ /\r/;
    fail("$where: empty line") if $text eq '';
    fail("$where: leading whitespace") if $text =~ /^\s/;
    my ($key, $value) = $text =~ /^(\S+)(?:\s+(.*?))?\s*$/;
    $value //= '';
    fail("$where: $key appears twice (first at line $line{$key})") if exists $line{$key};
    fail("$where: not sorted (LC_ALL=C): '$key' comes after '$prev'") if defined $prev && $key lt $prev;
    fail("$where: no value for $key") if $value eq '' && !$allow_empty;
    push @keys, $key;
    ($value{$key}, $line{$key}, $prev) = ($value, $., $key);
  }
  close($fh);
  fail("$path is empty") unless @keys;
  return { name => $name, keys => \@keys, value => \%value, line => \%line };
}

sub check_values {
  my ($table, $check) = @_;
  for my $key (@{ $table->{keys} }) {
    my $problem = $check->($table->{value}{$key}, $key);
    fail("$dir/$table->{name}:$table->{line}{$key}: $problem") if defined $problem;
  }
}

# The first key (in sort order) present in one table but not the other, reported at its own line.
sub compare_keys {
  my ($x, $y, $what) = @_;
  my ($i, $j, $kx, $ky) = (0, 0, $x->{keys}, $y->{keys});
  while ($i < @$kx || $j < @$ky) {
    if ($j >= @$ky || ($i < @$kx && $kx->[$i] lt $ky->[$j])) {
      fail("$dir/$x->{name}:$x->{line}{$kx->[$i]}: $what $kx->[$i] is not in $y->{name}");
    } elsif ($i >= @$kx || $ky->[$j] lt $kx->[$i]) {
      fail("$dir/$y->{name}:$y->{line}{$ky->[$j]}: $what $ky->[$j] is not in $x->{name}");
    }
    $i++;
    $j++;
  }
}

sub exists_file { return -e "$dir/$_[0]"; }

fail("$dir/wav.scp is missing") if $need_wav && !exists_file('wav.scp');
fail("$dir/feats.scp is missing (use --no-feats before feature extraction)")
  if $need_feats && !exists_file('feats.scp');
if ($need_labels) {
  for my $f ('utt2label', 'labels.txt') {
    fail("$dir/$f is missing (use --no-labels for unlabelled data)") unless exists_file($f);
  }
}
fail("$dir/utt2label_known exists without utt2label") if exists_file('utt2label_known') && !exists_file('utt2label');
fail("$dir/utt2label exists without labels.txt") if exists_file('utt2label') && !exists_file('labels.txt');

# labels.txt: one class name per line, usable inside a comma-separated list.
my %class;
my $num_classes = 0;
if (exists_file('labels.txt')) {
  my $path = "$dir/labels.txt";
  open(my $fh, '<', $path) or fail("cannot read $path: $!");
  while (my $name = <$fh>) {
    fail("$path:$.: line does not end with a newline") unless $name =~ s/\n$//;
    fail("$path:$.: empty class name") if $name eq '';
    fail("$path:$.: class name '$name' contains whitespace or a comma") if $name =~ /[\s,]/;
    fail("$path:$.: class $name appears twice (first at line $class{$name})") if exists $class{$name};
    $class{$name} = $.;
  }
  close($fh);
  $num_classes = keys %class;
  fail("$path is empty") unless $num_classes;
}

my %table;
my $has_known = exists_file('utt2label_known');
my %read_spec = (    # file => allow empty values
  'wav.scp' => 0, segments => 0, utt2label => $has_known, utt2label_known => 1, utt2dur => 0,
  utt2spk => 0, 'feats.scp' => 0, utt2num_frames => 0, spk2utt => 0, text => 0,
);
for my $name (sort keys %read_spec) {
  $table{$name} = read_table($name, $read_spec{$name}) if exists_file($name);
}

sub label_list {
  my ($value) = @_;
  return (undef, "labels must be one comma-separated field without spaces, got '$value'") if $value =~ /\s/;
  my @labels = split(/,/, $value, -1);
  my %seen;
  for my $label (@labels) {
    return (undef, "empty label in '$value'") if $label eq '';
    return (undef, "label '$label' is not in labels.txt") unless exists $class{$label};
    return (undef, "label '$label' is listed twice") if $seen{$label}++;
  }
  return (\@labels, undef);
}

if (my $t = $table{segments}) {
  check_values($t, sub {
    my @f = split(' ', $_[0]);
    return "expected '<utt> <reco> <start> <end>', got '$_[1] $_[0]'" unless @f == 3;
    my ($reco, $start, $end) = @f;
    return "start time '$start' is not a number" unless $start =~ $number;
    return "end time '$end' is not a number" unless $end =~ $number;
    return "negative start time $start" if $start < 0;
    return "end time $end is not after start time $start (use -1 for the end of the recording)"
      unless $end == -1 || $end > $start;
    return undef;
  });
}
if (my $t = $table{utt2label}) {
  check_values($t, sub { my (undef, $p) = label_list($_[0]); return $p; });
}
if (my $t = $table{utt2label_known}) {
  check_values($t, sub {
    # An empty value is a clip with no annotated class; it adds nothing to loss or metric but is valid.
    my ($known, $p) = label_list($_[0]);
    return $p if defined $p;
    my %is_known = map { $_ => 1 } @$known;
    my $positives = $table{utt2label}{value}{ $_[1] } // '';
    for my $label (split(/,/, $positives)) {
      return "label '$label' is positive in utt2label but not known here" unless $is_known{$label};
    }
    return undef;
  });
}
if (my $t = $table{utt2dur}) {
  check_values($t, sub {
    return "duration '$_[0]' is not a number" unless $_[0] =~ $number;
    return "duration $_[0] is not positive" unless $_[0] > 0;
    return undef;
  });
}
if (my $t = $table{utt2num_frames}) {
  check_values($t, sub { return $_[0] =~ /^\d+$/ && $_[0] > 0 ? undef : "frame count '$_[0]' is not a positive integer"; });
}
if (my $t = $table{'feats.scp'}) {
  check_values($t, sub { return $_[0] =~ /^\S+:\S+$/ ? undef : "expected '<file>.ark:<offset>' or '<file>.h5:<key>', got '$_[0]'"; });
}
if (my $t = $table{text}) {
  # Transcripts feed the token list and the CTC targets: bytes that are not text would end up as units.
  check_values($t, sub {
    my $copy = $_[0];
    return "transcript is not valid UTF-8" unless utf8::decode($copy);
    return "transcript contains a tab or control character" if $copy =~ /[\x00-\x1f\x7f]/;
    return undef;
  });
}
if (my $t = $table{utt2spk}) {
  check_values($t, sub { return $_[0] =~ /\s/ ? "speaker id '$_[0]' contains whitespace" : undef; });
}

# Every utterance-level file lists the same utterances.
my @utt_files = grep { $table{$_} }
  (($table{segments} ? 'segments' : 'wav.scp'), qw(utt2label utt2label_known text utt2dur utt2spk feats.scp utt2num_frames));
fail("$dir has no utterance-level file (segments, wav.scp, utt2label, feats.scp, ...)") unless @utt_files;
my $ref = $table{ $utt_files[0] };
compare_keys($ref, $table{$_}, 'utterance') for @utt_files[1 .. $#utt_files];

# Recordings: every segment's recording exists and every recording has a segment.
if ($table{segments} && $table{'wav.scp'}) {
  my $seg = $table{segments};
  my %used;
  for my $utt (@{ $seg->{keys} }) {
    my ($reco) = split(' ', $seg->{value}{$utt});
    fail("$dir/segments:$seg->{line}{$utt}: recording $reco is not in wav.scp")
      unless exists $table{'wav.scp'}{value}{$reco};
    $used{$reco} = 1;
  }
  for my $reco (@{ $table{'wav.scp'}{keys} }) {
    fail("$dir/wav.scp:$table{'wav.scp'}{line}{$reco}: recording $reco has no segment") unless $used{$reco};
  }
}

# spk2utt must be the inverse of utt2spk.
if (my $s2u = $table{spk2utt}) {
  my $u2s = $table{utt2spk} or fail("$dir/spk2utt exists without utt2spk");
  my %covered;
  for my $spk (@{ $s2u->{keys} }) {
    for my $utt (split(' ', $s2u->{value}{$spk})) {
      my $where = "$dir/spk2utt:$s2u->{line}{$spk}";
      my $actual = $u2s->{value}{$utt};
      fail("$where: utterance $utt is not in utt2spk") unless defined $actual;
      fail("$where: utterance $utt belongs to speaker $actual in utt2spk") unless $actual eq $spk;
      fail("$where: utterance $utt is listed twice") if $covered{$utt}++;
    }
  }
  for my $utt (@{ $u2s->{keys} }) {
    fail("$dir/utt2spk:$u2s->{line}{$utt}: utterance $utt is missing from spk2utt") unless $covered{$utt};
  }
}

my $num_utts = scalar @{ $ref->{keys} };
print "$prog: $dir: $num_utts utterances, $num_classes classes, ok\n";
exit 0;
PERL
