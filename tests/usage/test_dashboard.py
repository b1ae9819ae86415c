import datetime as dt

import pytest
from django.core.cache import caches
from django.urls import reverse
from django.utils import timezone

from esimdash.units import MB
from tests.factories import HTMX, make_line, use

# The cards show this cycle's figures: usage hours ago is this cycle's in the middle of one.
pytestmark = pytest.mark.frozen


@pytest.fixture
def owner_line(owner):
    return make_line(owner, activated_at=timezone.now() - dt.timedelta(days=3), nickname="Owner phone")


@pytest.mark.django_db
def test_home_lists_only_the_signed_in_users_lines(client, owner, second_user, owner_line):
    make_line(second_user, activated_at=timezone.now(), nickname="Second user's tablet")
    use(owner_line, 1500 * MB, timezone.now() - dt.timedelta(hours=2))
    client.force_login(owner)
    response = client.get(reverse("usage:home"))
    body = response.content.decode()
    assert body.count('<article class="card') == 1
    assert f'<article class="card status-active" id="line-{owner_line.pk}"' in body
    assert "Owner phone" in body
    assert "Second user&#x27;s tablet" not in body
    assert '<span class="figure" data-testid="remaining">18.5 GB</span>' in body


@pytest.mark.django_db
def test_a_line_card_is_an_htmx_fragment_for_its_owner(client, owner, owner_line):
    client.force_login(owner)
    response = client.get(reverse("usage:line_card", args=[owner_line.pk]), headers=HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<article class="card status-active"')
    assert "<html" not in body
    assert f'hx-get="/lines/{owner_line.pk}/card/"' in body


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["second_user", "outsider"])
def test_another_users_line_card_is_not_found(client, request, owner_line, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("usage:line_card", args=[owner_line.pk])).status_code == 404


@pytest.mark.django_db
def test_a_line_that_does_not_exist_is_not_found(client, owner):
    client.force_login(owner)
    assert client.get(reverse("usage:line_card", args=[999_999])).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["usage:home", "usage:line_card"])
def test_anonymous_visitors_are_sent_to_sign_in(client, owner_line, name):
    url = reverse(name, args=[owner_line.pk] if name == "usage:line_card" else [])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next={url}"


@pytest.mark.django_db
def test_the_dashboard_makes_the_same_number_of_queries_whatever_the_history(
    client, owner, owner_line, django_assert_num_queries
):
    client.force_login(owner)
    second = make_line(owner, activated_at=timezone.now() - dt.timedelta(days=3))

    def count_queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        caches["cards"].clear()  # every count draws the cards
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("usage:home")).status_code == 200
        return len(queries)

    before = count_queries()
    for hour in range(60):
        use(owner_line, 10 * MB, timezone.now() - dt.timedelta(hours=hour + 1))
        use(second, 5 * MB, timezone.now() - dt.timedelta(hours=hour + 1))
    assert count_queries() == before
    # session, user, lines, pool memberships, grants, then the usage (daily and hourly rollups, raw
    # records) in one query, for the balances and the last 24 hours' pace together; the lines' poll
    # versions (usage/polls.py), which find no orders on their way to read
    caches["cards"].clear()
    with django_assert_num_queries(7):
        client.get(reverse("usage:home"))


def _cards_of(response) -> str:
    body = response.content.decode()
    return body[body.index('<div class="cards">') : body.index('<p class="add-line">')]


@pytest.mark.django_db
def test_a_page_reloaded_while_nothing_changed_draws_no_card(
    client, owner, owner_line, django_assert_num_queries
):
    use(owner_line, 1500 * MB, timezone.now() - dt.timedelta(hours=2))
    client.force_login(owner)
    first = client.get(reverse("usage:home"))
    # session, user, the lines' poll versions: no balance read, no card drawn
    with django_assert_num_queries(3):
        again = client.get(reverse("usage:home"))
    assert _cards_of(again) == _cards_of(first)
    assert '<span class="figure" data-testid="remaining">18.5 GB</span>' in _cards_of(again)


@pytest.mark.django_db
def test_a_kept_card_is_drawn_again_when_usage_arrives(client, owner, owner_line):
    use(owner_line, 1500 * MB, timezone.now() - dt.timedelta(hours=2))
    client.force_login(owner)
    client.get(reverse("usage:home"))
    use(owner_line, 500 * MB, timezone.now() - dt.timedelta(hours=1))
    cards = _cards_of(client.get(reverse("usage:home")))
    assert '<span class="figure" data-testid="remaining">18.0 GB</span>' in cards


@pytest.mark.django_db
def test_a_kept_card_is_drawn_again_once_time_alone_changes_it(client, owner, owner_line, frozen):
    use(owner_line, 1500 * MB, timezone.now() - dt.timedelta(minutes=50))
    client.force_login(owner)
    first = _cards_of(client.get(reverse("usage:home")))
    assert "No new usage for" not in first
    # An hour after the last record ended, the card says its figures may be behind.
    frozen.move_to(timezone.now() + dt.timedelta(minutes=21))
    later = _cards_of(client.get(reverse("usage:home")))
    assert "No new usage for 1\xa0hour, 1\xa0minute: figures may be behind." in later


@pytest.mark.django_db
def test_the_polled_card_and_the_page_show_the_same_card(client, owner, owner_line):
    use(owner_line, 1500 * MB, timezone.now() - dt.timedelta(hours=2))
    client.force_login(owner)
    page = _cards_of(client.get(reverse("usage:home")))
    polled = client.get(reverse("usage:line_card", args=[owner_line.pk]), headers=HTMX)
    assert polled.content.decode() in page
    caches["cards"].clear()
    drawn = client.get(reverse("usage:line_card", args=[owner_line.pk]), headers=HTMX)
    assert drawn.content == polled.content
    assert drawn["ETag"] == polled["ETag"]
