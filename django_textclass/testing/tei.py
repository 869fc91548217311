"""The emulator's TEI mode: Text Embeddings Inference serving one sequence classifier.

What it answers, as TEI 1.9 does (``router/src/http/{server,types}.rs``):

* ``GET /info``: the served model, its labels and limits (``max_client_batch_size``, ...).
* ``GET /health``: 200 with an empty body.
* ``POST /predict`` (and ``POST /``, ``POST /invocations``, which TEI maps to it for a
  classifier) with ``{"inputs", "truncate", "raw_scores"}``:

  - ``"text"``: one sequence, answered with a flat ``[{score, label}, ...]``;
  - ``["a", "b"]``: one *pair* of sequences, answered flat too; a plain list of three
    strings or more is refused (422, plain text, as axum's JSON extractor does);
  - ``[["a"], ["b", "c"]]``: a batch of sequences and pairs, answered with one list per
    item; more items than ``max_client_batch_size`` get ``Validation`` (422, or 413 as
    TEI answered up to 1.8).

  Scores are the emulator's rule (:mod:`django_textclass.testing.scoring`, not a model):
  softmax over the labels (sigmoid for a one-label model), or the raw logits with
  ``raw_scores``. A pair is scored as its two texts joined by a space. A sequence of more
  than ``max_input_length`` words (the emulator's tokens) is refused when truncation is
  off, and scored on its first words when it is on.

Errors are TEI's bodies, ``{"error": "...", "error_type": "Validation"}``; a missing or
wrong API key gets 401 with an empty body. Standard library only.
"""

import dataclasses

from django_textclass.testing import scoring
from django_textclass.testing.replies import Reply, json_answer, plain_answer, render

__all__ = ["PREDICT_ROUTES", "Refused", "TEIMode"]

#: The routes that predict for a classifier model.
PREDICT_ROUTES = ("/predict", "/", "/invocations")
_EXPECTING = (
    "a string, a pair of strings [string, string] or a batch of mixed strings and "
    "pairs [[string], [string, string], ...]"
)


class Refused(Exception):
    """A request TEI refuses; ``answer`` is what it answers."""

    def __init__(self, answer):
        super().__init__(answer[0])
        self.answer = answer


