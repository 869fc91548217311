"""Admin for classification history (read-only: state changes go through services)."""

from django.contrib import admin
from django.template.defaultfilters import truncatechars
from django.utils.translation import gettext_lazy as _

from django_textclass.models import ClassificationRequest, ClassificationScore


class ClassificationScoreInline(admin.TabularInline):
    """Every ``{label, score}`` of the answer, best first."""

    model = ClassificationScore
    fields = ["rank", "label", "score"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        """Scores come from the backend only."""
        return False


@admin.register(ClassificationRequest)
class ClassificationRequestAdmin(admin.ModelAdmin):
    """The history of classification requests, newest first."""

    list_display = [
        "created_at", "model_id", "short_text", "status", "top_label", "top_score",
        "attempts", "owner",
    ]
    list_filter = ["status", "model_id", "backend"]
    list_select_related = ["owner"]
    search_fields = ["=uuid", "text"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [ClassificationScoreInline]
    readonly_fields = [
        "uuid", "owner", "model_id", "function_to_apply", "top_k", "use_cache", "text",
        "text_hash", "status", "attempts", "error_code", "error_message", "created_at",
        "started_at", "finished_at", "next_attempt_at", "lease_expires_at", "top_label",
        "top_score", "backend", "backend_ms", "reused_from", "content_type", "object_id",
        "source_field",
    ]
    exclude = ["claim_token"]

    @admin.display(description=_("text"))
    def short_text(self, obj):
        """The start of the text (escaped by the admin like any other value)."""
        return truncatechars(obj.text, 80)

    def has_add_permission(self, request):
        """Requests are created through ``classify()`` or the API, not by hand."""
        return False

    def has_change_permission(self, request, obj=None):
        """Results and statuses are never edited by hand."""
        return False
