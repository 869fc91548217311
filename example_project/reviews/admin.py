"""Admin for the reviews demo: sentiment next to every review and comment."""

from django.conf import settings
from django.contrib import admin

from django_textclass.models import RuleFiring
from reviews.models import Comment, Product, Review


def sentiment_model():
    return settings.TEXTCLASS.get("DEFAULT_MODEL") or (
        "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
    )


class SentimentMixin:
    """Adds the latest sentiment of each row, read in the list's own query."""

    def get_queryset(self, request):
        """Annotate ``textclass_label`` / ``textclass_score``."""
        return super().get_queryset(request).annotate_latest(sentiment_model())

    @admin.display(description="sentiment", ordering="textclass_score")
    def sentiment(self, obj):
        """``LABEL (score)``, or a dash while the worker has not answered yet."""
        if obj.textclass_label is None:
            return "-"
        return f"{obj.textclass_label} ({obj.textclass_score:.2f})"


class CommentInline(admin.TabularInline):
    model = Comment
    fields = ["author", "body", "hidden"]
    extra = 0


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name"]


@admin.register(Review)
class ReviewAdmin(SentimentMixin, admin.ModelAdmin):
    list_display = ["product", "author", "rating", "sentiment", "created_at"]
    list_filter = ["product"]
    inlines = [CommentInline]


@admin.register(Comment)
class CommentAdmin(SentimentMixin, admin.ModelAdmin):
    list_display = ["review", "author", "body", "hidden", "sentiment"]
    list_filter = ["hidden"]


@admin.register(RuleFiring)
class RuleFiringAdmin(admin.ModelAdmin):
    """The audit trail of threshold rules (read-only)."""

    list_display = ["fired_at", "rule", "label", "score", "min_score", "object_id", "outcome"]
    list_filter = ["rule", "outcome"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
