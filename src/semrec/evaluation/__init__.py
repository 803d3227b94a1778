"""Full-ranking evaluation, ranking metrics and beyond-accuracy measures."""

from semrec.evaluation.evaluate import EvaluationResult, evaluate

__all__ = ["EvaluationResult", "evaluate"]
