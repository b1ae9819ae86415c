"""The gift form guides before it refuses: it says per source how much can be given now and why,
every limit is checked before the confirmation (by the checks gift_send makes), a recipient is
confirmed by the digits their own pages show, every gift action ends with a message, and the
redeem form says why no line can take the data."""

import datetime as dt
import uuid

import pytest
from django.core.cache import cache
from django.urls import reverse

from esimdash.units import GB, MB
from family.gifts import gift_send
from plans.models import Gift, GiftRequest, Line, Plan, Pool, PoolMember
from tests.factories import TOKYO, make_line, make_plan, make_pool, make_user, pool_join, use

NOW = dt.datetime(2026, 11, 18, 12, 0, tzinfo=TOKYO)  # mid-month: the monthly limits count from Nov 1
pytestmark = [pytest.mark.django_db, pytest.mark.frozen(NOW)]


@pytest.fixture(autouse=True)
def empty_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def wang():
    user = make_user("wangming", first_name="Ming", last_name="Wang")
    return make_line(user, activated_at=NOW - dt.timedelta(days=3), nickname="Wang phone")


@pytest.fixture
def friend():
    return make_line(
        make_user("friend", first_name="Jing", last_name="Li"),
        activated_at=NOW - dt.timedelta(days=3),
        nickname="Li phone",
        phone_number="+818098765432",
    )


def give(client, line: Line, amount_mb: int, to: str, follow: bool = False, **extra):
    form = {"source": f"line:{line.pk}", "amount_mb": str(amount_mb), "to": to, "key": str(uuid.uuid4())}
    return client.post(reverse("family:gift_send"), {**form, **extra}, follow=follow)


def errors(response) -> list[str]:
    form = response.context["form"]
    return [str(error) for field_errors in form.errors.values() for error in field_errors]


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def rooms(response) -> list[tuple[str, str]]:
    return list(response.context["rooms"])


# --- Refused before the confirmation ------------------------------------------------------------------
def test_a_gift_to_oneself_is_refused_before_the_confirmation(client, wang):
    client.force_login(wang.owner)

    response = give(client, wang, 500, "wangming")

    assert response.status_code == 400
    assert response.templates[0].name == "family/gifts.html"
    assert response.context["form"].errors == {"to": ["A line cannot give data to itself."]}
    assert Gift.objects.count() == 0


def test_a_gift_of_more_than_the_line_can_give_is_refused_before_the_confirmation(client, wang, friend):
    use(wang, 19_500 * MB, NOW - dt.timedelta(hours=2))
    client.force_login(wang.owner)

    response = give(client, wang, 600, "080-9876-5432")

    assert response.status_code == 400
    assert response.templates[0].name == "family/gifts.html"
    assert errors(response) == ["You can give at most 490 MB: 10.0 MB stays on the line."]
    assert Gift.objects.count() == 0


def test_the_monthly_limits_are_checked_before_the_confirmation(client, wang, friend, settings):
    settings.GIFT_MONTHLY_COUNT = 1
    gift_send(sender=wang.owner, from_line=wang, amount_bytes=100 * MB, idempotency_key=uuid.uuid4(), at=NOW)
    client.force_login(wang.owner)

    response = give(client, wang, 500, "friend")

    assert response.status_code == 400
    assert errors(response) == ["You have made 1 gifts this month, the most a month allows."]
    assert Gift.objects.count() == 1


def test_the_confirmation_offers_only_the_lines_the_gift_can_reach(client, wang):
    other = make_line(wang.owner, activated_at=NOW - dt.timedelta(days=3), nickname="Wang tablet")
    make_line(wang.owner, plan=make_plan(Plan.Kind.UNLIMITED), activated_at=NOW - dt.timedelta(days=3))
    client.force_login(wang.owner)

    response = give(client, wang, 500, "wangming")

    assert response.status_code == 200
    assert response.templates[0].name == "family/gift_confirm.html"
    assert [line for line, _name, _masked in response.context["recipients"]] == [other]


def test_a_double_click_on_the_confirmation_still_finds_its_gift(client, wang, friend, settings):
    """The checks before the confirmation let a gift already made with the key through: the second
    click answers with the first gift, even when that gift used up the month."""
    settings.GIFT_MONTHLY_COUNT = 1
    client.force_login(wang.owner)
    form = {"source": f"line:{wang.pk}", "amount_mb": "500", "to": "friend", "key": str(uuid.uuid4())}

    first = client.post(reverse("family:gift_send"), {**form, "to_line": friend.pk})
    second = client.post(reverse("family:gift_send"), {**form, "to_line": friend.pk})

    assert first.status_code == second.status_code == 302
    assert first.url == second.url == reverse("family:gift", args=[Gift.objects.get().pk])


# --- One set of digits on both sides ------------------------------------------------------------------
def test_a_recipient_is_confirmed_by_the_iccid_digits_their_own_gifts_page_shows(client, wang, friend):
    digits = f"ICCID ···{friend.iccid[-4:]}"
    client.force_login(wang.owner)
    confirm = give(client, wang, 500, "080-9876-5432")
    client.force_login(friend.owner)
    own_page = client.get(reverse("family:gifts")).content.decode()

    assert [(name, masked) for _line, name, masked in confirm.context["recipients"]] == [
        ("J*** L**", f"L*** · {digits}")
    ]
    assert f"J*** L** · L*** · {digits}" in confirm.content.decode()
    assert f"Li phone · {digits}</option>" in own_page


# --- How much can be given, before typing -------------------------------------------------------------
def test_the_form_says_how_much_each_line_can_give_and_why(client, wang, settings):
    second = make_line(wang.owner, activated_at=NOW - dt.timedelta(days=3), nickname="Wang tablet")
    use(second, 18_800 * MB, NOW - dt.timedelta(hours=2))
    settings.GIFT_MONTHLY_COUNT = 5
    for _n in range(2):
        gift_send(
            sender=wang.owner, from_line=wang, amount_bytes=100 * MB, idempotency_key=uuid.uuid4(), at=NOW
        )
    client.force_login(wang.owner)

    page = client.get(reverse("family:gifts"))

    assert rooms(page) == [
        ("Wang phone", "Up to 9.99 GB now, the most one gift can be; 2 of 5 gifts this month used."),
        ("Wang tablet", "Up to 1.19 GB now: 10.0 MB must stay on the line; 2 of 5 gifts this month used."),
    ]
    assert 'aria-describedby="gift-room"' in page.content.decode()


def test_the_form_says_when_the_month_or_the_data_leaves_nothing_to_give(client, wang, settings):
    use(wang, 19_950 * MB, NOW - dt.timedelta(hours=2))
    client.force_login(wang.owner)
    assert rooms(client.get(reverse("family:gifts"))) == [
        ("Wang phone", "Nothing now: a gift is at least 100 MB, and less than that can be given.")
    ]

    settings.GIFT_MONTHLY_BYTES = 3 * GB
    settings.GIFT_MONTHLY_COUNT = 2
    wang_2 = make_line(wang.owner, activated_at=NOW - dt.timedelta(days=3), nickname="Wang tablet")
    gift_send(sender=wang.owner, from_line=wang_2, amount_bytes=1 * GB, idempotency_key=uuid.uuid4(), at=NOW)
    assert rooms(client.get(reverse("family:gifts")))[1] == (
        "Wang tablet",
        "Up to 2.00 GB now: 2.00 GB of this month's 3.00 GB is left to give; 1 of 2 gifts this month used.",
    )
    gift_send(sender=wang.owner, from_line=wang_2, amount_bytes=1 * GB, idempotency_key=uuid.uuid4(), at=NOW)
    assert rooms(client.get(reverse("family:gifts")))[1] == (
        "Wang tablet",
        "Nothing now: you have made 2 of 2 gifts this month.",
    )


def test_a_pool_manager_is_told_what_stays_in_the_pool(client):
    pool = make_pool(
        make_user("parent"), founded_at=NOW, member_limit=4, activated_at=NOW - dt.timedelta(days=3)
    )
    parent = pool.members.get().line
    use(parent, 29 * GB, NOW - dt.timedelta(hours=2))
    client.force_login(parent.owner)

    assert rooms(client.get(reverse("family:gifts"))) == [
        (
            "Pool: Zhang family",
            "Up to 990 MB now: 10.0 MB must stay in the pool; 0 of 10 gifts this month used.",
        )
    ]


def test_a_manager_is_told_of_the_owners_reserve(client):
    pool = make_pool(
        make_user("parent"), founded_at=NOW, member_limit=4, activated_at=NOW - dt.timedelta(days=3)
    )
    mother = make_line(
        make_user("mother"), plan=pool.members.get().line.plan, activated_at=NOW - dt.timedelta(days=3)
    )
    pool_join(pool, by=pool.members.get().line.owner, line=mother, role=PoolMember.Role.MANAGER, at=NOW)
    Pool.objects.filter(pk=pool.pk).update(owner_reserve_bytes=25 * GB)
    client.force_login(mother.owner)

    assert rooms(client.get(reverse("family:gifts"))) == [
        (
            "Pool: Zhang family",
            "Up to 4.99 GB now: the owner's reserve of 25.0 GB and 10.0 MB must stay in the pool; "
            "0 of 10 gifts this month used.",
        )
    ]


