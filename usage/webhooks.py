"""Outgoing webhooks that cannot be turned against the operator's own network (SSRF).

A URL must be https (http too when DEBUG or WEBHOOK_ALLOW_LOCAL is on). Its host is resolved and
refused when any address is loopback, private, link-local, multicast, reserved or otherwise not
global: when the URL is saved, and again when each request is sent, and the request then
connects to the address that was checked (so a DNS answer that changes in between cannot move it
to an internal host). No redirects are followed; every request times out after 5 seconds."""

import hashlib
import hmac
import ipaddress
import json
import socket
from urllib.parse import urlsplit

import urllib3
from django.conf import settings

TIMEOUT_SECONDS = 5.0
SIGNATURE_HEADER = "X-Esimdash-Signature"
# The same on every attempt of one delivery: a receiver that saw it already can ignore a retry.
DELIVERY_HEADER = "X-Esimdash-Delivery"


class UnsafeURL(ValueError):
    """The URL may not be called; the message says why, for the person who entered it."""


def _local_allowed() -> bool:
    return settings.DEBUG or settings.WEBHOOK_ALLOW_LOCAL


def webhook_url_check(url: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses the URL's host resolves to, all of them public; raises UnsafeURL otherwise."""
    parts = urlsplit(url)
    allowed_schemes = {"https", "http"} if _local_allowed() else {"https"}
    if parts.scheme not in allowed_schemes:
        raise UnsafeURL("The URL must start with https://.")
    if not parts.hostname:
        raise UnsafeURL("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeURL("The URL may not carry a user name or password.")
    try:
        found = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnsafeURL(f"The host {parts.hostname} cannot be resolved.") from error
    addresses = [ipaddress.ip_address(info[4][0]) for info in found]
    if not _local_allowed():
        for address in addresses:
            if not address.is_global or address.is_multicast:
                raise UnsafeURL(f"The host {parts.hostname} is an internal address ({address}).")
    return addresses


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_post(url: str, payload: dict, *, secret: str, delivery_id: int) -> int:
    """POSTs the payload as JSON, signed with HMAC-SHA256 of the body; returns the status code.
    Raises UnsafeURL, or urllib3's errors when the host cannot be reached in time."""
    address = webhook_url_check(url)[0]
    parts = urlsplit(url)
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Host": parts.netloc.rsplit("@", 1)[-1],
        "Content-Type": "application/json",
        "User-Agent": "esimdash-webhook/1",
        SIGNATURE_HEADER: signature(secret, body),
        DELIVERY_HEADER: str(delivery_id),
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
