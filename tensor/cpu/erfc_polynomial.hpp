// The polynomial behind the fast kernels' normal CDF (gelu): for z >= 0 and t = 1 / (1 + z / 2),
//
//   erfc(z) / 2 = t Q(t) exp(-z^2),   Q(t) = erfcx(z) / (2 t) = sum_k kHalfErfcxOverT[k] t^k.
//
// erfcx(z) = exp(z^2) erfc(z) is smooth and slowly varying, and in the variable t the whole range
// z in [0, 10] (t in [1/6, 1]; beyond, erfc(z) / 2 underflows float32) needs only degree 9.
// Writing the exp apart from the polynomial, rather than as one exp(P(t) - z^2) (Numerical
// Recipes' erfcc), lets the CPU work on exp(-z^2) and on the division and polynomial at the same
// time: the kernel is bound by its longest dependency chain, and this halves it (gelu 1.7x faster).
//
// Made by fit_erfc_polynomial.py (beside this file): largest relative error 1.42e-7 evaluated in
// float32 by Horner's scheme at float32 t.
#pragma once

namespace loupe::cpu::fast {

inline constexpr float kHalfErfcxOverT[10] = {
    0.141032249f,   0.141428515f, 0.119322509f, 0.112770498f,  -0.049157545f,
    0.210634664f,  -0.335008115f, 0.214461744f, -0.0616262518f, 0.00614172919f,
};

}  // namespace loupe::cpu::fast
