"""Staff only, and the Hugging Face token never shows up anywhere in the admin."""

import pytest
from django.test import override_settings
from django.urls import reverse

from tests.admin.data import make_request

TOKEN = "hf_ADMIN_TEST_TOKEN_must_never_show_9f3c"
PAGES = ["changelist", "dashboard", "export"]


def page(name):
    return reverse(f"admin:django_textclass_classificationrequest_{name}")


@pytest.mark.parametrize("name", PAGES)
def test_anonymous__sent_to_login(client, db, name):
    response = client.get(page(name))

    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize("name", PAGES)
def test_non_staff__sent_to_login(client, django_user_model, db, name):
    client.force_login(django_user_model.objects.create_user("nina"))

    response = client.get(page(name))

    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize("name", PAGES)
def test_staff_without_view_permission__forbidden(client, django_user_model, db, name):
    client.force_login(django_user_model.objects.create_user("sam", is_staff=True))

    assert client.get(page(name)).status_code == 403


@pytest.mark.parametrize("name", PAGES)
def test_staff_with_view_permission__allowed(viewer_client, history, name):
    assert viewer_client.get(page(name), follow=True).status_code == 200


def test_token__absent_from_every_admin_page(admin_client, history, settings):
    backends = {
        "default": {
            "BACKEND": "django_textclass.backends.huggingface.Backend",
            "OPTIONS": {"TOKEN": TOKEN, "API_URL": "http://127.0.0.1:9/models/{model_id}"},
        },
    }
    with override_settings(TEXTCLASS={**settings.TEXTCLASS, "BACKENDS": backends}):
        row = history["failed0"]
        source = make_request(text="token check")
        urls = [
            page("changelist"),
            page("dashboard"),
            page("export"),
            page("changelist") + "?backend=default",
            reverse("admin:django_textclass_classificationrequest_change", args=[row.pk]),
            reverse("admin:django_textclass_classificationrequest_change", args=[source.pk]),
            reverse("admin:app_list", args=["django_textclass"]),
            reverse("admin:index"),
        ]
        for url in urls:
            response = admin_client.get(url, follow=True)
            assert response.status_code == 200, url
            content = (
                b"".join(response.streaming_content) if response.streaming else response.content
            )
            assert TOKEN.encode() not in content, url
            assert b"hf_ADMIN_TEST" not in content, url
