from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from esimdash.health import healthz
from usage.api import api

urlpatterns = [
    path("", include("usage.urls")),
    path("", include("alerts.urls")),
    path("", include("family.urls")),
    path("api/v1/", api.urls),
    path("accounts/", include("esimdash.accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    # Staff change their password as everyone does, after confirming it is them (allauth counts
    # the attempts), not on the admin's own page.
    path("admin/password_change/", RedirectView.as_view(pattern_name="account_change_password")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
