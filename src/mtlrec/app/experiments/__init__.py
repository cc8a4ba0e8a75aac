"""Experiments over many runs: MTL gain against single-task baselines over seeds, paper reproductions.

``compare`` trains a multi-task config and its single-task baseline over N seeds and reports the MTL
gain with intervals; ``census`` reproduces the census-income protocol of the MMoE paper. Both sit at
the top of the stack, beside ``api``: they read configs and train through ``mtlrec.app.api``.
``mmoe_synthetic`` reproduces the MMoE paper's synthetic experiment (Figure 4) without configs: it
builds the architectures from the registry and trains many runs at once (``torch.func.vmap``). Nothing is
imported here so that the command-line parser can load ``experiments.cli`` without torch.
"""
