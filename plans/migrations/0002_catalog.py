"""The plan catalog: realistic plans of Japan's carriers, MVNOs and travel eSIM brands.

Figures follow PRODUCT.md (throttle speeds, tethering caps, carry-over, share-group sizes); prices
are list prices in JPY, tax included, rounded. Operators edit the catalog in the admin."""

from django.db import migrations

GB = 1_000_000_000

CARRIERS = [
    # slug, name, MCC-MNC codes, host slug
    ("docomo", "NTT docomo", ["440-10"], None),
    ("au", "au (KDDI)", ["440-50", "440-51"], None),
    ("softbank", "SoftBank", ["440-20"], None),
    ("rakuten", "Rakuten Mobile", ["440-11"], None),
    ("ahamo", "ahamo", [], "docomo"),
    ("povo", "povo", [], "au"),
    ("iijmio", "IIJmio", [], "docomo"),
    ("mineo", "mineo", [], "au"),
    ("airalo", "Airalo", [], "softbank"),
    ("nomad", "Nomad", [], "au"),
    ("holafly", "Holafly", [], "docomo"),
    ("ubigi", "Ubigi", [], "docomo"),
]

_JP = ["JP"]
PLANS = [
    dict(carrier="docomo", slug="docomo-eximo-unlimited", name="docomo eximo (unlimited)", kind="unlimited",
         daily_fair_use_bytes=3 * GB, price_jpy=7315, throttle_kbps=1000),
    dict(carrier="docomo", slug="docomo-share-30gb", name="docomo Family Share 30 GB", kind="monthly",
         allowance_bytes=30 * GB, price_jpy=9900, throttle_kbps=128, shareable=True, member_limit=10),
    dict(carrier="ahamo", slug="ahamo-30gb", name="ahamo 30 GB", kind="monthly", allowance_bytes=30 * GB,
         price_jpy=2970, throttle_kbps=1000, countries=["JP", "KR", "TW", "US"]),
    dict(carrier="au", slug="au-unlimited-max", name="au Unlimited MAX", kind="unlimited", price_jpy=7238,
         throttle_kbps=None, tethering_cap_bytes=30 * GB),
    dict(carrier="softbank", slug="softbank-minifit-3gb", name="SoftBank Mini Fit 3 GB", kind="monthly",
         allowance_bytes=3 * GB, price_jpy=3278, throttle_kbps=128),
    dict(carrier="softbank", slug="softbank-merihari-unlimited", name="SoftBank Merihari Unlimited",
         kind="unlimited", price_jpy=7425, tethering_cap_bytes=30 * GB),
    dict(carrier="rakuten", slug="rakuten-saikyo", name="Rakuten Saikyo Plan", kind="unlimited",
         price_jpy=3278, daily_fair_use_bytes=10 * GB, throttle_kbps=3000),
    dict(carrier="povo", slug="povo-3gb-30d", name="povo 3 GB / 30 days", kind="travel_pack",
         allowance_bytes=3 * GB, validity_days=30, price_jpy=990, throttle_kbps=128),
    dict(carrier="povo", slug="povo-1gb-7d", name="povo 1 GB / 7 days", kind="travel_pack",
         allowance_bytes=1 * GB, validity_days=7, price_jpy=390, throttle_kbps=128),
    dict(carrier="iijmio", slug="iijmio-giga-20gb", name="IIJmio Giga 20 GB", kind="monthly",
         allowance_bytes=20 * GB, price_jpy=2000, throttle_kbps=300, carry_over=True, shareable=True,
         member_limit=10),
    dict(carrier="iijmio", slug="iijmio-giga-5gb", name="IIJmio Giga 5 GB", kind="monthly",
         allowance_bytes=5 * GB, price_jpy=990, throttle_kbps=300, carry_over=True, shareable=True,
         member_limit=10),
    dict(carrier="mineo", slug="mineo-mypita-20gb", name="mineo MyPita 20 GB", kind="monthly",
         allowance_bytes=20 * GB, price_jpy=2178, throttle_kbps=200, carry_over=True, shareable=True,
         member_limit=10),
    dict(carrier="airalo", slug="airalo-moshi-moshi-10gb-30d", name="Airalo Moshi Moshi 10 GB / 30 days",
         kind="travel_pack", allowance_bytes=10 * GB, validity_days=30, price_jpy=3900, at_cap="stop",
         throttle_kbps=None, tethering_allowed=True),
    dict(carrier="airalo", slug="airalo-asialink-10gb-30d", name="Airalo Asialink 10 GB / 30 days",
         kind="travel_pack", allowance_bytes=10 * GB, validity_days=30, price_jpy=4800, at_cap="stop",
         throttle_kbps=None, countries=["JP", "KR", "TW", "HK", "SG", "TH"]),
    dict(carrier="nomad", slug="nomad-japan-5gb-30d", name="Nomad Japan 5 GB / 30 days", kind="travel_pack",
         allowance_bytes=5 * GB, validity_days=30, price_jpy=2250, at_cap="stop", throttle_kbps=None),
    dict(carrier="nomad", slug="nomad-japan-day-1gb", name="Nomad Japan Day Pass 1 GB", kind="day_pass",
         allowance_bytes=1 * GB, validity_days=1, until_local_midnight=True, price_jpy=450, at_cap="stop",
         throttle_kbps=None),
    dict(carrier="ubigi", slug="ubigi-japan-24h-1gb", name="Ubigi Japan 24 h 1 GB", kind="day_pass",
         allowance_bytes=1 * GB, validity_days=1, price_jpy=380, throttle_kbps=128),
    dict(carrier="holafly", slug="holafly-japan-unlimited", name="Holafly Japan Unlimited",
         kind="unlimited", price_jpy=5900, daily_fair_use_bytes=1 * GB, throttle_kbps=1000,
         tethering_allowed=False),
]


def load_catalog(apps, schema_editor):
    Carrier = apps.get_model("plans", "Carrier")
    Plan = apps.get_model("plans", "Plan")
    carriers = {}
    for slug, name, codes, host in CARRIERS:
        carriers[slug], _ = Carrier.objects.update_or_create(
            slug=slug, defaults={"name": name, "network_codes": codes, "host": carriers.get(host)}
        )
    for spec in PLANS:
        fields = {"countries": _JP, **spec, "carrier": carriers[spec["carrier"]]}
        Plan.objects.update_or_create(slug=fields.pop("slug"), defaults=fields)


class Migration(migrations.Migration):
    dependencies = [("plans", "0001_initial")]
    operations = [migrations.RunPython(load_catalog, migrations.RunPython.noop)]
