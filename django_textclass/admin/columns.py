"""What the history's list and detail pages show of one request, column by column.

Each column reads only the row and what is selected with it (``owner``, ``content_type``):
no query per row in the list. The detail page's two tables (waits and retries, labels) read
the request's own events and scores.
"""

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from django_textclass.admin.charts import STATUS_COLOURS

#: Characters of the text shown in the changelist.
SHORT_TEXT = 80


class RequestColumns:
    """The display columns of :class:`~django_textclass.admin.ClassificationRequestAdmin`."""

    @admin.display(description=_("model"), ordering="model_id")
    def model_column(self, obj):
        """The model id, cut to the column's width by the style sheet; the whole in its title.

        Hub ids run to 60 characters and more (``owner/name-finetuned-...``): in full they
        take the width the text needs, on a screen of 1,400 pixels.
        """
        return format_html(
            '<span class="textclass-model" title="{}">{}</span>', obj.model_id, obj.model_id
        )

    @admin.display(description=_("text"))
    def short_text(self, obj):
        """The start of the text; the admin escapes it like any other value."""
        return Truncator(obj.text).chars(SHORT_TEXT)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj):
        """The status as a coloured badge."""
        return format_html(
            '<span class="textclass-badge" style="background:{}">{}</span>',
            STATUS_COLOURS.get(obj.status, "#666"),
            obj.get_status_display(),
        )

    @admin.display(description=_("key"), ordering="model_key")
    def key_display(self, obj):
        """The model key, with the revision it named (``sentiment @ 714eb0f``); a dash if none."""
        if not obj.model_key:
            return "–"
        if not obj.revision:
            return obj.model_key
        return format_html(
            '{} <span class="textclass-revision">@ {}</span>', obj.model_key, obj.revision
        )

    @admin.display(description=_("top label"), ordering="top_label")
    def top_result(self, obj):
        """``LABEL (0.987)``, or a dash before there is an answer."""
        if not obj.top_label:
            return "–"
        return format_html("{} ({})", obj.top_label, f"{obj.top_score or 0:.3f}")

    @admin.display(description=_("duration"))
    def duration_display(self, obj):
        """Start of the last attempt to finish, in seconds."""
        return "–" if obj.duration is None else f"{obj.duration.total_seconds():.3f} s"

    @admin.display(description=_("source"))
    def source_link(self, obj):
        """A link to the source object's admin page, without loading the object.

        ``content_type`` is selected with the row, so this costs no query per row.
        """
        if not obj.content_type_id:
            return "–"
        content_type = obj.content_type
        text = f"{content_type.app_label}.{content_type.model} #{obj.object_id}"
        try:
            url = reverse(
                f"{self.admin_site.name}:{content_type.app_label}_{content_type.model}_change",
                args=[obj.object_id],
            )
        except NoReverseMatch:
            return text
        return format_html('<a href="{}">{}</a>', url, text)

    @admin.display(description=_("waits and retries"))
    def events_table(self, obj):
        """The request's last waits and retries, oldest first: when, what, why, how long."""
        events = list(obj.events.order_by("-at", "-pk")[:50])[::-1]
        if not events:
            return "–"
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            '<td class="textclass-num">{}</td><td>{}</td></tr>',
            (
                (
                    event.at.strftime("%Y-%m-%d %H:%M:%S"),
                    event.get_kind_display(),
                    event.reason,
                    event.attempts,
                    "–" if event.wait_seconds is None else f"{event.wait_seconds:g} s",
                    Truncator(event.message).chars(200),
                )
                for event in events
            ),
        )
        return format_html(
            '<table class="textclass-scores"><thead><tr><th scope="col">{}</th>'
            '<th scope="col">{}</th><th scope="col">{}</th><th scope="col">{}</th>'
            '<th scope="col">{}</th><th scope="col">{}</th></tr></thead><tbody>{}</tbody>'
            "</table>",
            _("When"),
            _("Kind"),
            _("Reason"),
            _("Attempts"),
            _("Wait"),
            _("Message"),
            body,
        )

    @admin.display(description=_("labels"))
    def scores_table(self, obj):
        """Every ``{label, score}`` of the answer, best first, with a bar per score."""
        rows = obj.labels
        if not rows:
            return "–"
        body = format_html_join(
            "",
            '<tr><td>{}</td><td class="textclass-num">{}</td><td>'
            '<span class="textclass-bar" style="width:{}%"></span></td></tr>',
            (
                (
                    row["label"],
                    f"{row['score']:.4f}",
                    f"{max(0.0, min(1.0, row['score'])) * 100:.1f}",
                )
                for row in rows
            ),
        )
        return format_html(
            '<table class="textclass-scores"><thead><tr><th scope="col">{}</th>'
            '<th scope="col">{}</th><th scope="col">{}</th></tr></thead><tbody>{}</tbody>'
            "</table>",
            _("Label"),
            _("Score"),
            _("Bar"),
            body,
        )