@dataclasses.dataclass(frozen=True)
class TEIMode:
    """How the emulator's TEI routes behave; ``emu.tei = TEIMode(...)`` turns them on.

    Args:
        model_id: The model TEI serves (its labels come from the emulator's ``labels``).
        max_client_batch_size: Most items in one batch (TEI's default: 32).
        validation_status: 422 (TEI 1.9 and later) or 413 (up to 1.8) for ``Validation``.
        max_input_length: Most words (the emulator's tokens) per sequence.
        auto_truncate: What a request without ``truncate`` gets (TEI 1.9's default: True).
        info: False answers ``GET /info`` with 404, as a proxy that hides it would.
    """

    model_id: str = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
    max_client_batch_size: int = 32
    validation_status: int = 422
    max_input_length: int = 512
    auto_truncate: bool = True
    info: bool = True

    def __post_init__(self):
        if not isinstance(self.model_id, str) or not self.model_id:
            raise ValueError("model_id must be a non-empty string")
        if self.max_client_batch_size < 1 or self.max_input_length < 1:
            raise ValueError("max_client_batch_size and max_input_length must be >= 1")
        if self.validation_status not in (413, 422):
            raise ValueError("validation_status must be 413 or 422")

    def info_object(self, labels):
        """What ``GET /info`` answers for a classifier over ``labels``."""
        return {
            "model_id": self.model_id,
            "model_sha": None,
            "model_dtype": "float32",
            "model_type": {
                "classifier": {
                    "id2label": {str(index): label for index, label in enumerate(labels)},
                    "label2id": {label: index for index, label in enumerate(labels)},
                }
            },
            "max_concurrent_requests": 512,
            "max_input_length": self.max_input_length,
            "max_batch_tokens": 16384,
            "max_batch_requests": None,
            "max_client_batch_size": self.max_client_batch_size,
            "auto_truncate": self.auto_truncate,
            "tokenization_workers": 1,
            "version": "1.9.3",
            "sha": None,
            "docker_label": None,
        }

    def error(self, error_type, message):
        """TEI's error answer for ``error_type`` (``Validation`` with ``validation_status``)."""
        status = self.validation_status if error_type == "Validation" else None
        return render(Reply.tei_error(error_type, message, status), self.model_id)

    def read(self, headers, body):
        """Check a ``/predict`` request; return ``(sequences, batch, truncate, raw_scores)``.

        ``sequences`` is a list of 1- or 2-tuples of texts; ``batch`` tells a batch answer
        from a single one.

        Raises:
            Refused: with the answer TEI gives to the request.
        """
        if body is None:
            raise Refused(plain_answer(400, "Failed to parse the request body as JSON"))
        if "json" not in headers.get("content-type", ""):
            raise Refused(
                plain_answer(415, "Expected request with `Content-Type: application/json`")
            )
        if not isinstance(body, dict) or "inputs" not in body:
            raise Refused(_data_error("missing field `inputs`"))
        sequences, batch = _sequences(body["inputs"])
        truncate = body.get("truncate")
        raw_scores = body.get("raw_scores", False)
        if truncate is not None and not isinstance(truncate, bool):
            raise Refused(_data_error("truncate: invalid type, expected a boolean"))
        if not isinstance(raw_scores, bool):
            raise Refused(_data_error("raw_scores: invalid type, expected a boolean"))
        if batch and len(sequences) > self.max_client_batch_size:
            raise Refused(
                self.error(
                    "Validation",
                    (
                        f"batch size {len(sequences)} > maximum allowed batch size "
                        f"{self.max_client_batch_size}"
                    ),
                )
            )
        truncate = self.auto_truncate if truncate is None else truncate
        for sequence in sequences:
            tokens = sum(len(text.split()) for text in sequence)
            if tokens > self.max_input_length and not truncate:
                raise Refused(
                    self.error(
                        "Validation",
                        (
                            f"Input validation error: `inputs` must have less than "
                            f"{self.max_input_length} tokens. Given: {tokens}"
                        ),
                    )
                )
        return sequences, batch, truncate, raw_scores

    def predictions(self, labels, sequences, batch, truncate, raw_scores):
        """The answer to a valid request: one flat list, or one list per batch item."""
        answers = []
        for sequence in sequences:
            text = " ".join(sequence)
            if truncate:
                text = " ".join(text.split()[: self.max_input_length])
            ranking = scoring.rank(labels, text, "none" if raw_scores else None)
            # TEI writes the score first.
            answers.append([{"score": item["score"], "label": item["label"]} for item in ranking])
        return json_answer(200, answers if batch else answers[0])


def _data_error(detail):
    """The answer of TEI's JSON extractor (axum) to JSON of the wrong shape: 422, plain text."""
    return plain_answer(
        422, f"Failed to deserialize the JSON body into the target type: inputs: {detail}"
    )


def _sequences(inputs):
    """TEI's reading of ``inputs``: ``(list of sequences, is it a batch)``."""
    if isinstance(inputs, str):
        return [(inputs,)], False
    if not isinstance(inputs, list) or not inputs:
        raise Refused(_data_error(f"invalid length 0, expected {_EXPECTING}"))
    if isinstance(inputs[0], str):
        # Not a batch: one string, or a pair; a third string is refused.
        if len(inputs) > 2 or not all(isinstance(item, str) for item in inputs):
            raise Refused(_data_error(f"invalid length {len(inputs)}, expected {_EXPECTING}"))
        return [tuple(inputs)], False
    sequences = []
    for item in inputs:
        if (
            not isinstance(item, list)
            or len(item) not in (1, 2)
            or not all(isinstance(text, str) for text in item)
        ):
            raise Refused(_data_error(f"invalid batch item, expected {_EXPECTING}"))
        sequences.append(tuple(item))
    return sequences, True
