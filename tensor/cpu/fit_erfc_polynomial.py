#!/usr/bin/env python3
"""Fits the polynomial of tensor/cpu/erfc_polynomial.hpp and prints its coefficients.

The fast gelu kernels write erfc(z) / 2 = t Q(t) exp(-z^2) with t = 1 / (1 + z / 2), so
Q(t) = erfcx(z) / (2 t), a smooth function of t. Only z in [0, 10] matters (beyond, erfc(z) / 2
underflows float32), that is t in [1/6, 1]. The fit minimises the largest relative error
(Lawson's reweighted least squares) and rounds the coefficients to float32 one at a time, the
highest degree first, refitting the rest after each rounding so that the lower ones absorb it.

Run with numpy and scipy (a developer's tool: building and testing loupe need no Python).
"""
import numpy as np
from scipy.special import erfcx

DEGREE = 9
T_MIN = 1.0 / 6.0  # t at z = 10


def target(t):
    z = 2.0 * (1.0 - t) / t
    return erfcx(z) / (2.0 * t)


def minimax_relative(columns, rhs, scale, iterations=60):
    weights = 1.0 / scale
    best_err, best = np.inf, None
    for _ in range(iterations):
        c, *_ = np.linalg.lstsq(columns * weights[:, None], rhs * weights, rcond=None)
        err = np.abs(columns @ c - rhs) / scale
        if err.max() < best_err:
            best_err, best = err.max(), c
        weights = weights * (1.0 + 3.0 * err / err.max())
        weights /= weights.max()
    return best


def main():
    n = 6000
    t = np.cos(np.pi * (np.arange(n) + 0.5) / n) * (1.0 - T_MIN) / 2.0 + (1.0 + T_MIN) / 2.0
    t = np.concatenate([t, [T_MIN, 1.0]])
    y = target(t)
    powers = np.vander(t, DEGREE + 1, increasing=True)
    coefficients = [0.0] * (DEGREE + 1)
    rest = y.copy()
    free = list(range(DEGREE + 1))
    for k in reversed(range(DEGREE + 1)):
        c = minimax_relative(powers[:, free], rest, y)
        coefficients[k] = float(np.float32(c[free.index(k)]))
        rest = rest - coefficients[k] * powers[:, k]
        free.remove(k)
    # The error as the kernels see it: t rounded to float32, Horner's scheme in float32.
    t32 = t.astype(np.float32)
    q = np.full_like(t32, np.float32(coefficients[DEGREE]))
    for k in reversed(range(DEGREE)):
        q = (q * t32 + np.float32(coefficients[k])).astype(np.float32)
    truth = target(t32.astype(np.float64))
    print(f"// largest relative error, float32 Horner: {np.abs(q / truth - 1.0).max():.2e}")
    print("inline constexpr float kHalfErfcxOverT[10] = {")
    print(",\n".join(f"    {c:.9g}f" for c in coefficients))
    print("};")


if __name__ == "__main__":
    main()
