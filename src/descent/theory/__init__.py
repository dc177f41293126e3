"""Closed-form predictions the experiments and tests check against (see REFERENCE.md).

Submodules: ``quadratic`` (stability edges, optimal rates), ``saddle`` (escape times),
``escape`` (Kramers rates, mean first-passage times, Boltzmann densities), ``noise`` (SGD temperature),
``flows`` (gradient flow, its Euler error equation, Newton with friction, integrated to tight tolerance),
``signal`` (mean-field signal propagation in deep random networks: the variance map, its fixed point and
the per-layer gradient factor chi).
"""
