"""steerlib: metrics and training utilities behind *Steering How Deep Neural Networks Generalize*."""
__version__ = "0.1.0"
