"""A new account is never a dead end: every page with nothing to show yet says why, and links to
the next step."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tests.factories import make_user

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
        ("usage:home", "no-lines", ["family:pools", "accounts:email_change"]),
    ],
)
def test_an_empty_page_links_to_the_next_step(client, page, testid, links):
    client.force_login(make_user("newcomer"))
    response = client.get(reverse(page))
    assert response.status_code == 200
    assert next_steps(response.content.decode(), testid) == [reverse(link) for link in links]


def test_the_lines_page_says_which_address_lines_arrive_for(client):
    client.force_login(make_user("newcomer"))
    assert "The eSIMs you buy with newcomer@example.com appear here" in client.get("/").content.decode()
