from django.contrib import admin

from usage.models import Device, SimulatedLine, UsageRecord


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "owner")
    list_filter = ("kind",)
    raw_id_fields = ("owner",)


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = ("line", "period_start", "bytes_up", "bytes_down", "app_category", "country", "source")
    list_filter = ("app_category", "country", "background", "tethered", "source")
    raw_id_fields = ("line", "device")
    date_hierarchy = "period_start"
    # Counting every row of a large table is slow; the admin shows "more than" instead.
    show_full_result_count = False


@admin.register(SimulatedLine)
class SimulatedLineAdmin(admin.ModelAdmin):
    list_display = ("line", "profile", "simulated_until")
