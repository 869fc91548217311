import os

from django.apps import AppConfig

SENTIMENT = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
OTHER = "acme/other-sentiment"


class TestAppConfig(AppConfig):
    """Registers the test models in code, the way a site's AppConfig.ready() would.

    The worker process the integration tests start imports this too, so the rules
    and the signal receivers exist where results are stored.
    """

    name = "tests.testapp"
    label = "testapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        import django_textclass
        from django_textclass.policies import Split
        from django_textclass.rules import Rule
        from django_textclass.signals import classification_failed, classification_succeeded
        from tests.testapp import actions

        # Connected before the registrations connect the rules receiver, so it runs first.
        classification_succeeded.connect(actions.die_on_signal, dispatch_uid="testapp-die")
        comment = self.get_model("Comment")
        django_textclass.register(
            comment,
            fields=["title", "body"],
            models=[SENTIMENT, OTHER],
            rules=[
                Rule(
                    "NEGATIVE",
                    0.9,
                    "tests.testapp.actions.hide",
                    model=SENTIMENT,
                    field="body",
                    name="hide negative",
                ),
                Rule(
                    "NEGATIVE", 0.9, actions.explode, model=SENTIMENT, field="body", name="explodes"
                ),
            ],
            date_field="created_at",
        )
        django_textclass.register(self.get_model("Post"), fields=["body"], models=[SENTIMENT])
        django_textclass.register(
            self.get_model("Ticket"),
            fields=["body"],
            models=[SENTIMENT],
            long_text=Split(max_length=40, combine="mean"),
        )
        if not os.environ.get("TEXTCLASS_TEST_NO_SIGNAL_LOG"):  # the benchmarks' workers
            classification_succeeded.connect(actions.log_succeeded, dispatch_uid="testapp-ok")
            classification_failed.connect(actions.log_failed, dispatch_uid="testapp-failed")
