"""A page rendered in 简体中文 or 日本語 contains no English a translator could have translated: no text
that is an English message of our catalogue or Django's, and no run of English words that is not a
name (of a plan, a carrier, an app or a person) the data itself holds."""

import re
from html.parser import HTMLParser
from pathlib import Path

import django
import pytest
from babel.messages.pofile import read_po
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import translation

from alerts.models import WebhookEndpoint
from esimdash.places import time_zone_choices
from plans.models import Carrier, Plan
from tests.security.user_text import World, owner_pages, world_create
from usage.history import RANGES

RANGE_KEYS = list(RANGES)

pytestmark = pytest.mark.django_db

LANGUAGES = ["zh-hans", "ja"]
# Text that is the same in every language: the product's name, units, codes people type, and
# "English" in the language picker, where each language is named in itself.
UNTRANSLATED = {
    "English",
    "Webhook",
    "esimdash",
    "CSV",
    "ICCID",
    "EID",
    "URL",
    "SIM",
    "eSIM",
    "HTTPS",
    "QR",
    "LPA",
}
ENGLISH_RUN = re.compile(r"[A-Za-z][A-Za-z']+(?:[ ,.:-]+[A-Za-z][A-Za-z']*)+")
# Addresses, e-mail addresses and the names of HTTP headers, algorithms and formats are the same in every
# language.
CODES = re.compile(r"https?://\S+|\S+@\S+|\b(?:X|webhook)-[\w-]+|HMAC-SHA256|Standard Webhooks")
# Attributes people read or hear (a screen reader reads aria-label and title).
READ_ATTRIBUTES = {"aria-label", "title", "placeholder", "alt"}


class VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in {"script", "style", "template"}:
            self._hidden += 1
        self.texts += [value for name, value in attrs if name in READ_ATTRIBUTES and value]

    def handle_endtag(self, tag):
        if tag in {"script", "style", "template"}:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden and data.strip():
            self.texts.append(" ".join(data.split()))


def english_messages() -> set[str]:
    """Every English message id of our catalogue and of Django's own, of two letters or more."""
    catalogues = [Path(settings.BASE_DIR) / "esimdash/locale/ja/LC_MESSAGES/django.po"]
    catalogues += (Path(django.__file__).parent / "conf/locale/ja/LC_MESSAGES").glob("*.po")
    catalogues += (Path(django.__file__).parent / "contrib/auth/locale/ja/LC_MESSAGES").glob("*.po")
    messages = set()
    for path in catalogues:
        with path.open("rb") as po:
            for message in read_po(po):
                for text in message.id if isinstance(message.id, tuple) else (message.id,):
                    if text and "%" not in text and len(text) > 1:
                        messages.add(" ".join(text.split()))
    return messages


def names_in_the_data() -> set[str]:
    """Plans' and carriers' names, and the cities CLDR names in English only ("Buenos Aires")."""
    names = set(UNTRANSLATED) | set(untranslated_cities())
    for name in [
        *Plan.objects.values_list("name", flat=True),
        *Carrier.objects.values_list("name", flat=True),
    ]:
        names.update({name, *name.split()})
    return names


# Chinese or Japanese text followed by an ASCII colon: both languages write "：".
ASCII_COLON_AFTER_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff][^\S\n]*:")


def english_on(html: str, *, messages: set[str], names: set[str]) -> list[str]:
    """The English a translator could have translated, and ASCII colons after Chinese or Japanese."""
    parser = VisibleText()
    parser.feed(html)
    found = []
    for text in parser.texts:
        found += ASCII_COLON_AFTER_CJK.findall(text)
        stripped = text.strip(" :\uff1a\u00b7()\uff08\uff09")
        if stripped in messages and stripped not in names:
            found.append(text)
            continue
        for run in ENGLISH_RUN.findall(CODES.sub(" ", text)):
            if not all(word in names for word in re.findall(r"[A-Za-z][A-Za-z']*", run)):
                found.append(run)
    return found


def untranslated_cities() -> set[str]:
    """The Latin words CLDR leaves in the time zones' names in zh-Hans and ja."""
    cities = set()
    for language in ("zh-hans", "ja"):
        with translation.override(language):
            for _zone, label in time_zone_choices():
                cities.update(re.findall(r"[A-Za-z][A-Za-z']*", label))
    return cities


