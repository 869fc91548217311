"""The benchmark's baseline endpoint: a stock DRF create, as a developer would hand-write it.

``POST /bare/submissions/`` with ``{"text", "model_id"}`` stores a
:class:`~tests.testapp.models.BareSubmission` and answers 201 with it. It has the
project's authentication classes (session and DRF token, as the app's endpoint) and
"authenticated users only"; nothing else: no throttle, no broker, no custom parser or
fields.
"""

from rest_framework import mixins, permissions, serializers, viewsets

from tests.testapp.models import BareSubmission


class BareSubmissionSerializer(serializers.ModelSerializer):
    """Every column a client may send, and the ones worth showing back."""

    class Meta:
        model = BareSubmission
        fields = [
            "uuid",
            "model_id",
            "function_to_apply",
            "top_k",
            "use_cache",
            "text",
            "status",
            "created_at",
        ]


class BareSubmissionViewSet(mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Create only; the submitter is the owner."""

    queryset = BareSubmission.objects.all()
    serializer_class = BareSubmissionSerializer
    permission_classes = [permissions.IsAuthenticated]
    schema = None  # not part of the app's API: kept out of its OpenAPI document

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)
