"""Add-ons as their operators published them around 2025 (docs/pools.md has the sources); the
operator edits them in the admin. Activation windows and inactivity periods likewise."""

from django.db import migrations

GB = 10**9

# slug, name, amount, validity days, price (JPY), plans it is sold for
ADD_ONS = [
    ("povo-topping-1gb-7d", "povo 1 GB (7 days)", 1 * GB, 7, 390, ["povo-3gb-30d", "povo-1gb-7d"]),
    ("povo-topping-3gb-30d", "povo 3 GB (30 days)", 3 * GB, 30, 990, ["povo-3gb-30d", "povo-1gb-7d"]),
    ("povo-topping-20gb-30d", "povo 20 GB (30 days)", 20 * GB, 30, 2700, ["povo-3gb-30d", "povo-1gb-7d"]),
    ("iijmio-1gb", "IIJmio 1 GB more", 1 * GB, 31, 220, ["iijmio-giga-20gb", "iijmio-giga-5gb"]),
    ("mineo-1gb", "mineo 1 GB more", 1 * GB, 31, 550, ["mineo-mypita-20gb"]),
    ("ahamo-1gb", "ahamo 1 GB more", 1 * GB, 31, 550, ["ahamo-30gb"]),
    (
        "airalo-topup-10gb-30d",
        "Airalo top-up 10 GB (30 days)",
        10 * GB,
        30,
        3000,
        ["airalo-moshi-moshi-10gb-30d", "airalo-asialink-10gb-30d"],
    ),
    ("nomad-topup-1gb-7d", "Nomad top-up 1 GB (7 days)", 1 * GB, 7, 600, ["nomad-japan-5gb-30d"]),
    ("nomad-day-1gb", "Nomad day pass 1 GB", 1 * GB, 1, 400, ["nomad-japan-5gb-30d", "nomad-japan-day-1gb"]),
]
ACTIVATION_WINDOW_DAYS = {"airalo": 180, "nomad": 180, "ubigi": 180, "holafly": 180, "povo": 30}
INACTIVITY_DAYS = {"povo": 180}


def add_ons(apps, schema_editor):
    AddOn = apps.get_model("plans", "AddOn")
    Carrier = apps.get_model("plans", "Carrier")
    Plan = apps.get_model("plans", "Plan")
    for slug, name, amount, days, price, plan_slugs in ADD_ONS:
        add_on, _ = AddOn.objects.update_or_create(
            slug=slug,
            defaults={"name": name, "amount_bytes": amount, "validity_days": days, "price_jpy": price},
        )
        add_on.plans.set(Plan.objects.filter(slug__in=plan_slugs))
    for carrier, days in INACTIVITY_DAYS.items():
        Carrier.objects.filter(slug=carrier).update(inactivity_days=days)
    for carrier, days in ACTIVATION_WINDOW_DAYS.items():
        Plan.objects.filter(carrier__slug=carrier, kind__in=["travel_pack", "day_pass"]).update(
            activation_window_days=days
        )


class Migration(migrations.Migration):
    dependencies = [("plans", "0013_provisioning")]

    operations = [migrations.RunPython(add_ons, migrations.RunPython.noop)]
