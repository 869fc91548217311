"""The read-only history admin."""

import pytest
from django.urls import reverse

from django_textclass.models import ClassificationRequest, ClassificationScore

MODEL = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"


@pytest.fixture
def finished_request(db):
    request = ClassificationRequest.objects.create(
        model_id=MODEL, text="<script>alert('x')</script> I love it", text_hash="0" * 64,
        status="succeeded", top_label="POSITIVE", top_score=0.99, backend="default",
    )
    ClassificationScore.objects.create(request=request, rank=0, label="POSITIVE", score=0.99)
    ClassificationScore.objects.create(request=request, rank=1, label="NEGATIVE", score=0.01)
    return request


def test_changelist__lists_requests_with_text_escaped(admin_client, finished_request):
    response = admin_client.get(reverse("admin:django_textclass_classificationrequest_changelist"))

    assert response.status_code == 200
    body = response.content.decode()
    assert "POSITIVE" in body
    assert "<script>alert" not in body
    assert "&lt;script&gt;" in body


def test_detail__shows_every_label_read_only(admin_client, finished_request):
    url = reverse(
        "admin:django_textclass_classificationrequest_change", args=[finished_request.pk]
    )
    response = admin_client.get(url)

    assert response.status_code == 200
    body = response.content.decode()
    assert "NEGATIVE" in body and "POSITIVE" in body
    assert 'name="status"' not in body  # no editable field
    assert admin_client.post(url, {"status": "failed"}).status_code == 403
    finished_request.refresh_from_db()
    assert finished_request.status == "succeeded"


def test_add__is_not_offered(admin_client, db):
    url = reverse("admin:django_textclass_classificationrequest_add")

    assert admin_client.get(url).status_code == 403


def test_changelist__needs_staff(client, django_user_model, finished_request):
    user = django_user_model.objects.create_user("alice", password="pw")
    client.force_login(user)
    url = reverse("admin:django_textclass_classificationrequest_changelist")

    assert client.get(url).status_code == 302
