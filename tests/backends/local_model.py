"""A tiny randomly initialised text classifier, built and saved by the tests themselves.

No weights can be downloaded here, and none are needed to test the local backend: a two-layer
BERT with a hidden size of 32 and a word-level vocabulary loads, batches, truncates and ranks
exactly as a real one does, in milliseconds. Its answers mean nothing, but they are a
deterministic function of the seed, so the tests compare them with the model's own logits.

    backend = local_backend(tmp_path)           # a configured Backend, model on disk
    folder = build_model(tmp_path / "m", seed=1)

Importing this module skips the calling test module when transformers or torch is missing,
unless the run requires them (``TEXTCLASS_TEST_LOCAL=1``, which scripts/test sets once it has
installed them, or ``CI=true``): a CI run without them fails instead of passing quietly.
"""

import os

import pytest

REQUIRED = os.environ.get("TEXTCLASS_TEST_LOCAL") == "1" or (
    os.environ.get("CI") == "true" and os.environ.get("TEXTCLASS_TEST_LOCAL") != "0"
)
try:
    import torch
    import transformers
except ImportError as exc:
    if REQUIRED:
        raise ImportError(
            f"the local model tests need transformers and torch ({exc}); this run requires "
            "them (CI=true or TEXTCLASS_TEST_LOCAL=1): run scripts/test, which installs them"
        ) from exc
    pytest.skip(
        f"transformers and torch are not installed ({exc}); "
        "install the local extra (scripts/test does, on Python 3.11)",
        allow_module_level=True,
    )

from django_textclass.backends.local import Backend  # noqa: E402

LABELS = ("NEGATIVE", "NEUTRAL", "POSITIVE")
#: Position embeddings of the tiny model: the most tokens one input may have, [CLS] and
#: [SEP] included.
MAX_POSITIONS = 64
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
#: Every word of the vocabulary is one token (a word-level vocabulary, lower case).
WORDS = [
    "i",
    "love",
    "this",
    "movie",
    "it",
    "is",
    "wonderful",
    "and",
    "the",
    "acting",
    "great",
    "hate",
    "terrible",
    "worst",
    "film",
    "have",
    "ever",
    "seen",
    "train",
    "leaves",
    "at",
    "noon",
    "a",
    "good",
    "bad",
    "day",
    "fine",
    "meh",
    "plot",
    "was",
    "boring",
    "music",
    "lovely",
    "story",
    "slow",
    "but",
    "end",
    "ok",
]
TEXTS = [
    "i love this movie it is wonderful",
    "the worst film i have ever seen",
    "the train leaves at noon",
    "a good day",
    "the plot was boring but the music was lovely",
    "meh",
]


def build_model(folder, *, seed=0, labels=LABELS, max_positions=MAX_POSITIONS, problem_type=None):
    """Build, save and return the folder of a tiny BERT sequence classifier.

    Args:
        folder: where to save it (created); what ``save_pretrained()`` writes goes there.
        seed: the seed of its random weights: the same seed gives the same model.
        labels: its labels, in ``id2label`` order.
        max_positions: its position embeddings (its longest input, in tokens).
        problem_type: ``config.problem_type`` (``"multi_label_classification"`` makes the
            pipeline's default function the sigmoid).
    """
    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join([*SPECIAL, *WORDS]) + "\n")
    # Read from the folder (a vocab.txt alone), which every transformers release supports.
    tokenizer = transformers.BertTokenizerFast.from_pretrained(
        folder, do_lower_case=True, local_files_only=True
    )
    config = transformers.BertConfig(
        vocab_size=len(SPECIAL) + len(WORDS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=max_positions,
        # Weights far larger than BERT's 0.02, so that texts get rankings far apart.
        initializer_range=1.0,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        problem_type=problem_type,
    )
    torch.manual_seed(seed)
    model = transformers.BertForSequenceClassification(config)
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_backend(folder, **options):
    """A local backend serving the model in ``folder`` for every model id, on one thread."""
    return Backend(alias="local", **{"MODEL_PATH": str(folder), "THREADS": 1, **options})


def local_backend(tmp_path, **options):
    """The contract suite's maker: a tiny model saved under ``tmp_path``, and its backend."""
    return make_backend(build_model(tmp_path / "tiny-model"), **options)


def logits(folder, text):
    """The model's logits for ``text``, computed without the pipeline (one text, no batch)."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        folder, local_files_only=True
    )
    model.eval()
    inputs = tokenizer(text, return_tensors="pt", truncation=True, max_length=MAX_POSITIONS)
    with torch.no_grad():
        values = model(**inputs).logits[0].tolist()
    return dict(zip([model.config.id2label[i] for i in range(len(values))], values, strict=True))


def expected_scores(folder, text, function="softmax"):
    """``{label: score}`` for ``text``: the logits through softmax, sigmoid or nothing."""
    values = logits(folder, text)
    raw = torch.tensor(list(values.values()), dtype=torch.float64)
    if function == "softmax":
        raw = torch.softmax(raw, dim=0)
    elif function == "sigmoid":
        raw = torch.sigmoid(raw)
    return dict(zip(values, raw.tolist(), strict=True))
