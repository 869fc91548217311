"""Threshold rules: call a site's action when a label's score reaches a minimum.

A rule belongs to a registration (see :mod:`django_textclass.content.registry`)::

    Rule("NEGATIVE", 0.95, "reviews.actions.hide_comment")

When a request for that registration succeeds and the rule's label has a score of
at least ``min_score`` in its ranking (any rank, not only the top one), the action
is called once, after commit, in the process that stored the result::

    def hide_comment(obj, *, request, rule, score):
        ...

Each firing is recorded as a :class:`~django_textclass.models.RuleFiring` (rule,
request, label, score, when, outcome) in one transaction with the action's own
writes and its outcome: a firing is stored if and only if its action ran to an end.
A unique constraint on ``(rule, request)`` makes a second firing for the same result
impossible: of two deliveries of the same signal at once, the second waits for the
first's commit and finds the firing there. If the action raises, its writes are
rolled back (a savepoint), the error is logged and stored on the firing
(``outcome="error"``), and the pipeline goes on. If the process dies or the database
connection breaks before the commit, nothing of the firing is stored, and the signal,
which the sweep sends again (see :mod:`django_textclass.services.outcomes`), fires the
rule then: an action whose writes are all in the database runs exactly once; one with
effects outside it (an e-mail) may run again after such a crash.
"""

import logging
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils.module_loading import import_string

from django_textclass.exceptions import TextClassConfigurationError

logger = logging.getLogger("django_textclass.rules")

RULE_KEYS = {"LABEL", "MIN_SCORE", "ACTION", "MODEL", "FIELD", "NAME"}


@dataclass(frozen=True)
class Rule:
    """Call ``action`` when ``label`` scores at least ``min_score``.

    Args:
        label: the label to watch, as the model spells it (``"NEGATIVE"``).
        min_score: the threshold, from 0 to 1 (inclusive).
        action: a dotted path to ``action(obj, *, request, rule, score)``, or the
            callable itself (its dotted path is recorded).
        model: only for results of this model, named as the registration names it: a
            Hub model id, or a key of ``TEXTCLASS["MODELS"]`` (default: every model of
            the registration).
        field: only for results of this field (default: every registered field).
        name: the name recorded for audit; unique per registration. Default
            ``"<label> >= <min_score>: <action>"``.

    Raises:
        TextClassConfigurationError: a value is of the wrong type or out of range.
    """

    label: str
    min_score: float
    action: object
    model: str = None
    field: str = None
    name: str = ""
    _callable: object = dataclass_field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.label, str) or not self.label:
            raise TextClassConfigurationError(
                f"rule: label must be a non-empty string, not {self.label!r}"
            )
        score = self.min_score
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
            raise TextClassConfigurationError(
                f"rule {self.label!r}: min_score must be a number from 0 to 1, not {score!r}"
            )
        if callable(self.action):
            object.__setattr__(self, "_callable", self.action)
            object.__setattr__(
                self, "action", f"{self.action.__module__}.{self.action.__qualname__}"
            )
        elif not isinstance(self.action, str) or "." not in self.action:
            raise TextClassConfigurationError(
                f"rule {self.label!r}: action must be a callable or its dotted path, "
                f"not {self.action!r}"
            )
        if not self.name:
            object.__setattr__(
                self, "name", f"{self.label} >= {self.min_score:g}: {self.action}"[:200]
            )

    @classmethod
    def from_spec(cls, spec):
        """Build a rule from a :class:`Rule` or a settings dict.

        The dict has ``LABEL``, ``MIN_SCORE``, ``ACTION`` and optionally ``MODEL``,
        ``FIELD``, ``NAME``.
        """
        if isinstance(spec, Rule):
            return spec
        if not isinstance(spec, dict):
            raise TextClassConfigurationError(f"a rule must be a dict or a Rule, not {spec!r}")
        unknown = sorted(set(spec) - RULE_KEYS)
        missing = sorted({"LABEL", "MIN_SCORE", "ACTION"} - set(spec))
        if unknown or missing:
            raise TextClassConfigurationError(
                f"rule {spec!r}: unknown keys {unknown}, missing keys {missing}"
            )
        return cls(
            spec["LABEL"],
            spec["MIN_SCORE"],
            spec["ACTION"],
            spec.get("MODEL"),
            spec.get("FIELD"),
            spec.get("NAME", ""),
        )

    def get_action(self):
        """The action callable (imported on first use).

        Raises:
            ImportError: the dotted path cannot be imported.
        """
        if self._callable is None:
            object.__setattr__(self, "_callable", import_string(self.action))
        return self._callable

    def applies_to(self, request):
        """Whether the rule watches this request's model and field."""
        return self.model in (None, request.model_key or request.model_id) and self.field in (
            None,
            request.source_field,
        )


def run_rules(registration, request, source):
    """Fire the rules of ``registration`` whose threshold ``request`` reaches.

    Called once per succeeded request, after commit. Never raises for a failing
    action (it is logged and recorded).

    Raises:
        DatabaseError: the database connection broke; the firings not committed yet are
            not stored, and fire when the signal is sent again.

    Returns:
        The :class:`~django_textclass.models.RuleFiring` rows created here.
    """
    scores = {item.label: item.score for item in request.scores.all()}
    firings = []
    for rule in registration.rules:
        score = scores.get(rule.label)
        if score is None or score < rule.min_score or not rule.applies_to(request):
            continue
        firing = _fire(rule, request, source, score)
        if firing is not None:
            firings.append(firing)
    return firings


def _fire(rule, request, source, score):
    """Record the firing, run the action and store its outcome, in one transaction.

    Returns:
        The firing, or None if the rule had already fired for this result.
    """
    from django_textclass.models import RuleFiring

    with transaction.atomic():
        try:
            with transaction.atomic():
                firing = RuleFiring.objects.create(
                    rule=rule.name,
                    request=request,
                    request_uuid=request.uuid,
                    content_type_id=request.content_type_id,
                    object_id=request.object_id,
                    model_id=request.model_id,
                    label=rule.label,
                    score=score,
                    min_score=rule.min_score,
                    action=rule.action,
                )
        except IntegrityError:
            return None  # this rule already fired for this result
        try:
            with transaction.atomic():
                rule.get_action()(source, request=request, rule=rule, score=score)
        except DatabaseError as exc:
            if not connection_usable():
                raise  # the link broke: nothing of this firing is kept, it fires again later
            _failed(rule, request, firing, exc)
        except Exception as exc:  # noqa: BLE001 - a site's action must not break the pipeline
            _failed(rule, request, firing, exc)
        else:
            firing.outcome = RuleFiring.Outcome.OK
        firing.save(update_fields=["outcome", "error"])
    return firing


def _failed(rule, request, firing, exc):
    from django_textclass.models import RuleFiring

    logger.exception("Rule %r failed on request %s", rule.name, request.uuid)
    firing.outcome = RuleFiring.Outcome.ERROR
    firing.error = f"{type(exc).__name__}: {exc}"[:2000]


def connection_usable():
    """Whether the default database connection still answers (after an action's error)."""
    try:
        return connection.is_usable()
    except Exception:  # noqa: BLE001 - a broken link may raise anything here
        return False
