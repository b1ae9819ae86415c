"""A new account is never a dead end: every page with nothing to show yet says why, and links to
the next step."""

import datetime as dt
from html.parser import HTMLParser

import pytest
from django.urls import reverse, reverse_lazy
from django.utils import timezone

from tests.factories import make_line, make_plan, make_user

pytestmark = pytest.mark.django_db


class EmptyState(HTMLParser):
    """The links inside the element marked data-testid=<testid>."""

    def __init__(self, testid: str) -> None:
        super().__init__()
        self.testid, self.depth, self.found, self.links = testid, 0, False, []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if self.depth:
            self.depth += 1
        elif attributes.get("data-testid") == self.testid:
            self.depth, self.found = 1, True
        if self.depth and tag == "a":
            self.links.append(attributes["href"])

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1


def next_steps(html: str, testid: str) -> list[str]:
    parser = EmptyState(testid)
    parser.feed(html)
    assert parser.found, f"no element with data-testid={testid}"
    return parser.links


@pytest.mark.parametrize(
    ("page", "testid", "links"),
    [
        (
            "usage:home",
            "no-lines",
            [
                reverse_lazy("usage:line_claim"),
                reverse_lazy("family:gift_redeem"),
                reverse_lazy("family:pools"),
                reverse_lazy("account_email"),
            ],
        ),
        ("family:pools", "no-pools", [reverse_lazy("alerts:notifications")]),
        ("alerts:notifications", "no-notices", [reverse_lazy("usage:home")]),
    ],
)
def test_an_empty_page_links_to_the_next_step(client, page, testid, links):
    client.force_login(make_user("newcomer"))
    response = client.get(reverse(page))
    assert response.status_code == 200
    assert next_steps(response.content.decode(), testid) == [str(link) for link in links]


def test_no_unread_notices_links_to_every_notice(client):
    client.force_login(make_user("newcomer"))
    response = client.get(reverse("alerts:notifications") + "?show=unread")
    assert next_steps(response.content.decode(), "no-notices") == ["?show=all"]


def test_a_line_outside_a_pool_is_offered_to_start_one(client):
    newcomer = make_user("newcomer")
    make_line(newcomer, plan=make_plan(shareable=True), activated_at=timezone.now() - dt.timedelta(days=1))
    client.force_login(newcomer)
    response = client.get(reverse("family:pools"))
    assert next_steps(response.content.decode(), "no-pools") == [
        "#new-title",
        reverse("alerts:notifications"),
    ]


def test_the_lines_page_says_which_address_lines_arrive_for(client):
    client.force_login(make_user("newcomer"))
    assert "The eSIMs you buy with newcomer@example.com appear here" in client.get("/").content.decode()


def test_redeeming_a_code_without_a_line_leads_to_adding_one(client):
    client.force_login(make_user("newcomer"))
    response = client.get(reverse("family:gift_redeem") + "?code=ABCD-EFGH")
    assert next_steps(response.content.decode(), "redeem-no-lines") == [
        reverse("usage:line_claim"),
        reverse("usage:home"),
    ]
