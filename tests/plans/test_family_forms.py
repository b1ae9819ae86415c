"""The family forms parse amounts of data typed in GB into whole bytes, and name the field that
does not parse; the lines they offer for a pool are the ones the services take."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from esimdash.units import GB
from family.forms import CapsForm, GigabytesField, InviteAnswerForm, PoolStartForm, ReserveForm
from family.pools import (
    CapChange,
    PoolError,
    invite_for_token,
    pool_create,
    pool_invite_accept,
    pool_member_invite,
)
from plans.models import Line, PoolMember
from tests.factories import make_line, make_plan


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


@pytest.mark.parametrize("typed", ["0.05", "0", "-1"])
def test_a_field_with_a_minimum_refuses_less(typed):
    with pytest.raises(ValidationError) as refused:
        GigabytesField(required=False, minimum_bytes=100_000_000).clean(typed)
    assert refused.value.messages == ["Enter a larger number of GB."]


def test_a_field_with_a_minimum_takes_the_minimum_and_empty():
    field = GigabytesField(required=False, minimum_bytes=100_000_000)
    assert (field.clean("0.1"), field.clean("")) == (100_000_000, None)


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
        ({"cap-1": "0.1"}, [CapChange(1, 100_000_000, "throttle")]),  # the smallest cap
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
        ({"cap-1": "0"}, "The cap for Wife must be at least 0.1 GB."),
        ({"cap-1": "-1"}, "The cap for Wife must be at least 0.1 GB."),
        ({"cap-1": "0.05"}, "The cap for Wife must be at least 0.1 GB."),
        ({"cap-1": "0.099999999"}, "The cap for Wife must be at least 0.1 GB."),
        ({"cap-2": "1.0000000001"}, "The cap for 50% Kid has more than 9 decimal places."),
        ({"cap-2": "abc", "cap-1": "0"}, "The cap for Wife must be at least 0.1 GB."),  # in member order
    ],
)
def test_the_caps_form_names_the_line_whose_cap_does_not_parse(data, message):
    form = CapsForm(data, members=members())
    assert not form.is_valid()
    assert form.first_error() == message


@pytest.mark.django_db
def test_the_lines_offered_for_a_pool_are_the_ones_the_services_take(owner, second_user):
    """One definition (family.pools.lines_free_to_join): the forms offer these lines and the
    services refuse any other, an expired line included."""
    now = timezone.now()
    shareable = make_plan(allowance_bytes=30 * GB, shareable=True)
    starts = make_line(owner, plan=shareable, activated_at=now - dt.timedelta(days=1), nickname="Starts")
    expired = make_line(owner, plan=shareable, activated_at=now - dt.timedelta(days=1), nickname="Old")
    Line.objects.filter(pk=expired.pk).update(status=Line.Status.EXPIRED)
    single = make_line(owner, activated_at=now - dt.timedelta(days=1), nickname="Single")
    assert list(PoolStartForm(user=owner).lines) == [starts]
    with pytest.raises(PoolError) as refused:
        pool_create(user=owner, line=Line.objects.get(pk=expired.pk), name="No", at=now)
    assert str(refused.value) == "An expired line cannot join a pool."
    pool = pool_create(user=owner, line=starts, name="Home", at=now)
    assert sorted(line.nickname for line in InviteAnswerForm(user=owner, pool=pool).lines) == ["Single"]
    _, token = pool_member_invite(pool=pool, by=owner, to=second_user.username, at=now)
    with pytest.raises(PoolError) as refused:
        pool_invite_accept(invite=invite_for_token(token), user=second_user, line=single, at=now)
    assert str(refused.value) == "That line is not yours."
