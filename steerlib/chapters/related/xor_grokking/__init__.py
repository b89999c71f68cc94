"""Chapter "Fitting before generalising: benign overfitting and grokking on XOR clusters" (Xu et al. 2024; study
R6).

Part III's pre-memorization accuracy assumes that being right before memorising signals generalisation. On XOR
cluster data with flipped labels, a two-layer ReLU network trained by gradient descent fits every training label,
the flipped ones included, after one step, with test accuracy near chance, and generalises later while still
fitting the flipped labels. The claims test those two phases at the paper's step size (R6a, R6b), the feature
learning behind them (R6c), and a failure of pre-memorization accuracy registered before any run (R6d), at two step
sizes; a grid of dimensions and signal strengths shows where the phases appear at this scale.

``experiment`` trains and records, ``analysis`` turns the records into the claims and tables, ``figures`` draws them.
"""

from steerlib.chapters.related.xor_grokking.analysis import SPECS, claims, extra, grid_table, premem_table
from steerlib.chapters.related.xor_grokking.experiment import PROFILES, Results, Settings, checkpoints, jobs, run
from steerlib.core.chapter import Chapter

CHAPTER = Chapter.define(
    __name__,
    name="xor-grokking",
    part="related",
    title="Fitting before generalising: benign overfitting and grokking on XOR clusters",
)
