from django.contrib import admin

from plans.models import (
    AddOn,
    Carrier,
    Gift,
    GiftEntry,
    GiftRequest,
    Grant,
    GrantReversal,
    Line,
    Order,
    Plan,
    Pool,
    PoolMember,
)


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

    def get_readonly_fields(self, request, obj=None):
        # Fixed once the line exists: its daily rollups are bucketed by local day in its time zone,
        # and its allowance grants were written for billing cycles cut by that zone and the start
        # day. Changing either would misread the rollups and grant a cycle's allowance twice.
        if obj is None:
            return self.readonly_fields
        return (*self.readonly_fields, "time_zone", "cycle_start_day")


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    # An unsettled carry-over's amount is only its most: what it holds is worked out when read
    # (docs/ledger.md), so the list says whether it has settled.
    list_display = (
        "line",
        "pool",
        "source",
        "amount_bytes",
        "starts_at",
        "expires_at",
        "priority",
        "settled_at",
    )
    list_filter = ("source",)
    raw_id_fields = ("line", "pool")
    readonly_fields = ("carried_from", "settled_at")


class PoolMemberInline(admin.TabularInline):
    model = PoolMember
    extra = 0
    raw_id_fields = ("line",)


class PoolGrantInline(admin.TabularInline):
    model = Grant
    fk_name = "pool"
    extra = 0
    exclude = ("line",)


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin):
    list_display = ("name", "plan", "cycle_start_day", "owner_reserve_bytes", "created_at")
    search_fields = ("name",)
    inlines = [PoolMemberInline, PoolGrantInline]


class ReadOnlyAdmin(admin.ModelAdmin):
    """For rows a service writes together with others in one transaction (a gift with its ledger
    entries; a usage record with its key and rollups): editing one by hand would create or lose
    data, so operators see them and change nothing."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class GiftEntryInline(admin.TabularInline):
    model = GiftEntry
    extra = 0
    can_delete = False
    readonly_fields = ("grant", "delta_bytes", "created_at")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Gift)
class GiftAdmin(ReadOnlyAdmin):
    list_display = ("sender", "kind", "amount_bytes", "state", "to_line", "created_at", "expires_at")
    list_filter = ("state", "kind")
    search_fields = ("sender__username", "to_line__owner__username")
    inlines = [GiftEntryInline]


@admin.register(GiftRequest)
class GiftRequestAdmin(ReadOnlyAdmin):
    list_display = ("requester", "member", "amount_bytes", "state", "decided_by", "created_at")
    list_filter = ("state",)


@admin.register(AddOn)
class AddOnAdmin(admin.ModelAdmin):
    list_display = ("name", "amount_bytes", "validity_days", "price_jpy", "active")
    list_filter = ("active",)
    filter_horizontal = ("plans",)
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    """Orders move through the API (docs/api.md), never by hand."""

    list_display = ("pk", "user", "line", "pool", "add_on", "price_jpy", "state", "automatic", "created_at")
    list_filter = ("state", "automatic")
    date_hierarchy = "created_at"


@admin.register(GrantReversal)
class GrantReversalAdmin(ReadOnlyAdmin):
    list_display = ("grant", "at", "reason")
