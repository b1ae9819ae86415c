from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from esimdash.accounts.models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (*BaseUserAdmin.fieldsets, ("Preferences", {"fields": ("time_zone", "language")}))  # type: ignore[misc]
    list_display = ("username", "email", "first_name", "last_name", "language", "time_zone", "is_staff")
