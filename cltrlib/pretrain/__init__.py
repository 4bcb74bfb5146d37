"""Continual pre-training: corpora we manage, a contamination check, training, and CLTR of our own models."""
