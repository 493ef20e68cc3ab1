"""Benchmarks: derivative engines against autograd, pykan and MLPs (``kanphys bench``)."""
