/*
 * device: the backend a tool runs on, chosen by name (--device).
 *   cpu   the CPU backend (always built)
 *   cuda  the CUDA backend (when the build found nvcc; an error otherwise)
 *   auto  cuda when it is built and a GPU is visible, else cpu
 */
#pragma once

#include "backend.h"

/* 1 if name is one of the names above (whether or not it is available). */
int device_known(const char *name);
/* Open the backend; NULL with err_msg() when it is not available here. */
backend_t device_open(const char *name);
