"""Run as a child process: embed sentences with a TensorFlow SavedModel (USE v4's signature:
a batch of strings -> (n, 512) floats).

Why a separate process: TensorFlow and PyTorch loaded into one interpreter crash it (a
segmentation fault once a sentence-transformers model runs after TensorFlow was imported,
seen with TensorFlow 2.21 and torch 2.14), so TensorFlow never enters the book's processes.

    python -m lib.stimuli.use_encoder <saved_model_dir> <sentences.json> <out.npy> [batch]
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> None:
    folder, src, out = argv[:3]
    batch = int(argv[3]) if len(argv) > 3 else 256
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    model = tf.saved_model.load(folder)
    with open(src, encoding="utf-8") as fh:
        sentences = json.load(fh)
    parts = [model(tf.constant(sentences[i : i + batch])).numpy() for i in range(0, len(sentences), batch)]
    arr = np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 512), np.float32)
    np.save(out, arr)


if __name__ == "__main__":
    main(sys.argv[1:])
