from django.contrib import admin

from plans.models import Carrier, Grant, Line, Plan


@admin.register(Carrier)
class CarrierAdmin(admin.ModelAdmin):
    list_display = ("name", "network_codes", "host")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("name", "carrier", "kind", "allowance_bytes", "validity_days", "price_jpy", "shareable")
    list_filter = ("kind", "carrier", "shareable")
    prepopulated_fields = {"slug": ("name",)}


class GrantInline(admin.TabularInline):
    model = Grant
    extra = 0


@admin.register(Line)
class LineAdmin(admin.ModelAdmin):
    list_display = ("nickname", "iccid", "owner", "plan", "status", "usage_updated_at")
    list_filter = ("status", "plan__kind")
    search_fields = ("iccid", "phone_number", "nickname", "owner__username")
    raw_id_fields = ("owner",)
    inlines = [GrantInline]


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    list_display = ("line", "source", "amount_bytes", "starts_at", "expires_at", "priority")
    list_filter = ("source",)
    raw_id_fields = ("line",)
