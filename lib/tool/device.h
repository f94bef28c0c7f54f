/*
 * device: the backend a tool runs on, chosen by name (--device).
 *   cpu      the CPU backend (always built)
 *   cuda     the CUDA backend on GPU 0; cuda:N on GPU N.  An error when it is
 *            not available (no GPU, no CUDA libraries, a build without nvcc)
 *   auto     cuda when its backend loads and a GPU is visible, else cpu
 *   NULL     (no --device given) $AGING_DEVICE when set, else auto; so a
 *            test suite can pin every tool to one backend
 *
 * The CUDA backend is a shared object (build/libaging-cuda.so, installed as
 * PREFIX/lib/aging/libaging-cuda.so) loaded on demand, so every tool runs on
 * machines with no GPU and no CUDA libraries.  It is looked for at
 * $AGING_CUDA_LIB, then beside the executable: ../build/, ../ and
 * ../lib/aging/ relative to its directory.
 */
#pragma once

#include "backend/backend.h"

/* 1 if name is one of the names above (whether or not it is available). */
int device_known(const char *name);
/* Open the backend (name may be NULL, see above); NULL with err_msg() when
 * it is not available here. */
backend_t device_open(const char *name);
/* device_open, then backend_set_precision(p); NULL + err_msg() on failure.
 * bf16 on a CPU without bf16 units (or with AGING_CPU_BF16=0) is emulated,
 * slowly, and the first such call of a process says so on stderr. */
backend_t device_open_precision(const char *name, enum backend_precision p);

/* A --precision argument: fp32, bf16, fp16, or auto (*is_auto = 1, *p
 * left alone); -1 on anything else. */
int device_precision_arg(const char *arg, enum backend_precision *p, int *is_auto);
/* What --precision auto means for inference (translate, serve) on be: bf16
 * on a GPU; fp32 on the CPU, even one with bf16 units (lib/cpu/cpu-dnnl.h):
 * there bf16 is 1.5x faster but moved pixels of the shipped model's outputs
 * by up to 3/255 on the UTKFace test faces (1/255 was the budget; 96% of the
 * pixels are equal, 555 of 15.5 million are off by more than 1). */
enum backend_precision device_inference_precision(backend_t be);
