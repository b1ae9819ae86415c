"""The add-a-line page (/lines/add/): the ICCID and activation code typed, pasted as LPA text or
read from a photo of the QR code on the server; refusals, limits per account and per ICCID, and
another person's line neither claimable nor revealed."""

import datetime as dt
import io

import pytest
import segno
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from plans.models import Line
from tests.factories import make_line, make_plan, make_unclaimed_line, make_user
from usage.claims import line_claim

pytestmark = pytest.mark.django_db
CODE = "K2-4Q7ZP-1XR9M"
LPA = f"LPA:1$smdp.example.com${CODE}"
# A quarter past the hour: an hour's window has 45 minutes left.
AT = dt.datetime(2026, 11, 20, 3, 15, tzinfo=dt.UTC)
REFUSED = (
    "This ICCID and activation code do not match a line you can add. Check both against what came "
    "with your eSIM; if your operator invited you by e-mail, sign in with that confirmed address."
)
NO_MATCHING_ID = (
    "This LPA:1$ text has no activation code: it ends before the part after its second $. "
    "Copy the whole text, or type the code printed with your eSIM."
)
URL = reverse("usage:line_claim")
NOBODYS_ICCID = "8981100000000099996"  # valid, and no line has it


def qr_photo(text: str, name: str = "qr.png") -> SimpleUploadedFile:
    """A photo of a QR code as a phone would send it: a JPEG with the code off-centre on paper."""
    code = io.BytesIO()
    segno.make(text, error="m").save(code, kind="png", scale=8, border=4)
    paper = Image.new("RGB", (900, 700), (236, 232, 224))
    paper.paste(Image.open(code).convert("RGB"), (240, 120))
    photo = io.BytesIO()
    paper.save(photo, format="JPEG", quality=85)
    return SimpleUploadedFile(name, photo.getvalue(), content_type="image/jpeg")


def plain_photo() -> SimpleUploadedFile:
    photo = io.BytesIO()
    Image.new("RGB", (640, 480), (120, 160, 200)).save(photo, format="JPEG")
    return SimpleUploadedFile("sky.jpg", photo.getvalue(), content_type="image/jpeg")


@pytest.fixture
def hana(client):
    person = make_user("hana")
    client.force_login(person)
    return person


def errors(response) -> dict:
    return {field: list(messages) for field, messages in response.context["form"].errors.items()}


def test_the_page_asks_for_the_iccid_the_code_a_photo_and_a_nickname(client, hana):
    response = client.get(URL + "?iccid=8981100000000000019")
    page = response.content.decode()
    assert response.status_code == 200
    assert 'value="8981100000000000019"' in page
    assert 'enctype="multipart/form-data"' in page
    assert 'type="file" name="photo" accept="image/*" capture="environment"' in page
    assert "the whole text that begins with LPA:1$" in page
    assert list(response.context["form"].fields) == ["iccid", "code", "photo", "nickname"]


def test_signed_out_the_page_leads_to_the_login(client):
    assert client.get(URL)["Location"] == f"/accounts/login/?next={URL}"


@pytest.mark.frozen(AT)
def test_the_right_code_adds_the_line_and_opens_its_page(client, hana, rate_limit_cache):
    line = make_unclaimed_line(code=CODE)
    response = client.post(
        URL, {"iccid": line.iccid, "code": LPA.lower(), "nickname": "Trip phone"}, follow=True
    )
    assert response.redirect_chain == [(reverse("usage:line_detail", args=[line.pk]), 302)]
    assert [str(message) for message in response.context["messages"]] == [
        "Trip phone is added to your lines."
    ]
    assert Line.objects.get(pk=line.pk).owner == hana
    assert "Trip phone" in client.get(reverse("usage:home")).content.decode()


@pytest.mark.frozen(AT)
def test_a_photo_of_the_qr_code_is_read_on_the_server(client, hana, rate_limit_cache):
    line = make_unclaimed_line(code=CODE)
    response = client.post(URL, {"iccid": line.iccid, "code": "", "photo": qr_photo(LPA), "nickname": ""})
    assert response.status_code == 302
    assert Line.objects.get(pk=line.pk).owner == hana


@pytest.mark.parametrize(
    ("photo", "message"),
    [
        (
            plain_photo,
            "No QR code was found in the photo. Take it again closer and in good light, or type the code.",
        ),
        (
            lambda: qr_photo("https://example.com/menu"),
            "The QR code in the photo is not an eSIM's: its text does not begin with LPA:1$.",
        ),
        (
            lambda: qr_photo("LPA:1$smdp.example.com"),
            NO_MATCHING_ID,
        ),
        (
            lambda: SimpleUploadedFile("notes.txt", b"not a picture"),
            "The photo could not be opened: choose a JPEG or PNG picture.",
        ),
    ],
    ids=["no QR code", "not an eSIM's QR code", "LPA without a matching ID", "not an image"],
)
def test_a_photo_that_gives_no_code_says_what_is_wrong_and_changes_nothing(client, hana, photo, message):
    line = make_unclaimed_line(code=CODE)
    response = client.post(URL, {"iccid": line.iccid, "photo": photo()})
    assert response.status_code == 400
    assert errors(response) == {"photo": [message]}
    assert 'aria-describedby="id_photo_helptext id_photo_error"' in response.content.decode()
    assert Line.objects.get(pk=line.pk).owner is None


