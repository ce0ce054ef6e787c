#pragma once
// <immintrin.h> for the AVX-512 translation units, included first in each.
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which
// -Wuninitialized reports at every inlined use (GCC PR 105593).

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
