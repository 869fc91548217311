#!/usr/bin/env python
"""How many texts a second does the local model backend classify on this CPU?

No weights can be downloaded, so the models are randomly initialised, which costs the same
to run as trained ones of the same shape: the tiny model of the tests (2 layers, hidden 32)
and one of DistilBERT's size (6 layers, hidden 768, a 30,522-token vocabulary, 66 M
parameters), as ``distilbert-base-uncased-finetuned-sst-2-english`` is. Each is saved to a
scratch folder and served by ``django_textclass.backends.local.Backend`` exactly as a worker
does: texts go through ``classify()`` in calls of 1, 8 and 32, after one warm-up call.

    python benchmarks/local_model.py                 # 512 texts per batch size and model
    python benchmarks/local_model.py --quick         # a smoke run for CI, under 30 s
    python benchmarks/local_model.py --threads 2 --texts 1024 --only distilbert

The texts are 8 to 60 words long (seeded): a batch is padded to its longest text, as in
production. ``--threads`` is the backend's THREADS (default 1: two worker processes on two
cores). The figures are for reading, never a pass/fail: machines differ, and a loaded
machine gives lower ones.
"""

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

BATCH_SIZES = (1, 8, 32)
#: DistilBERT's vocabulary size; the words past the test vocabulary are filler tokens.
DISTILBERT_VOCAB = 30_522


def texts(count, words, seed=0):
    """``count`` texts of 8 to 60 words drawn from ``words`` (the same ones every run)."""
    draw = random.Random(seed)
    return [" ".join(draw.choice(words) for _ in range(draw.randint(8, 60))) for _ in range(count)]


def build_distilbert(folder, words, seed=0):
    """A DistilBERT-sized sequence classifier with random weights, saved in ``folder``."""
    import torch
    import transformers

    from tests.backends.local_model import SPECIAL

    folder.mkdir(parents=True)
    filler = [f"w{i:05d}" for i in range(DISTILBERT_VOCAB - len(SPECIAL) - len(words))]
    (folder / "vocab.txt").write_text("\n".join([*SPECIAL, *words, *filler]) + "\n")
    tokenizer = transformers.DistilBertTokenizerFast.from_pretrained(folder, local_files_only=True)
    config = transformers.DistilBertConfig(
        vocab_size=DISTILBERT_VOCAB,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    torch.manual_seed(seed)
    transformers.DistilBertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def measure(backend, sample, batch_size):
    """Texts per second for ``sample`` sent in calls of ``batch_size`` (one warm-up call)."""
    from django_textclass.types import Parameters

    parameters = Parameters()
    backend.classify(sample[:batch_size], parameters, model_id="bench/model")
    started = time.perf_counter()
    for start in range(0, len(sample), batch_size):
        backend.classify(sample[start : start + batch_size], parameters, model_id="bench/model")
    return len(sample) / (time.perf_counter() - started)


def main(argv=None):
    """Build the models, then print texts/s per model and batch size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=512, help="texts per batch size")
    parser.add_argument("--threads", type=int, default=1, help="the backend's THREADS")
    parser.add_argument("--only", choices=["tiny", "distilbert"], help="one model only")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="64 texts on the tiny model, 32 on the DistilBERT-sized one",
    )
    args = parser.parse_args(argv)
    try:
        import torch
        import transformers
    except ImportError as exc:
        sys.exit(
            f"benchmarks/local_model.py needs the local extra ({exc}): "
            "pip install torch==2.13.0 && pip install -e '.[local]'"
        )
    import django

    django.setup()
    transformers.utils.logging.disable_progress_bar()
    from django_textclass.backends.local import Backend, cpu_count
    from tests.backends.local_model import WORDS, build_model

    models = [name for name in ("tiny", "distilbert") if args.only in (None, name)]
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{platform.processor() or platform.machine()}, {cpu_count()} CPU(s), "
        f"THREADS={args.threads}"
    )
    print(f"{'model':<12}{'batch':>6}{'texts':>7}{'texts/s':>10}")
    with tempfile.TemporaryDirectory(prefix="textclass-bench-") as scratch:
        for name in models:
            count = (64 if name == "tiny" else 32) if args.quick else args.texts
            started = time.perf_counter()
            folder = (
                build_model(Path(scratch) / name)
                if name == "tiny"
                else build_distilbert(Path(scratch) / name, WORDS)
            )
            backend = Backend(
                alias=name,
                MODEL_PATH=str(folder),
                THREADS=args.threads,
                BATCH_SIZE=max(BATCH_SIZES),
            )
            backend.model_for("bench/model")
            print(f"{name:<12} built and loaded in {time.perf_counter() - started:.1f} s")
            sample = texts(count, WORDS)
            for batch_size in BATCH_SIZES:
                rate = measure(backend, sample, batch_size)
                print(f"{name:<12}{batch_size:>6}{count:>7}{rate:>10.1f}")
            backend.close()


if __name__ == "__main__":
    main()