@pytest.mark.parametrize(
    ("iccid", "code", "expected"),
    [
        ("8981100000000000018", CODE, {"iccid": ["The ICCID's check digit is wrong: check for a typo."]}),
        ("12345", CODE, {"iccid": ["An ICCID has 19 or 20 digits; this one has 5."]}),
        (NOBODYS_ICCID, "", {"code": ["Enter the activation code, or scan its QR code."]}),
        (
            NOBODYS_ICCID,
            "LPA:1$smdp.example.com$",
            {"code": [NO_MATCHING_ID]},
        ),
    ],
)
def test_what_is_wrong_with_the_fields_is_said_beside_them(client, hana, iccid, code, expected):
    response = client.post(URL, {"iccid": iccid, "code": code})
    assert response.status_code == 400
    assert errors(response) == expected


@pytest.mark.frozen(AT)
def test_a_wrong_code_and_another_persons_line_get_the_same_answer(client, hana, rate_limit_cache):
    unclaimed = make_unclaimed_line(code=CODE)
    theirs = make_unclaimed_line(code="OTHER-CODE-1", nickname="Osaka eSIM")
    owner = make_user("tanaka")
    client_of = client
    line_claim(user=owner, iccid=theirs.iccid, code="OTHER-CODE-1", at=AT)
    answers = [
        client_of.post(URL, {"iccid": unclaimed.iccid, "code": "WRONG-CODE"}),
        client_of.post(URL, {"iccid": theirs.iccid, "code": "OTHER-CODE-1"}),
        client_of.post(URL, {"iccid": NOBODYS_ICCID, "code": CODE}),
    ]
    assert [(answer.status_code, errors(answer)) for answer in answers] == [(400, {"__all__": [REFUSED]})] * 3
    # Nothing of the other person's line shows: not its nickname, plan or owner.
    for answer in answers:
        page = answer.content.decode()
        assert "Osaka eSIM" not in page
        assert "tanaka" not in page
    assert Line.objects.get(pk=theirs.pk).owner == owner
    assert Line.objects.get(pk=unclaimed.pk).owner is None


@pytest.mark.frozen(AT)
def test_attempts_are_limited_per_account_and_one_over_is_not_checked(
    client, hana, settings, rate_limit_cache
):
    settings.LINE_CLAIM_RATE = "3/h"
    line = make_unclaimed_line(code=CODE)
    for number in range(3):
        assert client.post(URL, {"iccid": line.iccid, "code": f"WRONG-{number}"}).status_code == 400

    over = client.post(URL, {"iccid": line.iccid, "code": CODE})

    assert (over.status_code, over["Retry-After"]) == (429, "2700")
    assert errors(over) == {
        "__all__": ["Too many attempts to add a line from your account. Try again in 45 minutes."]
    }
    assert Line.objects.get(pk=line.pk).owner is None  # the right code, not even checked


@pytest.mark.frozen(AT)
def test_attempts_on_one_iccid_are_limited_whoever_makes_them(client, settings, rate_limit_cache):
    settings.LINE_CLAIM_PER_LINE_RATE = "2/h"
    line = make_unclaimed_line(code=CODE)
    for number in range(2):
        client.force_login(make_user(f"guesser{number}"))
        assert client.post(URL, {"iccid": line.iccid, "code": f"WRONG-{number}"}).status_code == 400
    hana = make_user("hana")
    client.force_login(hana)

    over = client.post(URL, {"iccid": line.iccid, "code": CODE})

    assert (over.status_code, over["Retry-After"]) == (429, "2700")
    assert errors(over) == {
        "iccid": ["Too many attempts to add the line with this ICCID. Try again in 45 minutes."]
    }
    assert Line.objects.get(pk=line.pk).owner is None
    # Another ICCID is another count.
    other = make_unclaimed_line(code=CODE)
    assert client.post(URL, {"iccid": other.iccid, "code": CODE}).status_code == 302


def test_without_the_rate_limit_cache_nothing_is_checked(client, hana, settings):
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        },
    }
    line = make_unclaimed_line(code=CODE)
    response = client.post(URL, {"iccid": line.iccid, "code": CODE})
    assert response.status_code == 503
    assert errors(response) == {
        "__all__": ["Lines cannot be added at the moment. Try again in a few minutes."]
    }
    assert Line.objects.get(pk=line.pk).owner is None


def test_home_offers_to_add_a_line_with_lines_too(client, hana):
    make_line(hana, plan=make_plan(), activated_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    assert f'href="{URL}"' in client.get(reverse("usage:home")).content.decode()
