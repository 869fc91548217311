"""The model route's bodies: what a request must hold, and how each shape wraps the answer.

The hf-inference router answers one string with ``[[...]]`` (``"nested"``), TEI and most
dedicated endpoints with ``[...]`` (``"flat"``), and a dedicated endpoint's Inference Toolkit
with its best label alone unless ``top_k`` is sent (``"toolkit"``). Standard library only.
"""

from django_textclass.testing import scoring

__all__ = ["SHAPES", "ValidationError", "shape_answer", "validate"]

SHAPES = ("nested", "flat", "toolkit")


class ValidationError(Exception):
    """A body the model route refuses: ``status`` and the JSON ``payload`` it answers."""

    def __init__(self, status, payload):
        super().__init__(status)
        self.status = status
        self.payload = payload


def shape_answer(shape, rankings, one_string, top_k_sent):
    """The JSON answer of ``shape`` for ``rankings`` (one per input text).

    ``"toolkit"``, as the transformers pipeline answers: without ``top_k`` the best label
    alone, ``[{best}]`` for one string and one best object per input for a list; with
    ``top_k`` (``null`` for every label) a string gets its flat ranking and a list one
    ranking per input.
    """
    if shape == "toolkit":
        if not top_k_sent:
            return [ranking[0] for ranking in rankings]
        return rankings[0] if one_string else rankings
    if one_string and shape == "flat":
        return rankings[0]
    return rankings


def validate(body, null_top_k=False):
    """Check a classification body; return ``(inputs, rank() keyword arguments, top_k sent)``.

    ``null_top_k`` accepts ``"top_k": null`` (the Inference Toolkit reads it as every label).
    """
    if body is None:
        raise ValidationError(400, {"error": "the request body is not valid JSON"})
    if not isinstance(body, dict) or "inputs" not in body:
        raise ValidationError(400, {"error": "the body must be a JSON object with `inputs`"})
    inputs = body["inputs"]
    if isinstance(inputs, str):
        if not inputs:
            raise ValidationError(400, {"error": "`inputs` must not be empty"})
    elif isinstance(inputs, list) and inputs:
        if not all(isinstance(item, str) and item for item in inputs):
            message = "each item of `inputs` must be a non-empty string"
            raise ValidationError(400, {"error": message})
    else:
        message = "`inputs` must be a non-empty string or a non-empty list of strings"
        raise ValidationError(400, {"error": message})
    # Parameter errors use the legacy list shape: {"error": ["...: received `x` in `parameters`"]}.
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        message = f"`parameters` must be an object: received `{parameters!r}`"
        raise ValidationError(400, {"error": [message]})
    errors = []
    for key in sorted(set(parameters) - {"function_to_apply", "top_k"}):
        errors.append(f"unknown parameter: received `{key}` in `parameters`")
    function = parameters.get("function_to_apply")
    if "function_to_apply" in parameters and function not in scoring.FUNCTIONS:
        errors.append(
            f"`function_to_apply` must be one of {', '.join(scoring.FUNCTIONS)}: "
            f"received `{function!r}` in `parameters`"
        )
    top_k = parameters.get("top_k")
    valid_null = null_top_k and top_k is None
    if "top_k" in parameters and not valid_null and (type(top_k) is not int or top_k < 1):
        errors.append(f"`top_k` must be a positive integer: received `{top_k!r}` in `parameters`")
    if errors:
        raise ValidationError(400, {"error": errors})
    return inputs, {"function_to_apply": function, "top_k": top_k}, "top_k" in parameters
