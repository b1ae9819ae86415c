from django.contrib import admin
from django.urls import include, path

from esimdash.health import healthz
from usage.api import api

urlpatterns = [
    path("", include("usage.urls")),
    path("", include("plans.urls")),
    path("api/v1/", api.urls),
    path("accounts/", include("esimdash.accounts.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