# --- A message after every action ---------------------------------------------------------------------
def test_sending_a_gift_says_it_was_given(client, wang, friend):
    client.force_login(wang.owner)

    response = give(client, wang, 500, "friend", to_line=friend.pk)

    page = client.get(response.url)
    assert messages_of(page) == [f"You gave 500 MB to J*** L** · L*** · ICCID ···{friend.iccid[-4:]}."]


def test_making_a_code_says_it_is_ready(client, wang):
    client.force_login(wang.owner)

    response = give(client, wang, 1500, "")

    page = client.get(response.url)
    assert messages_of(page) == ["Your gift code for 1.50 GB is ready: share it with your friend."]


def test_cancelling_and_redeeming_a_code_say_what_happened(client, wang, friend):
    client.force_login(wang.owner)
    made = give(client, wang, 1000, "", follow=True)
    code_gift = made.context["gift"]
    cancelled = client.post(reverse("family:gift_cancel", args=[code_gift.pk]), follow=True)
    assert messages_of(cancelled) == ["The gift is cancelled; the data is back on your line."]

    code = give(client, wang, 1000, "", follow=True).context["code"]
    client.force_login(friend.owner)
    redeemed = client.post(reverse("family:gift_redeem"), {"code": code, "line": friend.pk}, follow=True)
    assert messages_of(redeemed) == ["1.00 GB is now on Li phone."]


@pytest.mark.parametrize(
    ("answer", "message"), [("approve", "Request approved."), ("decline", "Request declined.")]
)
def test_asking_and_answering_a_request_say_what_happened(client, answer, message):
    pool = make_pool(
        make_user("parent"), founded_at=NOW, member_limit=4, activated_at=NOW - dt.timedelta(days=3)
    )
    parent = pool.members.get().line
    child = make_line(make_user("child"), plan=parent.plan, activated_at=NOW - dt.timedelta(days=3))
    pool_join(pool, by=parent.owner, line=child, role=PoolMember.Role.SUPERVISED, at=NOW)
    client.force_login(child.owner)
    form = {"line": child.pk, "amount_mb": "500", "message": "", "key": str(uuid.uuid4())}
    asked = client.post(reverse("family:gift_request"), form, follow=True)
    assert messages_of(asked) == ["Your request was sent to the pool's managers."]

    client.force_login(parent.owner)
    request = GiftRequest.objects.get()
    answered = client.post(
        reverse("family:gift_request_answer", args=[request.pk, answer]), {"from": "pool"}, follow=True
    )
    assert messages_of(answered) == [message]


# --- The redeem form without a line to redeem on ------------------------------------------------------
def test_the_redeem_form_says_why_no_line_can_take_the_data(client, wang):
    newcomer = make_user("newcomer")
    client.force_login(newcomer)
    page = client.get(reverse("family:gift_redeem") + "?code=ABCD").content.decode()
    assert (
        "You have no line to put gifted data on yet: add a line first, with the ICCID and activation "
        "code of your eSIM." in page
    )
    assert f'<a class="button primary" href="{reverse("usage:line_claim")}">Add a line</a>' in page
    assert "Keep the code: it works for 48 hours from when it was made" in page
    assert 'name="line"' not in page

    make_line(newcomer, plan=make_plan(Plan.Kind.UNLIMITED), activated_at=NOW - dt.timedelta(days=3))
    page = client.get(reverse("family:gifts")).content.decode()
    assert (
        "None of your lines can take gifted data: expired lines and unlimited plans cannot receive it."
        in page
    )
    assert 'name="line"' not in page


# --- Copy and share -----------------------------------------------------------------------------------
def test_the_code_page_has_copy_and_share_buttons_for_the_code(client, wang):
    client.force_login(wang.owner)
    page = client.get(give(client, wang, 1000, "").url).content.decode()

    assert '<code id="gift-code">' in page
    assert 'data-copy="gift-code"' in page
    assert 'data-share-url="http' in page
    assert 'id="gift-code-status" class="copy-status" role="status" aria-live="polite"' in page


def test_a_new_webhooks_secret_has_a_copy_button(client, wang, settings):
    settings.WEBHOOK_ALLOW_LOCAL = True
    client.force_login(wang.owner)

    page = client.post(reverse("alerts:webhooks"), {"url": "http://127.0.0.1:9/hook"}).content.decode()

    assert 'id="webhook-secret" class="secret"' in page
    assert 'data-copy="webhook-secret"' in page
