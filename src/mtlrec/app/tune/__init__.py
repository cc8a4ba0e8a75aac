"""``mtlrec tune``: hyper-parameter search with Optuna over a space declared in the config (``tune``).

Needs the optional ``tune`` extra (optuna, scikit-learn for fANOVA importance, matplotlib).
"""
