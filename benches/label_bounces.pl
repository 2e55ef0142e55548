#!/usr/bin/env perl
# Labels a directory of bounce messages with the reference classifier, Perl Sisimai
# 4.25.15 (Debian: libsisimai-perl), in the labels.tsv format `mailcast bounces evaluate`
# reads: one row per (file, failed recipient) with file, recipient, class, status, reason.
#
#   perl benches/label_bounces.pl DIR/mail > DIR/labels.tsv
#
# Class from Sisimai's reading:
#   reason feedback -> complaint, vacation -> autoreply, delivered -> delivered;
#   any other reason -> hard when Sisimai's softbounce is 0, soft when it is 1
#   (hard: userunknown, hostunknown, hasmoved, and notaccept with a 5xx code);
#   a message Sisimai reads no record from -> one row `FILE - none - NOTHING`.
use strict;
use warnings;
use Sisimai;

my $dir = shift or die "usage: $0 DIR_OF_MESSAGES\n";
die "Sisimai 4.25.15 expected, found " . Sisimai->version . "\n"
    unless Sisimai->version eq '4.25.15';

opendir my $dh, $dir or die "cannot read $dir: $!\n";
my @files = sort grep { -f "$dir/$_" } readdir $dh;
closedir $dh;

print join("\t", qw(file recipient class status reason)), "\n";
for my $file (@files) {
    my $records = Sisimai->make("$dir/$file", 'delivered' => 1) // [];
    unless (@$records) {
        print join("\t", $file, '-', 'none', '-', 'NOTHING'), "\n";
        next;
    }
    for my $r (@$records) {
        my $recipient = $r->recipient ? $r->recipient->address : '';
        print join("\t",
            $file,
            length $recipient ? $recipient : '-',
            class_of($r),
            $r->deliverystatus || '-',
            $r->reason || '-'), "\n";
    }
}

sub class_of {
    my $r = shift;
    my %special = (feedback => 'complaint', vacation => 'autoreply', delivered => 'delivered');
    my $reason = $r->reason // '';
    return $special{$reason} if exists $special{$reason};
    return 'hard' if $r->softbounce eq '0';
    return 'soft' if $r->softbounce eq '1';
    return 'none';
}
