from django.urls import path

from esimdash.accounts import views

app_name = "accounts"
urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("session/", views.session, name="session"),
]
