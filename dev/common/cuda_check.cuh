// CK(call): the dev/ harnesses' check of a CUDA runtime call (print the error and where, exit 1). They are
// standalone nvcc programs, so they do not use wick's WICK_CUDA_CHECK (which throws wick::Error).
#pragma once
#include <cstdio>
#include <cstdlib>

#include <cuda_runtime.h>

#define CK(x)                                                                                     \
  do {                                                                                            \
    cudaError_t e_ = (x);                                                                         \
    if (e_ != cudaSuccess) {                                                                      \
      std::printf("CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e_), __FILE__, __LINE__, #x); \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)
