"""Outgoing webhooks, signed in the Standard Webhooks format (standardwebhooks.com), that cannot be
turned against the operator's own network (SSRF): https only, and every address the host resolves
to must be global (an IPv6 form carrying an IPv4 address is judged by that address), checked at save
and again at send, when the request connects to the address that was checked. No redirects; a 5 s
timeout."""

import base64
import datetime as dt
import ipaddress
import json
import secrets
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from standardwebhooks.webhooks import Webhook

from alerts.models import WebhookEndpoint

TIMEOUT_SECONDS = 5.0
# The same on every attempt of one delivery: a receiver that saw it already can ignore a retry.
ID_HEADER = "webhook-id"
# The attempt's time in whole seconds, inside the signature: receivers refuse one older than a few
# minutes, so a captured delivery cannot be sent to them again later.
TIMESTAMP_HEADER = "webhook-timestamp"
# "v1,<base64 HMAC-SHA256 of id.timestamp.body>", one per secret that signs, separated by spaces.
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the form's prefix, not a secret)
SECRET_BYTES = 32


class UnsafeURL(ValueError):
    """The URL may not be called; the message says why, for the person who entered it."""


def _local_allowed() -> bool:
    return settings.DEBUG or settings.WEBHOOK_ALLOW_LOCAL


# IPv6 ranges whose addresses carry an IPv4 address that a translator or tunnel delivers to, and
# Python's ipaddress calls most of them global whatever they carry: 64:ff9b::a9fe:a9fe reaches
# 169.254.169.254 through the network's NAT64 gateway. (6to4 and Teredo it calls not global.)
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291, deprecated; still routed by some stacks
IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # RFC 2765 (SIIT)
# NAT64's local-use prefix (RFC 8215) is not in this list: each network chooses where in it the IPv4
# address sits, so what an address leads to cannot be told. ipaddress calls it not global: refused.


def _carried_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to (Teredo's server and client), or none."""
    if address.ipv4_mapped is not None:  # ::ffff:0:0/96
        return [address.ipv4_mapped]
    if address.sixtofour is not None:  # 2002::/16
        return [address.sixtofour]
    if address.teredo is not None:  # 2001::/32
        return list(address.teredo)
    if address.is_unspecified or address.is_loopback:  # :: and ::1, inside ::/96 but not carriers
        return []
    if any(address in network for network in (NAT64_WELL_KNOWN, IPV4_COMPATIBLE, IPV4_TRANSLATED)):
        return [ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)]
    return []


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not address.is_global or address.is_multicast


def _address_check(host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    carried = _carried_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else []
    if carried:
        # Judged by where it leads, not by the IPv6 range (which may be global).
        for ipv4 in carried:
            if _internal(ipv4):
                raise UnsafeURL(
                    _("The host %(host)s is an internal address (%(ipv4)s, inside %(address)s).")
                    % {"host": host, "ipv4": ipv4, "address": address}
                )
    elif _internal(address):
        raise UnsafeURL(
            _("The host %(host)s is an internal address (%(address)s).") % {"host": host, "address": address}
        )


def webhook_url_check(url: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses the URL's host resolves to, all of them public; raises UnsafeURL otherwise."""
    parts = urlsplit(url)
    allowed_schemes = {"https", "http"} if _local_allowed() else {"https"}
    if parts.scheme not in allowed_schemes:
        raise UnsafeURL(_("The URL must start with https://."))
    if not parts.hostname:
        raise UnsafeURL(_("The URL has no host."))
    if parts.username or parts.password:
        raise UnsafeURL(_("The URL may not carry a user name or password."))
    try:
        found = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnsafeURL(_("The host %(host)s cannot be resolved.") % {"host": parts.hostname}) from error
    addresses = [ipaddress.ip_address(info[4][0]) for info in found]
    if not _local_allowed():
        for address in addresses:
            _address_check(parts.hostname, address)
    return addresses


def webhook_secret_generate() -> str:
    """A new secret in the Standard Webhooks form: whsec_ and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def webhook_secret_rotate(*, endpoint: WebhookEndpoint, at: dt.datetime) -> str:
    """Gives the endpoint a new secret and returns it (to show once). The current one keeps signing
    beside it for WEBHOOK_SECRET_OVERLAP_HOURS; rotating again inside that time drops the oldest."""
    new_secret = webhook_secret_generate()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            secret=new_secret,
            previous_secret=locked.secret,
            previous_secret_until=at + dt.timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS),
        )
    return new_secret


def signature_headers(
    *, message_id: str, body: bytes, signing_secrets: Sequence[str], at: dt.datetime
) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: each secret signs id.timestamp.body, so during
    a rotation a receiver holding either the old or the new secret verifies."""
    at = at.replace(microsecond=0)
    return {
        ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(int(at.timestamp())),
        SIGNATURE_HEADER: " ".join(Webhook(secret).sign(message_id, at, body) for secret in signing_secrets),
    }


def webhook_post(
    url: str, payload: dict, *, signing_secrets: Sequence[str], delivery_id: int, at: dt.datetime
) -> int:
    """POSTs the payload as JSON, signed at `at` with each of `signing_secrets`; returns the status
    code. Raises UnsafeURL, or urllib3's errors when the host cannot be reached in time."""
    address = webhook_url_check(url)[0]
    parts = urlsplit(url)
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Host": parts.netloc.rsplit("@", 1)[-1],
        "Content-Type": "application/json",
        "User-Agent": "esimdash-webhook/1",
        **signature_headers(message_id=str(delivery_id), body=body, signing_secrets=signing_secrets, at=at),
    }
    timeout = urllib3.Timeout(total=TIMEOUT_SECONDS)
    pool: urllib3.HTTPConnectionPool
    if parts.scheme == "https":
        # Connect to the checked address; present and verify the name from the URL.
        pool = urllib3.HTTPSConnectionPool(
            str(address),
            parts.port or 443,
            server_hostname=parts.hostname,
            assert_hostname=parts.hostname,
            timeout=timeout,
            retries=False,
        )
    else:
        pool = urllib3.HTTPConnectionPool(str(address), parts.port or 80, timeout=timeout, retries=False)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    with pool:
        response = pool.urlopen("POST", path, body=body, headers=headers, redirect=False, retries=False)
        return response.status
