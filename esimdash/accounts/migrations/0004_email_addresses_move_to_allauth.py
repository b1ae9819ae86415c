from django.db import migrations


def addresses_to_allauth(apps, schema_editor):
    """Each account's address becomes its primary allauth EmailAddress, confirmed if it was. An
    account without an address gets none. Two accounts cannot share a confirmed address, so at most
    one of them keeps it confirmed (there were none: the old forms refused it). Addresses are stored
    lower-cased, as allauth stores and compares them."""
    User = apps.get_model("accounts", "User")
    EmailAddress = apps.get_model("account", "EmailAddress")
    confirmed_already = set()
    rows = []
    for user in User.objects.exclude(email="").order_by("email_confirmed_at", "pk").iterator():
        key = user.email.lower()
        verified = user.email_confirmed_at is not None and key not in confirmed_already
        if verified:
            confirmed_already.add(key)
        rows.append(EmailAddress(user_id=user.pk, email=key, verified=verified, primary=True))
    EmailAddress.objects.bulk_create(rows, batch_size=1000)


def addresses_from_allauth(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    EmailAddress = apps.get_model("account", "EmailAddress")
    for address in EmailAddress.objects.filter(primary=True, verified=True).iterator():
        User.objects.filter(pk=address.user_id).update(email_confirmed_at=address.user.date_joined)
    EmailAddress.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_user_email_confirmed_at"),
        ("account", "0009_emailaddress_unique_primary_email"),
    ]

    operations = [
        migrations.RunPython(addresses_to_allauth, addresses_from_allauth),
        migrations.RemoveField(model_name="user", name="email_confirmed_at"),
    ]
