"""The family forms parse amounts of data typed in GB into whole bytes, and name the field that
does not parse. No database: the forms only read what they are given."""

import pytest
from django.core.exceptions import ValidationError

from esimdash.units import GB
from family.forms import CapsForm, GigabytesField, ReserveForm
from family.pools import CapChange
from plans.models import Line, PoolMember


@pytest.mark.parametrize(
    ("typed", "cleaned"),
    [
        ("1.5", 1_500_000_000),
        ("0", 0),
        ("", None),
        ("  2 ", 2_000_000_000),
        ("-1", -1_000_000_000),
        ("0.000000001", 1),
        ("1.5000000000", 1_500_000_000),
    ],
)
def test_gigabytes_are_cleaned_to_whole_bytes(typed, cleaned):
    assert GigabytesField(required=False).clean(typed) == cleaned


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("abc", "Enter a number of GB."),
        ("1,5", "Enter a number of GB."),
        ("NaN", "Enter a number of GB."),
        ("Infinity", "Enter a number of GB."),
        ("1.0000000001", "Enter a number of GB with at most 9 decimal places."),
    ],
)
def test_what_is_not_a_whole_number_of_bytes_is_refused(typed, message):
    with pytest.raises(ValidationError) as refused:
        GigabytesField(required=False).clean(typed)
    assert refused.value.messages == [message]


@pytest.mark.parametrize("typed", ["0", "-1"])
def test_a_positive_field_refuses_zero_and_less(typed):
    with pytest.raises(ValidationError) as refused:
        GigabytesField(required=False, positive=True).clean(typed)
    assert refused.value.messages == ["Enter more than 0 GB."]


@pytest.mark.parametrize(
    ("data", "reserve_bytes"),
    [({"reserve": "1.5"}, 1_500_000_000), ({"reserve": ""}, 0), ({}, 0), ({"reserve": "-1"}, -GB)],
)
def test_the_reserve_form_cleans_bytes_and_empty_is_none_kept(data, reserve_bytes):
    """-1 parses: pool_reserve_set refuses it, with the range it takes."""
    form = ReserveForm(data)
    assert form.is_valid()
    assert form.cleaned_data == {"reserve": reserve_bytes}


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("abc", "The reserve is not a number of GB."),
        ("1.0000000001", "The reserve has more than 9 decimal places."),
    ],
)
def test_the_reserve_form_names_the_reserve(typed, message):
    form = ReserveForm({"reserve": typed})
    assert not form.is_valid()
    assert form.errors == {"reserve": [message]}


def members() -> list[PoolMember]:
    return [
        PoolMember(pk=1, line=Line(nickname="Wife"), cap_bytes=None, cap_action="throttle"),
        PoolMember(pk=2, line=Line(nickname="50% Kid"), cap_bytes=3 * GB, cap_action="pause"),
    ]


@pytest.mark.parametrize(
    ("data", "changes"),
    [
        ({"cap-1": "1.5"}, [CapChange(1, 1_500_000_000, "throttle")]),
        ({"cap-2": ""}, [CapChange(2, None, "pause")]),
        ({"action-2": "throttle"}, [CapChange(2, 3 * GB, "throttle")]),
        ({"cap-1": "", "action-1": "pause"}, [CapChange(1, None, "pause")]),
        ({"cap-2": "3", "action-2": "pause"}, []),
        ({}, []),
    ],
)
def test_the_caps_form_changes_only_what_was_sent_and_differs(data, changes):
    form = CapsForm(data, members=members())
    assert form.is_valid()
    assert form.changes() == changes


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cap-1": "abc"}, "The cap for Wife is not a number of GB."),
        ({"cap-1": "0"}, "The cap for Wife must be more than 0 GB."),
        ({"cap-1": "-1"}, "The cap for Wife must be more than 0 GB."),
        ({"cap-2": "1.0000000001"}, "The cap for 50% Kid has more than 9 decimal places."),
        ({"cap-2": "abc", "cap-1": "0"}, "The cap for Wife must be more than 0 GB."),  # in member order
    ],
)
def test_the_caps_form_names_the_line_whose_cap_does_not_parse(data, message):
    form = CapsForm(data, members=members())
    assert not form.is_valid()
    assert form.first_error() == message
