"""Admin: the pacing state every worker obeys (rate-limit waits, circuit breakers)."""

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_textclass.models import BackendPace
from django_textclass.services import pacing


@admin.register(BackendPace)
class BackendPaceAdmin(admin.ModelAdmin):
    """Read-only: the workers write these rows. The one action ends a wait by hand."""

    list_display = [
        "backend",
        "model_label",
        "circuit",
        "not_before",
        "waiting",
        "reason",
        "failures",
        "last_error",
        "updated_at",
    ]
    list_filter = ["circuit", "reason"]
    ordering = ["backend", "model_id"]
    actions = ["reset"]

    @admin.display(description=_("model"), ordering="model_id")
    def model_label(self, row):
        """The model id, or a note that the row is the whole backend's."""
        return row.model_id or _("(whole backend)")

    @admin.display(description=_("waiting"), boolean=True)
    def waiting(self, row):
        """Whether a wait is in force now."""
        return row.not_before is not None and row.not_before > timezone.now()

    def get_readonly_fields(self, request, obj=None):
        """Every field: only the workers write these rows."""
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        """Rows appear when a backend first needs one."""
        return False

    def has_delete_permission(self, request, obj=None):
        """Not deleted by hand: the reset action ends a wait."""
        return False

    @admin.action(description=_("End the wait and close the circuit"), permissions=["change"])
    def reset(self, request, queryset):
        """For an operator who knows the API is back before the workers find out."""
        count = pacing.reset(queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            ngettext(
                "%(count)d pacing state reset.",
                "%(count)d pacing states reset.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )
