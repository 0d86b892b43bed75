"""ssmoe: self-supervised mixture of experts for super-resolution of quantitative MRI.

An experiment-tracking platform around MLflow and Optuna; see README.md and
docs/ARCHITECTURE.md.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
