from django.contrib import admin

from family.models import PoolInvite


@admin.register(PoolInvite)
class PoolInviteAdmin(admin.ModelAdmin):
    list_display = ("pool", "email", "user", "role", "state", "expires_at")
    list_filter = ("state",)
    raw_id_fields = ("pool", "user", "invited_by")
