"""The admin, where staff see every user's lines and usage: it opens only to staff who have a second
factor (a passkey or an authenticator app), and its sign-in is allauth's, which asks for it."""

from functools import update_wrapper

from allauth.account.decorators import secure_admin_login
from allauth.mfa.utils import is_mfa_enabled
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _


class StaffAdminSite(admin.AdminSite):
    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        return secure_admin_login(super().login)(request, extra_context)

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        def with_second_factor(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            user = request.user
            if user.is_active and user.is_staff and not is_mfa_enabled(user):
                messages.info(
                    request, _("Staff accounts need a second factor: set one up, then open the admin.")
                )
                return redirect("mfa_index")
            return inner(request, *args, **kwargs)

        return update_wrapper(with_second_factor, inner)
