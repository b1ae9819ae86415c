"""The import's reader thread (usage.csv_import.one_ahead): items in order, and the short GIL
switch interval only while a reader runs, however many run at once."""

import sys

import pytest

from usage.csv_import import _READER_SWITCH_INTERVAL_S, one_ahead

# Python keeps the interval in whole microseconds: 0.0002 reads back as 0.00019999999999999998.
SHORT = pytest.approx(_READER_SWITCH_INTERVAL_S, abs=1e-9)


def test_items_come_in_order_and_the_interval_is_short_only_while_reading():
    usual = sys.getswitchinterval()
    seen = []
    for item in one_ahead(iter(range(5))):
        seen.append((item, sys.getswitchinterval()))
    assert seen == [(n, SHORT) for n in range(5)]
    assert sys.getswitchinterval() == usual


def test_two_readers_at_once_restore_the_usual_interval_when_both_end():
    usual = sys.getswitchinterval()
    first, second = one_ahead(iter("ab")), one_ahead(iter("xy"))
    assert (next(first), next(second)) == ("a", "x")
    list(first)  # the first ends while the second still reads
    assert sys.getswitchinterval() == SHORT
    assert list(second) == ["y"]
    assert sys.getswitchinterval() == usual


def test_a_reader_abandoned_midway_restores_the_interval():
    usual = sys.getswitchinterval()
    reader = one_ahead(iter(range(10)))
    assert next(reader) == 0
    reader.close()
    assert sys.getswitchinterval() == usual
