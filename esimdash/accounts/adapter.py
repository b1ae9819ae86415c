from dataclasses import dataclass
from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings


@dataclass(frozen=True)
class _Site:
    name: str
    domain: str


class AccountAdapter(DefaultAccountAdapter):
    """allauth's mails greet and sign as "esimdash" at SITE_URL, not as the host the request came in
    on (without Django's sites framework, allauth would name the site after that host)."""

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        site = _Site(name="esimdash", domain=urlsplit(settings.SITE_URL).netloc)
        super().send_mail(template_prefix, email, {"current_site": site, **context})
