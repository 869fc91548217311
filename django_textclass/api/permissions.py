"""Who may use the API, and which requests each user sees.

Two separate layers, so that changing one can never widen the other:

* :func:`get_permissions` builds the access checks from the project's
  ``REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"]``, as any DRF view does, unless
  ``TEXTCLASS["API_PERMISSION_CLASSES"]`` names classes for this API alone (to require a
  group or a scope, or :class:`IsOwnerOrStaff`).
* :func:`scope_to_user` narrows every queryset to the caller's own requests (all of
  them for staff when ``API_STAFF_SEES_ALL``). It always applies, whatever the
  permission classes say: another user's request answers 404, never 403, so its
  existence is not revealed.
"""

from django.utils.module_loading import import_string
from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings


class IsOwnerOrStaff(BasePermission):
    """Authenticated users only; a request object is for its owner (or staff)."""

    def has_permission(self, request, view):
        """Any authenticated user may submit and list (the list is their own)."""
        return bool(request.user and request.user.is_authenticated)

    def has_object_permission(self, request, view, obj):
        """The owner, or staff when ``API_STAFF_SEES_ALL``, may read and act on ``obj``."""
        return staff_sees_all(request) or (
            obj.owner_id is not None and obj.owner_id == request.user.pk
        )


def get_permissions():
    """The API's permission instances, read at each request.

    Those named in ``TEXTCLASS["API_PERMISSION_CLASSES"]``, or, when it is None (the
    default), the project's ``REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"]``.
    """
    return [cls() for cls in classes_from_settings("API_PERMISSION_CLASSES")]


def classes_from_settings(name):
    """The classes of ``TEXTCLASS[name]``, or of DRF's ``DEFAULT_*`` twin when it is None.

    ``API_PERMISSION_CLASSES`` falls back to ``DEFAULT_PERMISSION_CLASSES`` and
    ``API_THROTTLE_CLASSES`` to ``DEFAULT_THROTTLE_CLASSES``.
    """
    from django_textclass.conf import app_settings

    paths = getattr(app_settings, name)
    if paths is None:
        return list(getattr(api_settings, name.replace("API_", "DEFAULT_")))
    return [import_string(path) for path in paths]


def staff_sees_all(request):
    """Whether the caller sees every user's requests (active staff, when allowed)."""
    from django_textclass.conf import app_settings

    user = request.user
    return bool(
        app_settings.API_STAFF_SEES_ALL and user and user.is_authenticated and user.is_staff
    )


def scope_to_user(request, queryset):
    """``queryset`` narrowed to what the caller may see.

    Staff (with ``API_STAFF_SEES_ALL``) see everything; an authenticated user sees
    their own requests; an anonymous caller sees none (anonymous submissions have no
    owner, so nobody can claim them).
    """
    if staff_sees_all(request):
        return queryset
    user = request.user
    if not (user and user.is_authenticated):
        return queryset.none()
    return queryset.filter(owner=user)
