import datetime as dt
import re

import pytest
from django.core import mail
from django.urls import reverse

from esimdash.accounts.models import User
from tests.factories import PASSWORD

NEW_PASSWORD = "another-long-passphrase-42"


@pytest.mark.django_db
def test_sign_up_creates_the_account_signs_in_and_keeps_preferences(client):
    response = client.post(
        reverse("accounts:signup"),
        {
            "username": "meiling",
            "email": "meiling@example.com",
            "time_zone": "Asia/Shanghai",
            "language": "zh-hans",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("usage:home")
    user = User.objects.get(username="meiling")
    assert (user.email, user.time_zone, user.language) == ("meiling@example.com", "Asia/Shanghai", "zh-hans")
    assert client.get(reverse("usage:home")).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"password1": "short-pw", "password2": "short-pw"}, "password2", "at least 12 characters"),
        ({"password2": "something-else-entirely"}, "password2", "match"),
        ({"email": "not-an-address"}, "email", "valid email address"),
        ({"email": "OWNER@example.com"}, "email", "already exists"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "not one of the available choices"),
    ],
)
def test_sign_up_refuses_bad_input_naming_the_field_and_creates_nothing(
    client, owner, changes, field, message
):
    data = {
        "username": "newcomer",
        "email": "newcomer@example.com",
        "time_zone": "Asia/Tokyo",
        "language": "en",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
        **changes,
    }
    response = client.post(reverse("accounts:signup"), data)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert not User.objects.filter(username="newcomer").exists()


@pytest.mark.django_db
def test_sign_in_and_sign_out(client, owner):
    response = client.post(reverse("login"), {"username": "owner", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("usage:home")
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("usage:home"))["Location"] == f"{reverse('login')}?next=/"


@pytest.mark.django_db
def test_a_wrong_password_does_not_sign_in(client, owner):
    response = client.post(reverse("login"), {"username": "owner", "password": "wrong-password-123"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_password_change_after_confirming_the_current_password(client, owner):
    client.force_login(owner)
    confirm = client.post(
        reverse("accounts:reauthenticate"), {"password": PASSWORD, "next": reverse("password_change")}
    )
    assert confirm["Location"] == reverse("password_change")
    response = client.post(
        reverse("password_change"), {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response["Location"] == reverse("password_change_done")
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)
    assert client.get(reverse("accounts:session")).status_code == 204  # this session stays signed in


@pytest.mark.django_db
def test_password_reset_by_email(client, owner):
    response = client.post(reverse("password_reset"), {"email": "owner@example.com"})
    assert response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["owner@example.com"]
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.context["validlink"] is True
    response = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response["Location"] == reverse("password_reset_complete")
    signed_in = client.post(reverse("login"), {"username": "owner", "password": NEW_PASSWORD})
    assert signed_in["Location"] == reverse("usage:home")
    assert client.get(link, follow=True).context["validlink"] is False  # the link works once


@pytest.mark.django_db
def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []


@pytest.mark.django_db
def test_password_reset_to_an_unconfirmed_address_sends_nothing_and_says_the_same(client, owner):
    """A mistyped address at sign-up is a stranger's, who could otherwise take the account over."""
    User.objects.filter(pk=owner.pk).update(email_confirmed_at=None)
    response = client.post(reverse("password_reset"), {"email": "owner@example.com"})
    assert (response["Location"], mail.outbox) == (reverse("password_reset_done"), [])


@pytest.mark.django_db
def test_saved_language_and_time_zone_shape_every_page(client, owner):
    client.force_login(owner)
    response = client.post(
        reverse("accounts:profile"),
        {
            "first_name": "",
            "last_name": "",
            "time_zone": "Europe/London",
            "language": "ja",
            "quiet_hours_start": "23:00",
            "quiet_hours_end": "07:30",
        },
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert (owner.quiet_hours_start, owner.quiet_hours_end) == (dt.time(23), dt.time(7, 30))
    page = client.get(reverse("accounts:profile"))
    assert page["Content-Language"] == "ja"
    assert "設定" in page.content.decode()
    assert page.context["TIME_ZONE"] == "Europe/London"


@pytest.mark.django_db
def test_the_sign_up_form_offers_tokyo_time_and_the_visitors_language(client):
    response = client.get(reverse("accounts:signup"), headers={"Accept-Language": "ja"})
    form = response.context["form"]
    assert form["time_zone"].value() == "Asia/Tokyo"
    assert form["language"].value() == "ja"


@pytest.mark.django_db
def test_the_session_endpoint_answers_204_only_when_signed_in(client, owner):
    assert (
        client.get(reverse("accounts:session"))["Location"] == f"{reverse('login')}?next=/accounts/session/"
    )
    client.force_login(owner)
    assert client.get(reverse("accounts:session")).status_code == 204
