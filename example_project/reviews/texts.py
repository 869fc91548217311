"""The demo's product reviews and comments: what they say, and when they were written.

Pure Python (no Django), so that a test can check every text against the offline backend:
each one is written to be plainly positive or plainly negative, and the demo classifies them
with a lexicon (VADER), which reads words, not irony. ``tests/test_example_seed.py`` checks that
the offline backend gives every text the label it was written for, so the demo's first screen
shows no confidently wrong label. (It would get subtler texts wrong: "I expected more" reads as
neutral to it; the demo leaves such texts out rather than show the backend at its worst.)
"""

import random
from datetime import timedelta

PRODUCTS = {
    "Espresso machine": {
        "positive": [
            "the crema is thick and the shots taste wonderful.",
            "it heats up in under a minute and cleaning it is easy.",
            "the steam wand makes lovely silky milk for my cappuccino.",
            "my morning coffee is excellent now, better than the cafe down the street.",
            "the build quality is solid and it looks great on the counter.",
        ],
        "negative": [
            "the pump broke after a month and support was useless.",
            "it leaks water all over the counter, a terrible mess every morning.",
            "the coffee tastes bitter and burnt no matter what I try.",
            "the steam wand stopped working after two weeks, very disappointing.",
        ],
    },
    "Hiking boots": {
        "positive": [
            "they were comfortable from day one and my feet stayed dry in the rain.",
            "the grip on wet rock is excellent and they feel very stable.",
            "after two hundred miles they still look great and support my ankles well.",
            "light, warm and comfortable, perfect for long trails.",
        ],
        "negative": [
            "they gave me painful blisters on the first short walk.",
            "the sole cracked after a month, poor quality for the price.",
            "they leak badly in the rain and my socks were soaked, miserable.",
            "the laces broke twice and the stitching is already failing.",
        ],
    },
    "Noise-cancelling headphones": {
        "positive": [
            "the noise cancelling is amazing on flights and the sound is rich.",
            "the battery lasts all week and they are comfortable for hours.",
            "calls sound clear and pairing with my phone was easy.",
            "great bass, clean highs, and the case is nicely made.",
        ],
        "negative": [
            "the left ear cup crackles horribly and the bluetooth keeps dropping, so frustrating.",
            "they hurt my ears after an hour and the sound is muddy.",
            "the battery died after three months, a waste of money.",
            "the noise cancelling hisses constantly, really annoying.",
        ],
    },
    "Robot vacuum": {
        "positive": [
            "it keeps the floors clean every day and I love not having to vacuum.",
            "the app is simple and the mapping works perfectly.",
            "it handles pet hair well and empties itself, a great time saver.",
            "quiet, smart and thorough, it even cleans under the sofa.",
        ],
        "negative": [
            "it gets stuck under the bed every single day, useless.",
            "the app crashes constantly and the map is wrong half the time.",
            "it scratched the wooden floor and the brush broke, awful.",
            "it keeps losing the charging dock and dies in the middle of the room, frustrating.",
        ],
    },
    "Office chair": {
        "positive": [
            "my back feels great after a week of sitting in it.",
            "the lumbar support is excellent and the armrests adjust easily.",
            "assembly took ten minutes and it is very comfortable all day.",
            "sturdy, comfortable and it looks great in my office.",
        ],
        "negative": [
            "the seat is hard and my back hurts after an hour.",
            "the gas lift failed and it sinks slowly all day, annoying.",
            "one armrest broke in the first week, cheap plastic.",
            "it squeaks loudly every time I move, terrible.",
        ],
    },
    "Electric kettle": {
        "positive": [
            "it boils water quickly and quietly, great for tea.",
            "the temperature presets are perfect for green tea.",
            "it keeps the water warm for ages and looks beautiful.",
        ],
        "negative": [
            "the lid broke after a week and the water tastes of plastic.",
            "it is painfully loud and switched itself off before boiling.",
            "rust appeared inside after a month, disgusting.",
        ],
    },
}

OPENINGS = {
    "positive": [
        "Really happy with this:",
        "Love it,",
        "Great purchase:",
        "Highly recommend,",
        "Five stars:",
        "So glad I bought it:",
        "Excellent value:",
        "Very pleased,",
    ],
    "negative": [
        "Very disappointed:",
        "Avoid this one:",
        "Terrible purchase:",
        "Regret buying it:",
        "Awful experience:",
        "Not happy at all,",
    ],
}

CLOSINGS = {
    "positive": ["", "Would buy again.", "Worth every penny.", "Glad I chose this one."],
    "negative": ["", "Returning it.", "Avoid it.", "What a waste of money."],
}

