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
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    # Before the admin's own page, which asks for the old password where nothing counts the guesses
    # (a taken-over staff session could try them freely): staff change theirs as everyone does,
    # after a confirmation that django-axes counts.
    path("admin/password_change/", RedirectView.as_view(pattern_name="password_change")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
