"""A small training pipeline: load data -> split -> train -> evaluate.

The model is ordinary least squares with numpy, so the example needs no ML
framework. Run it twice: the second run reuses every step from the cache.

    python examples/training_pipeline.py [--noise 0.1] [--no-cache] [-q]
"""

from __future__ import annotations

import argparse
from typing import Annotated, Tuple

import numpy as np
import pandas as pd

from artifactfs import pipeline, step


@step
def load_data(n_rows: int = 500, noise: float = 0.1, seed: int = 7) -> Annotated[pd.DataFrame, "raw_data"]:
    """A synthetic regression table: y = 3*x1 - 2*x2 + 0.5 + noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, 2))
    y = 3 * x[:, 0] - 2 * x[:, 1] + 0.5 + rng.normal(scale=noise, size=n_rows)
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": y})


@step
def split(
    data: pd.DataFrame, test_fraction: float = 0.2
) -> Tuple[Annotated[pd.DataFrame, "train_data"], Annotated[pd.DataFrame, "test_data"]]:
    cut = int(len(data) * (1 - test_fraction))
    return data.iloc[:cut].reset_index(drop=True), data.iloc[cut:].reset_index(drop=True)


@step
def train(train_data: pd.DataFrame) -> Annotated[np.ndarray, "model_weights"]:
    """Least squares with an intercept column."""
    features = np.column_stack([train_data[["x1", "x2"]].to_numpy(), np.ones(len(train_data))])
    weights, *_ = np.linalg.lstsq(features, train_data["y"].to_numpy(), rcond=None)
    return weights


@step
def evaluate(weights: np.ndarray, test_data: pd.DataFrame) -> Annotated[dict, "metrics"]:
    features = np.column_stack([test_data[["x1", "x2"]].to_numpy(), np.ones(len(test_data))])
    residual = features @ weights - test_data["y"].to_numpy()
    return {"rmse": float(np.sqrt(np.mean(residual**2))), "n_test": int(len(test_data))}


@pipeline
def training_pipeline(noise: float = 0.1) -> None:
    data = load_data(noise=noise)
    train_data, test_data = split(data)
    weights = train(train_data)
    evaluate(weights, test_data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args()
    run = training_pipeline.with_options(enable_cache=not args.no_cache, quiet=args.quiet)(noise=args.noise)
    metrics = run.steps["evaluate"].outputs["metrics"].load()
    cached = [name for name, s in run.steps.items() if s.is_cached]
    print(f"run {run.name}: {run.status}; rmse={metrics['rmse']:.4f}; cached steps: {', '.join(cached) or 'none'}")


if __name__ == "__main__":
    main()
