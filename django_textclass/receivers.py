"""``post_save`` / ``post_delete`` receivers for registered models.

They are connected per registered model (``sender=Model``) by the registry, never
for every model. Both run inside the transaction of the save or delete, so a
rollback undoes what they did; the work itself is in :mod:`django_textclass.content`.
"""

from django_textclass.registry import site


def on_save(sender, instance, created=False, raw=False, update_fields=None, **kwargs):
    """Classify the registered fields of ``instance`` whose text changed.

    Fixture loading (``raw``) is skipped, and so is a ``save(update_fields=...)``
    that touches none of the registered fields (no query at all).
    """
    if raw:
        return
    registration = site.get(sender)
    if registration is None:
        return
    fields = set(registration.fields)
    concrete = {field.name for field in sender._meta.concrete_fields}
    # A registered property may read any field, so only plain fields allow the shortcut.
    if update_fields is not None and fields <= concrete and not fields & set(update_fields):
        return
    from django_textclass.content import classify_object

    classify_object(instance, registration, created=created)


def on_delete(sender, instance, **kwargs):
    """Cancel the pending work of a deleted object (and delete its history if asked)."""
    if site.get(sender) is None:
        return
    from django_textclass.content import forget_object

    forget_object(sender, instance.pk)