@pytest.fixture
def world(catalog) -> World:
    world = world_create("王家")
    WebhookEndpoint.objects.create(
        user=world.owner, url="https://hooks.example.net/esimdash", secret="s" * 32
    )
    return world


def signed_in_pages(world: World) -> list[str]:
    line_id = world.line.pk
    return [
        *owner_pages(world),
        *[f"{reverse('usage:line_detail', args=[line_id])}?range={key}" for key in RANGE_KEYS],
        reverse("alerts:webhooks"),
        reverse("account_reauthenticate"),
        reverse("account_email"),
        reverse("account_change_password"),
        reverse("usage:line_claim"),
    ]


@pytest.mark.parametrize("language", LANGUAGES)
def test_signed_in_pages_have_no_english(client, world, language):
    world.owner.language = language
    world.owner.save(update_fields=["language"])
    client.force_login(world.owner)
    messages, names = english_messages(), names_in_the_data()
    found = {}
    for url in signed_in_pages(world):
        response = client.get(url)
        assert response.status_code == 200, url
        if english := english_on(response.content.decode(), messages=messages, names=names):
            found[url] = english
    assert found == {}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_add_a_line_page_says_what_is_wrong_in_the_language(client, world, language, rate_limit_cache):
    world.owner.language = language
    world.owner.save(update_fields=["language"])
    client.force_login(world.owner)
    messages, names = english_messages(), names_in_the_data()
    answers = [
        client.post(reverse("usage:line_claim"), {"iccid": "12345", "code": "LPA:1$smdp.example.com"}),
        client.post(reverse("usage:line_claim"), {"iccid": "8981100000000099996", "code": "WRONG"}),
    ]
    assert [answer.status_code for answer in answers] == [400, 400]
    assert [english_on(answer.content.decode(), messages=messages, names=names) for answer in answers] == [
        [],
        [],
    ]


@pytest.mark.parametrize("language", LANGUAGES)
def test_signed_out_pages_have_no_english(client, language):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    messages, names = english_messages(), names_in_the_data()
    found = {}
    for url in [
        reverse("account_login"),
        reverse("account_signup"),
        reverse("account_reset_password"),
        reverse("account_email_verification_sent"),
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        if english := english_on(response.content.decode(), messages=messages, names=names):
            found[url] = english
    assert found == {}


@pytest.mark.parametrize("language", LANGUAGES)
def test_mails_have_no_english(client, world, language):
    """The mails the world's journeys send (the pool invitation), a password reset and a sign-up's
    confirmation (in the language of the page it was asked from)."""
    world.owner.language = language
    world.owner.save(update_fields=["language"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    client.post(reverse("account_reset_password"), {"email": world.owner.email})
    client.post(
        reverse("account_signup"),
        {
            "email": "newcomer@example.com",
            "password1": "a-long-enough-passphrase",
            "time_zone": "Asia/Tokyo",
            "language": language,
        },
    )
    assert mail.outbox[-1].to == ["newcomer@example.com"]
    messages, names = english_messages(), names_in_the_data()
    assert len(mail.outbox) >= 1
    found = {
        message.subject: english
        for message in mail.outbox
        if (
            english := english_on(
                f"<p>{message.subject}</p><pre>{message.body}</pre>", messages=messages, names=names
            )
        )
    }
    assert found == {}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("page", "form"),
    [
        ("alerts:webhooks", {"url": "ftp://hooks.example.net/a"}),
        ("alerts:webhooks", {"url": "https://127.0.0.1/a"}),
        ("alerts:webhooks", {"url": "not a url"}),
        ("family:gift_redeem", {"code": "nope"}),
    ],
)
def test_form_errors_have_no_english(client, world, language, page, form):
    world.owner.language = language
    world.owner.save(update_fields=["language"])
    client.force_login(world.owner)
    response = client.post(reverse(page), form)
    assert response.status_code == 400
    assert english_on(response.content.decode(), messages=english_messages(), names=names_in_the_data()) == []
