"""Minimal stand-in for `tensorflow`, used only by test/test_hear.py to run hearvalidator on a PyTorch model.

Provides the two names hearvalidator 2021.0.2 touches on its PyTorch path: `Module` (for an isinstance check that
must be False for our model) and `device` (only reached for TensorFlow models, so it refuses to run).
"""


class Module:
    """Never instantiated by MaskSpec: a torch model is not an instance, so the validator takes the torch path."""


def device(name):
    raise RuntimeError(f"stand-in tensorflow (test/hear_stubs): no TensorFlow here, cannot place on {name!r}")


def __getattr__(name):
    # Any other attribute means the validator took a TensorFlow path: fail loudly instead of faking it.
    raise AttributeError(f"stand-in tensorflow (test/hear_stubs) has no {name!r}; only Module and device exist")
