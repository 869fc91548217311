from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    """Registers reviews and comments for background sentiment classification."""

    name = "reviews"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Product reviews"

    def ready(self):
        """Register the models, the way a site does in its own AppConfig."""
        import django_textclass
        from django_textclass.rules import Rule

        # models=None: TEXTCLASS["DEFAULT_MODEL"], an SST-2 sentiment model.
        django_textclass.register(
            self.get_model("Review"), fields=["body"], long_text="split", date_field="created_at"
        )
        django_textclass.register(
            self.get_model("Comment"),
            fields=["body"],
            date_field="created_at",
            # The lexicon of the offline backend scores every plainly negative comment
            # above 0.97 (its scores are not probabilities): 0.999 is the abusive ones only.
            rules=[
                Rule(
                    "NEGATIVE",
                    0.999,
                    "reviews.actions.hide_comment",
                    name="hide very negative comments",
                )
            ],
        )
