from allauth.account.decorators import reauthentication_required
from django import forms
from django.contrib import admin, messages
from django.utils.decorators import method_decorator

from plans.admin import ReadOnlyAdmin
from usage.models import Device, IntegrationToken, SimulatedLine, UsageImport, UsageRecord
from usage.tokens import integration_token_create


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "owner")
    list_filter = ("kind",)
    raw_id_fields = ("owner",)


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = ("line", "period_start", "bytes_up", "bytes_down", "app_category", "country", "source")
    list_filter = ("app_category", "country", "background", "tethered", "source")
    raw_id_fields = ("line", "device")
    date_hierarchy = "period_start"
    # Counting every row of a large table is slow; the admin shows "more than" instead.
    show_full_result_count = False


@admin.register(UsageImport)
class UsageImportAdmin(ReadOnlyAdmin):
    """Background imports, as GET /api/v1/usage/imports/{id} shows them; written only by their worker."""

    list_display = (
        "id",
        "token",
        "format",
        "status",
        "rows_read",
        "new",
        "duplicate",
        "invalid",
        "created_at",
    )
    list_filter = ("status", "format")
    date_hierarchy = "created_at"


@admin.register(SimulatedLine)
class SimulatedLineAdmin(admin.ModelAdmin):
    list_display = ("line", "profile", "simulated_until")


class IntegrationTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=IntegrationToken.Scope.choices, widget=forms.CheckboxSelectMultiple, required=True
    )

    class Meta:
        model = IntegrationToken
        fields = ("name", "scopes")


@admin.register(IntegrationToken)
class IntegrationTokenAdmin(admin.ModelAdmin):
    form = IntegrationTokenForm
    list_display = ("name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    fields = ("name", "scopes", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")

    # A token lets its holder write usage for every line: creating one asks to confirm it is you,
    # as changing the account's e-mail or password does.
    @method_decorator(reauthentication_required)
    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        token, text = integration_token_create(name=obj.name, scopes=obj.scopes)
        obj.pk, obj.prefix = token.pk, token.prefix
        messages.warning(
            request, f"The token for {token.name} is {text} - copy it now, it is not shown again."
        )
