"""Webhook URLs whose IPv6 address carries an IPv4 address (NAT64, IPv4-mapped, -compatible and
-translated, 6to4, Teredo) are judged by the IPv4 address they lead to: refused when it is internal,
when saved and when sent. Only literal addresses are used, so nothing is looked up or connected to."""

import ipaddress

import pytest
import urllib3
from django.urls import reverse
from django.utils import timezone

from alerts.models import WebhookEndpoint
from alerts.webhooks import UnsafeURL, webhook_post, webhook_url_check
from tests.factories import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def production_rules(settings):
    settings.DEBUG = False
    settings.WEBHOOK_ALLOW_LOCAL = False


@pytest.mark.parametrize(
    ("host", "leads_to"),
    [
        # NAT64's well-known prefix 64:ff9b::/96 (RFC 6052): the metadata address, private, loopback.
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ("64:ff9b::10.0.0.1", "10.0.0.1"),
        ("64:ff9b::127.0.0.1", "127.0.0.1"),
        ("64:ff9b::192.168.1.1", "192.168.1.1"),
        ("64:ff9b::", "0.0.0.0"),  # noqa: S104 -- an address under test, not a binding
        ("64:ff9b::e000:1", "224.0.0.1"),  # multicast
        # IPv4-compatible ::/96 (deprecated, still routed by some stacks).
        ("::10.0.0.1", "10.0.0.1"),
        ("::127.0.0.1", "127.0.0.1"),
        ("::a9fe:a9fe", "169.254.169.254"),
        # IPv4-mapped ::ffff:0:0/96 and IPv4-translated ::ffff:0:0:0/96 (SIIT).
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("::ffff:169.254.169.254", "169.254.169.254"),
        ("::ffff:0:a00:1", "10.0.0.1"),
        ("::ffff:0:7f00:1", "127.0.0.1"),
        # 6to4 2002::/16: the IPv4 address follows the prefix.
        ("2002:a00:1::1", "10.0.0.1"),
        ("2002:a9fe:a9fe::", "169.254.169.254"),
        # Teredo 2001::/32: server in bits 32-63, client (inverted) in the last 32.
        ("2001:0:a00:1::", "10.0.0.1"),
        ("2001:0:808:808:8000:63bf:80ff:fffe", "127.0.0.1"),
    ],
)
def test_an_ipv6_address_carrying_an_internal_ipv4_address_is_refused(host, leads_to):
    with pytest.raises(UnsafeURL) as refused:
        webhook_url_check(f"https://[{host}]/hook")
    inside = ipaddress.ip_address(host)
    assert str(refused.value) == f"The host {host} is an internal address ({leads_to}, inside {inside})."


@pytest.mark.parametrize(
    ("host", "address"),
    [
        # NAT64's local-use prefix 64:ff9b:1::/48 (RFC 8215): each network chooses where in it the
        # IPv4 address sits, so what it leads to cannot be told; refused whatever it carries.
        ("64:ff9b:1::808:808", "64:ff9b:1::808:808"),
        ("64:ff9b:1::a00:1", "64:ff9b:1::a00:1"),
        # Plain IPv6 that is not global.
        ("::1", "::1"),
        ("::", "::"),
        ("fd00::1", "fd00::1"),
        ("fe80::1", "fe80::1"),
        ("ff02::1", "ff02::1"),
        ("100::1", "100::1"),
        ("2001:db8::1", "2001:db8::1"),
    ],
)
def test_internal_ipv6_addresses_are_refused(host, address):
    with pytest.raises(UnsafeURL) as refused:
        webhook_url_check(f"https://[{host}]/hook")
    assert str(refused.value) == f"The host {host} is an internal address ({address})."


@pytest.mark.parametrize(
    "host",
    [
        "64:ff9b::8.8.8.8",
        "::8.8.8.8",
        "::ffff:8.8.8.8",
        "::ffff:0:808:808",
        "2002:808:808::1",
        "2001:0:808:808:8000:63bf:f7f7:f7f7",  # server and client 8.8.8.8
        "2606:4700:4700::1111",  # plain global IPv6
    ],
)
def test_an_ipv6_address_carrying_a_global_ipv4_address_is_allowed(host):
    assert webhook_url_check(f"https://[{host}]/hook") == [ipaddress.ip_address(host)]


def test_a_saved_url_is_checked_again_when_sent(monkeypatch):
    """The check the request runs before it connects. Were it to let the address through, the
    test fails without connecting to it."""

    def connect(*args, **kwargs):
        raise AssertionError("the request would have connected")

    monkeypatch.setattr(urllib3, "HTTPSConnectionPool", connect)
    with pytest.raises(UnsafeURL) as refused:
        webhook_post(
            "https://[64:ff9b::a9fe:a9fe]/hook",
            {"event": "test"},
            signing_secrets=[WEBHOOK_SECRET],
            delivery_id=1,
            at=timezone.now(),
        )
    assert str(refused.value) == (
        "The host 64:ff9b::a9fe:a9fe is an internal address (169.254.169.254, inside 64:ff9b::a9fe:a9fe)."
    )


@pytest.mark.parametrize(
    ("host", "leads_to"), [("64:ff9b::127.0.0.1", "127.0.0.1"), ("::127.0.0.1", "127.0.0.1")]
)
def test_the_form_refuses_them_and_says_why(client, owner, host, leads_to):
    client.force_login(owner)
    refused = client.post(reverse("alerts:webhooks"), {"url": f"https://[{host}]/hook"})
    assert refused.status_code == 400
    assert refused.context["form"].errors == {
        "url": [f"The host {host} is an internal address ({leads_to}, inside {ipaddress.ip_address(host)})."]
    }
    assert WebhookEndpoint.objects.count() == 0


def test_the_refusal_is_in_the_users_language(client, owner):
    owner.language = "ja"
    owner.save()
    client.force_login(owner)
    refused = client.post(reverse("alerts:webhooks"), {"url": "https://[::127.0.0.1]/hook"})
    assert refused.context["form"].errors == {
        "url": ["ホスト ::127.0.0.1 は内部アドレスです（::7f00:1 に含まれる 127.0.0.1）。"]
    }
