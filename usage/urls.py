from django.urls import path

from usage import views

app_name = "usage"
urlpatterns = [
    path("", views.home, name="home"),
    path("lines/add/", views.line_claim_view, name="line_claim"),
    path("lines/<int:line_id>/", views.line_detail, name="line_detail"),
    path("lines/<int:line_id>/card/", views.line_card, name="line_card"),
    path("lines/<int:line_id>/usage.csv", views.line_export, name="line_export"),
    path("lines/<int:line_id>/buy/", views.line_buy, name="line_buy"),
    path("orders/", views.orders, name="orders"),
]
