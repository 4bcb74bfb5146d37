"""Paper B: LLM classifiers fine-tuned on English (+0/16/104 Japanese examples), tested on Japanese."""

from cltrlib.transfer.adapters import list_adapters, load_classifier
from cltrlib.transfer.data import BilingualData, Pattern, check_no_leakage, load_bilingual, make_pattern
from cltrlib.transfer.experiment import run_attributions, run_grid
from cltrlib.transfer.modeling import ClassifierConfig, PrefixCache, build_classifier, classifier_logits
from cltrlib.transfer.scores import classification_scores, summarize_over_seeds
from cltrlib.transfer.train import TrainConfig, predict_proba, run_transfer

__all__ = [
    "BilingualData",
    "ClassifierConfig",
    "Pattern",
    "PrefixCache",
    "TrainConfig",
    "build_classifier",
    "check_no_leakage",
    "classification_scores",
    "classifier_logits",
    "list_adapters",
    "load_bilingual",
    "load_classifier",
    "make_pattern",
    "predict_proba",
    "run_attributions",
    "run_grid",
    "run_transfer",
    "summarize_over_seeds",
]
