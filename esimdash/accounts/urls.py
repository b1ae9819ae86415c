from django.contrib.auth import views as auth_views
from django.urls import path

from esimdash.accounts import views
from esimdash.accounts.forms import ConfirmedPasswordResetForm

app_name = "accounts"
urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("profile/", views.profile, name="profile"),
    path("session/", views.session, name="session"),
    path("confirm-password/", views.reauthenticate, name="reauthenticate"),
    path("email/", views.email_change, name="email_change"),
    path("email/confirm/<str:token>/", views.email_confirm, name="email_confirm"),
    # The same paths as django.contrib.auth's pages, which they replace (this list is included first).
    path("password_change/", views.password_change, name="password_change"),
    path(
        "password_reset/",
        auth_views.PasswordResetView.as_view(form_class=ConfirmedPasswordResetForm),
        name="password_reset",
    ),
]
