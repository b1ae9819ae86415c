"""Adding a line one already has: a person claims a line the operator provisioned, with its ICCID
and the activation code printed with the eSIM (docs/lines.md). Every refusal says the same thing,
so nobody learns which ICCIDs exist, which are taken, or who was invited."""

import datetime as dt
import hmac

from django.conf import settings
from django.core.files import File
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from PIL import Image, UnidentifiedImageError
from zxingcpp import BarcodeFormat, BarcodeFormats, read_barcode

from esimdash.accounts.models import User, has_confirmed_email
from plans.models import Line
from plans.services import activation_code_hash

# The one answer to every claim that does not match: wrong ICCID, wrong code, a line taken or
# ended, an invitation for someone else.
CLAIM_REFUSED = gettext_lazy(
    "This ICCID and activation code do not match a line you can add. Check both against what came "
    "with your eSIM; if your operator invited you by e-mail, sign in with that confirmed address."
)
# Compared with when no line has the ICCID, so that case costs what a wrong code costs.
_NO_LINE_HASH = activation_code_hash("no line has this ICCID")
# A QR code is read well below a phone camera's resolution; a smaller image decodes much faster.
_QR_DECODE_SIDE_PX = 2000


class ClaimError(Exception):
    pass


def iccid_normalize(text: str) -> str:
    """An ICCID as printed on a card or a sheet: in groups, with spaces or hyphens between."""
    return "".join(text.split()).replace("-", "")


def _claimable_by(line: Line | None, user: User, code: str) -> bool:
    has_code = line is not None and bool(line.claim_code_hash)
    expected = line.claim_code_hash if line is not None and has_code else _NO_LINE_HASH
    code_matches = hmac.compare_digest(expected, activation_code_hash(code))
    if line is None or not has_code or not code_matches or line.owner_id is not None:
        return False
    if line.status == Line.Status.TERMINATED:
        return False
    if line.claim_invitation_only:
        return bool(user.confirmed_email) and user.confirmed_email.lower() == line.claim_email.lower()
    return True


def line_claim(*, user: User, iccid: str, code: str, at: dt.datetime, nickname: str = "") -> Line:
    """Makes `user` the owner of the unclaimed line with this ICCID and activation code (the code
    alone or the whole `LPA:1$…$…` text). The owner is set by a conditional UPDATE, so of two
    claims at once one wins and the other is refused like any wrong code. The line keeps the
    operator's time zone; `nickname` replaces the one it was provisioned with (the plan's name)."""
    line = Line.objects.filter(iccid=iccid_normalize(iccid)).first()
    if not _claimable_by(line, user, code):
        raise ClaimError(CLAIM_REFUSED)
    assert line is not None  # noqa: S101 -- _claimable_by refused a missing line
    changes: dict[str, object] = {"owner": user, "claimed_at": at}
    if nickname.strip():
        changes["nickname"] = nickname.strip()
    taken = (
        Line.objects.filter(pk=line.pk, owner__isnull=True)
        .exclude(status=Line.Status.TERMINATED)
        .update(**changes)
    )
    if not taken:
        raise ClaimError(CLAIM_REFUSED)
    line.refresh_from_db()
    return line


def line_invitation_send(*, line: Line, at: dt.datetime) -> None:
    """E-mails the line's `claim_email`, once the transaction commits, a link to the page that adds
    it, with its ICCID filled in. The code is not in the mail: it comes with the eSIM. Written in
    the language of the account that has the address confirmed, if there is one."""
    if not line.claim_email or line.owner_id is not None:
        return
    link = f"{settings.SITE_URL}{reverse('usage:line_claim')}?iccid={line.iccid}"
    account = User.objects.filter(has_confirmed_email(line.claim_email)).first()
    language = account.language if account else settings.LANGUAGE_CODE

    def send() -> None:
        with translation.override(language):
            send_mail(
                subject=_("Your eSIM %(plan)s is ready to add") % {"plan": line.plan.name},
                message=_(
                    "Your operator has set up the eSIM line %(plan)s (ICCID %(iccid)s) for %(email)s. "
                    "To follow its data on esimdash, sign in or sign up with this e-mail address, "
                    "confirm it, and add the line with the activation code that came with your eSIM: "
                    "%(link)s"
                )
                % {"plan": line.plan.name, "iccid": line.iccid, "email": line.claim_email, "link": link},
                from_email=None,
                recipient_list=[line.claim_email],
            )

    transaction.on_commit(send)


def activation_text_in_photo(photo: File) -> str | None:
    """The text of the first QR code in a photo, or None when there is none. Raises ClaimError when
    the file is not an image Pillow can open."""
    try:
        with Image.open(photo) as image:
            image.thumbnail((_QR_DECODE_SIDE_PX, _QR_DECODE_SIDE_PX))
            grey = image.convert("L")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise ClaimError(_("The photo could not be opened: choose a JPEG or PNG picture.")) from error
    found = read_barcode(grey, formats=BarcodeFormats(BarcodeFormat.QRCode))
    return found.text if found else None
