"""The answer ranker: logistic models fitted on the train split, kept as data.

Three small models, each a weighted sum of standardised features through a logistic function,
so every weight can be read and every probability is calibrated on questions the model has seen
only in training:

- ``sentence``: P(this sentence states the answer), over ``rag.features.SENTENCE_FEATURES``;
- ``span``: P(this span is the short answer), over ``rag.spans.SPAN_FEATURES`` plus the
  sentence's probability;
- ``answer``: P(answering with the lead sentence is right), over the lead's probability, its
  margin over the best sentence with another answer, and the question's wanted type; answers
  below ``threshold`` (chosen on the dev split) are given as "closest evidence", not as answers.

Weights live in ``rag/data/ranker.json``, written by ``eval/fit_ranker.py``; nothing here is
tuned by hand. Linear models rather than trees: a few hundred questions do not support more,
inference is a dot product (microseconds, no scikit-learn at run time), and the weights say
what the model learned (docs/EVALUATION.md lists them).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class LinearModel:
    """P(y=1 | x) = sigmoid(bias + sum(w * (x - mean) / scale))."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    def probability(self, x: list[float]) -> float:
        if len(x) != len(self.weights):
            raise ValueError(f"expected {len(self.weights)} features ({', '.join(self.features)}), got {len(x)}")
        z = self.bias + sum(w * (v - m) / s for w, v, m, s in zip(self.weights, x, self.mean, self.scale))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def to_dict(self) -> dict:
        return {"features": list(self.features), "weights": list(self.weights), "bias": self.bias,
                "mean": list(self.mean), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, raw: dict) -> LinearModel:
        n = len(raw["features"])
        if not (len(raw["weights"]) == len(raw["mean"]) == len(raw["scale"]) == n):
            raise ValueError("a linear model needs one weight, mean and scale per feature")
        return cls(tuple(raw["features"]), tuple(float(w) for w in raw["weights"]), float(raw["bias"]),
                   tuple(float(m) for m in raw["mean"]), tuple(float(s) or 1.0 for s in raw["scale"]))


@dataclass(frozen=True)
class Ranker:
    """The three models and the answer threshold."""

    sentence: LinearModel
    span: LinearModel
    answer: LinearModel
    threshold: float

    @classmethod
    def from_dict(cls, raw: dict) -> Ranker:
        return cls(LinearModel.from_dict(raw["sentence"]), LinearModel.from_dict(raw["span"]),
                   LinearModel.from_dict(raw["answer"]), float(raw["threshold"]))

    @classmethod
    def load(cls, path: str | Path) -> Ranker:
        return cls.from_dict(json.loads(Path(path).read_text("utf-8")))


@lru_cache(maxsize=1)
def default_ranker() -> Ranker:
    """The shipped models (``rag/data/ranker.json``)."""
    return Ranker.from_dict(json.loads(resources.files("rag").joinpath("data/ranker.json").read_text("utf-8")))
