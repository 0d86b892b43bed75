"""Optuna studies over K, segmenter and learning rate (`ssmoe tune`)."""
