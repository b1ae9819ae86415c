from allauth.account.decorators import reauthentication_required
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.decorators import method_decorator

from esimdash.accounts.models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (
        *BaseUserAdmin.fieldsets,  # type: ignore[misc]
        ("Preferences", {"fields": ("time_zone", "language")}),
    )
    list_display = ("username", "email", "first_name", "last_name", "language", "time_zone", "is_staff")

    # Setting someone's password hands their account to whoever sets it: confirm it is you first,
    # as for changing one's own.
    @method_decorator(reauthentication_required)
    def user_change_password(self, request, id, form_url=""):
        return super().user_change_password(request, id, form_url)
