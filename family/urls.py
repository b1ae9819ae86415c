from django.urls import path

from family import gift_views, views

app_name = "family"
urlpatterns = [
    path("pools/", views.pools, name="pools"),
    path("pools/<int:pool_id>/", views.pool_detail, name="pool"),
    path("pools/<int:pool_id>/invite/", views.pool_invite, name="pool_invite"),
    path(
        "pools/<int:pool_id>/invites/<int:invite_id>/revoke/",
        views.pool_invite_revoke_view,
        name="invite_revoke",
    ),
    path("pools/<int:pool_id>/caps/", views.pool_caps, name="pool_caps"),
    path("pools/<int:pool_id>/reserve/", views.pool_reserve, name="pool_reserve"),
    path("pools/<int:pool_id>/rules/", views.pool_rules, name="pool_rules"),
    path("pools/<int:pool_id>/top-up/", views.pool_top_up, name="pool_top_up"),
    path("pools/<int:pool_id>/caps/preview/", views.pool_caps_preview, name="pool_caps_preview"),
    path("pools/<int:pool_id>/members/<int:member_id>/usage/", views.member_usage, name="member_usage"),
    path(
        "pools/<int:pool_id>/members/<int:member_id>/<str:action>/",
        views.pool_member_action,
        name="member_action",
    ),
    path("pools/invites/<str:token>/", views.invite, name="invite"),
    path("pools/invitations/<int:invite_id>/", views.invitation, name="invitation"),
]

urlpatterns += [
    path("gifts/", gift_views.gifts, name="gifts"),
    path("gifts/send/", gift_views.gift_send_view, name="gift_send"),
    path("gifts/redeem/", gift_views.gift_redeem_view, name="gift_redeem"),
    path("gifts/requests/", gift_views.gift_request_view, name="gift_request"),
    path(
        "gifts/requests/<int:request_id>/<str:answer>/",
        gift_views.gift_request_answer,
        name="gift_request_answer",
    ),
    path("gifts/<int:gift_id>/", gift_views.gift_detail, name="gift"),
    path("gifts/<int:gift_id>/cancel/", gift_views.gift_cancel_view, name="gift_cancel"),
]
