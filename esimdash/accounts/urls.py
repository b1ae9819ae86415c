from django.urls import path

from esimdash.accounts import views

app_name = "accounts"
urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("profile/", views.profile, name="profile"),
    path("session/", views.session, name="session"),
    path("confirm-password/", views.reauthenticate, name="reauthenticate"),
    path("email/", views.email_change, name="email_change"),
    path("email/confirm/<str:token>/", views.email_confirm, name="email_confirm"),
    # The same path as django.contrib.auth's page, which it replaces (this list is included first).
    path("password_change/", views.password_change, name="password_change"),
]
