"""Build a tiny random-weight vision-language model to try ask, summarize and extract without a download.

The model is the one the tests use (tests/tinymodels.py): a real Qwen3-VL (or Qwen2.5-VL, InternVL,
Idefics3) architecture with a few layers of random weights, saved the way a downloaded model is, so it
goes through exactly the code a real model takes. It answers nonsense, quickly; everything around the
answer (routing, evidence, resolution, records) is real. Run from the repository root:

    python3 samples/make_tiny_model.py /tmp/tiny-model
    docvision ask samples/report.pdf "what was East's Q4 revenue?" --model /tmp/tiny-model --json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where to save the model")
    parser.add_argument("--family", default="qwen3_vl", choices=("qwen2_5_vl", "qwen3_vl", "internvl", "idefics3"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.tinymodels import build_tiny_model

    path = build_tiny_model(args.family, args.folder)
    print(f"a tiny random-weight {args.family} model is in {path}; try:\n"
          f"  docvision ask samples/report.pdf \"what was East's Q4 revenue?\" --model {path}")


if __name__ == "__main__":
    main()
