"""``python -m app.train``: run the training pipeline and write a versioned artifact."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.pipeline import ACCURACY_FLOOR, DataValidationError, QualityGateError, TrainConfig, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.train", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("artifacts/models"), help="directory of model versions (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--test-size", type=float, default=0.25)
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularization strength")
    parser.add_argument("--accuracy-floor", type=float, default=ACCURACY_FLOOR)
    args = parser.parse_args(argv)
    cfg = TrainConfig(out_dir=args.out, seed=args.seed, test_size=args.test_size, c=args.c, accuracy_floor=args.accuracy_floor)
    try:
        result = run(cfg)
    except (DataValidationError, QualityGateError) as exc:
        print(f"training failed: {exc}", file=sys.stderr)
        return 1
    m = result.metrics
    print(f"model {result.version} → {result.path}")
    print(
        f"held-out accuracy {m['accuracy']:.3f} (floor {cfg.accuracy_floor:.2f}, baseline {m['baseline_accuracy']:.3f}), "
        f"macro F1 {m['f1_macro']:.3f}, log loss {m['log_loss']:.3f}, {m['n_train']} train / {m['n_test']} test rows"
    )
    print(json.dumps({"version": result.version, "path": str(result.path), "accuracy": m["accuracy"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
