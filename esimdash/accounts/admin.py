from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from esimdash.accounts.models import User
from esimdash.accounts.reauthentication import reauthentication_is_recent, reauthentication_redirect


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (
        *BaseUserAdmin.fieldsets,  # type: ignore[misc]
        ("E-mail confirmation", {"fields": ("email_confirmed_at",)}),
        ("Preferences", {"fields": ("time_zone", "language")}),
    )
    # Set by the owner opening the link mailed to the address, never by hand.
    readonly_fields = ("email_confirmed_at",)
    list_display = ("username", "email", "first_name", "last_name", "language", "time_zone", "is_staff")

    def user_change_password(self, request, id, form_url=""):
        # Setting someone's password hands their account to whoever sets it: the password first, as
        # for changing one's own.
        if not reauthentication_is_recent(request):
            return reauthentication_redirect(request)
        return super().user_change_password(request, id, form_url)
