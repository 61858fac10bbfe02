"""Recommendation: Mult-VAE / Mult-DAE collaborative filtering, content-based and hybrid models for
items nobody has clicked yet, the strong-generalisation protocol and ranking metrics. Names load on
first use, so the command line registers ``vaekit recommend`` without importing torch."""

from vaekit.lazy import lazy_names

NAMES = {"ContentRecommender": "vaekit.apps.recommend.content", "Recommender": "vaekit.apps.recommend.estimator",
         "coverage": "vaekit.apps.recommend.metrics", "evaluate_scores": "vaekit.apps.recommend.metrics",
         "ndcg_at_k": "vaekit.apps.recommend.metrics", "recall_at_k": "vaekit.apps.recommend.metrics",
         "strong_split": "vaekit.apps.recommend.splits"}


__getattr__ = lazy_names(__name__, NAMES)


__all__ = list(NAMES)