COMMENTS = {
    "positive": [
        "Thanks, this was really helpful!",
        "Agreed, I love mine too.",
        "Great review, you convinced me to buy one.",
        "Same here, excellent product.",
        "Thanks for the detailed and useful review.",
    ],
    "negative": [
        "Same problem here, very frustrating.",
        "Mine broke too, terrible support.",
        "Sorry to hear that, what a disappointing product.",
        "I had the same awful experience.",
    ],
}
#: The comment a threshold rule hides (``reviews.actions.hide_comment``): very negative.
TROLL = "This is the worst, most pathetic garbage ever. Terrible, awful, useless."

AUTHORS = [
    "ana",
    "ben",
    "carl",
    "dee",
    "eve",
    "fred",
    "gia",
    "hugo",
    "ines",
    "jon",
    "kim",
    "lea",
    "max",
    "nora",
    "omar",
    "pia",
    "raj",
    "sara",
    "tom",
    "uma",
    "vic",
    "wen",
    "yusuf",
    "zoe",
]


def review_texts():
    """Every review text the seed can write: ``[(text, sentiment)]``, each once."""
    texts = []
    for product in PRODUCTS.values():
        for sentiment, details in product.items():
            for opening in OPENINGS[sentiment]:
                for detail in details:
                    for closing in CLOSINGS[sentiment]:
                        texts.append((_review(opening, detail, closing), sentiment))
    return texts


def _review(opening, detail, closing):
    return f"{opening} {detail[0].upper()}{detail[1:]} {closing}".strip()


def comment_texts():
    """Every comment text: ``[(text, sentiment)]``."""
    return [(text, sentiment) for sentiment, texts in COMMENTS.items() for text in texts] + [
        (TROLL, "negative")
    ]


def plan(now, *, days=30, seed=7):
    """Reviews (with their comments) spread over the ``days`` before ``now``, oldest first.

    More on weekends and a slow growth; the robot vacuum has a bad batch two weeks ago (its
    reviews turn negative for a few days), so the label shares move over time.

    Returns:
        ``[{"product", "author", "rating", "body", "sentiment", "created_at", "comments":
        [{"author", "body", "created_at"}]}]``, sorted by ``created_at``.
    """
    rng = random.Random(seed)
    used = set()
    reviews = []
    start = now - timedelta(days=days)
    for day in range(days):
        midnight = start + timedelta(days=day)
        count = 9 + day // 5 + (5 if midnight.weekday() >= 5 else 0) + rng.randint(-2, 2)
        for _ in range(count):
            product = rng.choice(list(PRODUCTS))
            bad_batch = product == "Robot vacuum" and 12 <= days - day <= 17
            negative_share = 0.8 if bad_batch else 0.25
            sentiment = "negative" if rng.random() < negative_share else "positive"
            body = _fresh(rng, product, sentiment, used)
            created = midnight + timedelta(seconds=rng.uniform(7 * 3600, 23 * 3600))
            if created >= now:
                continue
            rating = rng.choice([4, 5, 5]) if sentiment == "positive" else rng.choice([1, 1, 2])
            reviews.append(
                {
                    "product": product,
                    "author": rng.choice(AUTHORS),
                    "rating": rating,
                    "body": body,
                    "sentiment": sentiment,
                    "created_at": created,
                    "comments": _comments(rng, sentiment, created, now),
                }
            )
    reviews.sort(key=lambda review: review["created_at"])
    # The troll's comment, on the newest review that has none, hidden by the rule.
    newest = next(review for review in reversed(reviews) if not review["comments"])
    newest["comments"].append(
        {
            "author": "troll",
            "body": TROLL,
            "created_at": newest["created_at"] + timedelta(minutes=3),
        }
    )
    return reviews


def _fresh(rng, product, sentiment, used):
    """A text for ``product`` not used yet (an opening, a detail, a closing)."""
    details = PRODUCTS[product][sentiment]
    for _ in range(50):
        text = _review(
            rng.choice(OPENINGS[sentiment]), rng.choice(details), rng.choice(CLOSINGS[sentiment])
        )
        if text not in used:
            used.add(text)
            return text
    # Every combination is taken: a repeat, which the result cache answers.
    return text


def _comments(rng, sentiment, created, now):
    """Zero to two comments after a review, mostly agreeing with it."""
    comments = []
    for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
        agrees = rng.random() < 0.8
        tone = sentiment if agrees else ("positive" if sentiment == "negative" else "negative")
        when = created + timedelta(minutes=rng.uniform(5, 600))
        if when < now:
            comments.append(
                {
                    "author": rng.choice(AUTHORS),
                    "body": rng.choice(COMMENTS[tone]),
                    "created_at": when,
                }
            )
    return comments
