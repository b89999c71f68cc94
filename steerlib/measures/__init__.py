"""Metrics and statistics: pure functions of predictions, labels and tables.

- :mod:`~steerlib.measures.ocs`: closed-form optimal constant solutions
- :mod:`~steerlib.measures.divergences`: KL, entropy, squared distance
- :mod:`~steerlib.measures.statistics`: rank correlation, bootstrap intervals (clustered), prediction intervals over
  independent replicates
- :mod:`~steerlib.measures.ood`: the OOD score (a low-capacity discriminator on random ReLU features)
- :mod:`~steerlib.measures.decisions`: reward tables, policies, abstain ratio, mean reward
- :mod:`~steerlib.measures.premem`: pre-memorization accuracy, R², calibration of p, prior metrics
- :mod:`~steerlib.measures.familiarity`: appendix B.1's familiarity metrics
- :mod:`~steerlib.measures.homogeneous`: the theory's bias-free ReLU-net simulation
- :mod:`~steerlib.measures.coverage`: the unbiased pass@k, the modal-answer share
- :mod:`~steerlib.measures.curation`: IFD, bin means, shuffled noise floors, the sample-efficiency ratio
"""
