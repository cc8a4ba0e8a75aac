"""Published census-income results of the MMoE paper, the reference of ``mtlrec reproduce census``.

Ma, Zhao, Yi, Chen, Hong, Chi, "Modeling Task Relationships in Multi-task Learning with Multi-gate
Mixture-of-Experts", KDD 2018, doi:10.1145/3219819.3220007, Section 6.3, Tables 1 and 2 (as
transcribed in the project's PUBLISHED.md). Each method was tuned, then trained 400 times: "mean" is
the mean test AUC of the 400 runs; "best" is the run with the best main-task AUC, and the auxiliary
task's "best" is that same run's auxiliary AUC. Keys are mtlrec architecture names (the paper's
L2-Constrained is ``l2_soft_sharing``). CGC and PLE are not in the MMoE paper.
"""

from __future__ import annotations

from typing import NamedTuple


class PaperAuc(NamedTuple):
    """One method's AUC on one task: the mean over 400 runs and the value in the best main-task run."""

    mean: float
    best: float


# group → (main task, auxiliary task), with mtlrec's task names of configs/census[/group2]
CENSUS_TASKS: dict[int, tuple[str, str]] = {1: ("income", "never_married"), 2: ("education", "never_married")}

# group → architecture → task → PaperAuc
MMOE_CENSUS: dict[int, dict[str, dict[str, PaperAuc]]] = {
    1: {  # Table 1: income (main), never married (auxiliary)
        "single_task": {"income": PaperAuc(0.9337, 0.9398), "never_married": PaperAuc(0.9922, 0.9933)},
        "shared_bottom": {"income": PaperAuc(0.9295, 0.9361), "never_married": PaperAuc(0.9921, 0.9915)},
        "l2_soft_sharing": {"income": PaperAuc(0.9359, 0.9389), "never_married": PaperAuc(0.9918, 0.9922)},
        "cross_stitch": {"income": PaperAuc(0.9361, 0.9406), "never_married": PaperAuc(0.9922, 0.9917)},
        "omoe": {"income": PaperAuc(0.9319, 0.9387), "never_married": PaperAuc(0.9923, 0.9928)},
        "mmoe": {"income": PaperAuc(0.9359, 0.9410), "never_married": PaperAuc(0.9927, 0.9926)},
    },
    2: {  # Table 2: education >= college (main), never married (auxiliary)
        "single_task": {"education": PaperAuc(0.8792, 0.8843), "never_married": PaperAuc(0.9922, 0.9933)},
        "shared_bottom": {"education": PaperAuc(0.8813, 0.8836), "never_married": PaperAuc(0.9917, 0.9927)},
        "l2_soft_sharing": {"education": PaperAuc(0.8823, 0.8855), "never_married": PaperAuc(0.9918, 0.9923)},
        "cross_stitch": {"education": PaperAuc(0.8819, 0.8855), "never_married": PaperAuc(0.9921, 0.9919)},
        "omoe": {"education": PaperAuc(0.8813, 0.8852), "never_married": PaperAuc(0.9912, 0.9915)},
        "mmoe": {"education": PaperAuc(0.8826, 0.8860), "never_married": PaperAuc(0.9924, 0.9932)},
    },
}

# |Pearson correlation| of the two labels reported by the paper (Section 6.3, over 10,000 random samples)
MMOE_LABEL_CORRELATION: dict[int, float] = {1: 0.1768, 2: 0.2373}
