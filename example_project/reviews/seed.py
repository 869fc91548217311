"""A few products, reviews and comments for the demo (``rundemo`` calls :func:`seed`)."""

from django.db import transaction

from reviews.models import Comment, Product, Review

REVIEWS = {
    "Espresso machine": [
        ("ana", 5, "Wonderful machine, the coffee is excellent and it is easy to clean.",
         [("ben", "Agreed, I love mine too."),
          ("troll", "This is the worst, most pathetic garbage ever. Terrible, awful, useless.")]),
        ("carl", 2, "The pump broke after a month. Disappointing and noisy.",
         [("dee", "Same here, support was slow and unhelpful.")]),
    ],
    "Hiking boots": [
        ("eve", 4, "Comfortable from day one; a bit heavy but great grip on wet rock.",
         [("fred", "Thanks, that is helpful!")]),
    ],
}


def seed():
    """Create the demo rows unless there are reviews already. Returns how many reviews."""
    if Review.objects.exists():
        return 0
    created = 0
    # One transaction: the saves create their classification requests in it, and the
    # wake-ups go out when it commits.
    with transaction.atomic():
        for name, reviews in REVIEWS.items():
            product = Product.objects.create(name=name)
            for author, rating, body, comments in reviews:
                review = Review.objects.create(product=product, author=author, rating=rating,
                                               body=body)
                created += 1
                for commenter, text in comments:
                    Comment.objects.create(review=review, author=commenter, body=text)
    return created
