"""Products, their reviews, and comments on the reviews."""

from django.db import models
from django.utils import timezone

from django_textclass.content import ClassificationResults, ClassifiedQuerySet


class Product(models.Model):
    """Something to review."""

    name = models.CharField(max_length=200)

    def __str__(self):
        return self.name


class Review(models.Model):
    """A review; its body is classified for sentiment on every change."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="reviews")
    author = models.CharField(max_length=100)
    rating = models.PositiveSmallIntegerField(default=5)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = ClassifiedQuerySet.as_manager()
    textclass = ClassificationResults()

    def __str__(self):
        return f"{self.author} on {self.product}"


class Comment(models.Model):
    """A comment on a review; a very negative one is hidden by a threshold rule."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="comments")
    author = models.CharField(max_length=100)
    body = models.TextField()
    hidden = models.BooleanField(
        default=False, help_text="Set by the 'hide very negative comments' rule."
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ClassifiedQuerySet.as_manager()
    textclass = ClassificationResults()

    def __str__(self):
        return f"{self.author}: {self.body[:40]}"
