# aging-cyclegan: hand-written Makefile.
#   make            build lib/ into build/libaging.a and every tools/*.c into bin/
#   make test       unit tests + bats tests, ends with "N passed, N failed"
#   make asan       the same tests under AddressSanitizer + UBSan (separate build dir)
#   make fuzz       the libFuzzer harnesses of tests/fuzz/, FUZZ_TIME seconds each
#   make lint       the floors of lib/ (scripts/check-layers.sh), cppcheck + clang-tidy,
#                   warnings are errors
#   make format     clang-format -i over lib/ tools/ tests/unit/
#   make deps       install every Debian package the build and tests need
#   make install    PREFIX=/usr/local by default (tools, man pages, the shipped model)
#   make demo       the shipped model ages and de-ages faces (runtime packages only)
#   make demo-train a short training run end to end
#   make test-gpu   on a machine with a GPU: the CUDA backend against the CPU one
# Sources are discovered by wildcard: a new lib/DIR/foo.c, tools/bar.c,
# tests/unit/test_baz.c or tests/fuzz/fuzz_qux.c needs no edit here.

PREFIX   ?= /usr/local
CC       ?= cc
BUILD    ?= build
BIN      ?= bin
OPT      ?= -O2 -march=x86-64-v2 -g
SAN      ?=
PKGS     := msgpack libzmq libpng libjpeg openblas lapacke libcjson libmicrohttpd libzip

CPPFLAGS += -Ilib -D_GNU_SOURCE $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
CFLAGS   += -std=c11 $(OPT) -Wall -Wextra -fopenmp $(SAN) $(if $(WERROR),-Werror)
LDFLAGS  += -fopenmp -rdynamic $(SAN)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -ldnnl -lm -lpthread -ldl

# MPI is detected, not required: with OpenMPI's pkg-config file (Debian
# libopenmpi-dev), lib/dist/dist.c gets HAVE_MPI and cyclegan-step links libmpi
# for `mpirun -np N cyclegan-step` (data parallel, docs/distributed.md);
# without it, or with MPI=0, every job has one rank.  Only dist.o and the
# trainer see MPI, so no other tool depends on libmpi.
MPI       ?= $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1 || echo 0)
MPI_CFLAGS := $(if $(filter 1,$(MPI)),-DHAVE_MPI $(shell pkg-config --cflags ompi-c))
MPI_LIBS   := $(if $(filter 1,$(MPI)),$(shell pkg-config --libs ompi-c))
$(BUILD)/lib/dist/dist.o: CPPFLAGS += $(MPI_CFLAGS)
$(BIN)/cyclegan-step $(BUILD)/tests/test_dist: LDLIBS += $(MPI_LIBS)

LIB_SRC   := $(filter-out lib/nccl/%,$(wildcard lib/*/*.c))
LIB_HDR   := $(filter-out lib/cuda/% lib/nccl/%,$(wildcard lib/*/*.h))
LIB_OBJ   := $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o)
TOOL_SRC  := $(wildcard tools/*.c)
TOOLS     := $(TOOL_SRC:tools/%.c=$(BIN)/%)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNITS     := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
GPU_TEST_SRC := $(wildcard tests/gpu/test_*.c)
GPU_TESTS    := $(GPU_TEST_SRC:tests/gpu/%.c=$(BUILD)/gpu-tests/%)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAYS := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/%)
FUZZERS   := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_TIME ?= 60
FUZZ_SAN  ?= address,undefined
FUZZ_BUILD ?= build-fuzz
BENCH_SRC := $(wildcard bench/*.c)
BENCHES   := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
LIBA      := $(BUILD)/libaging.a
MODEL     := models/utkface-128.safetensors

# nvcc is detected, not required: the CPU build is always complete.  With
# nvcc, lib/cuda/*.cu become build/libaging-cuda.so, which lib/tool/device.c loads
# at run time (--device cuda|auto), so the tools themselves never link CUDA.
# CUDA=0 skips it (the sanitizer build does: ASan and the CUDA runtime clash).
comma     := ,
NVCC      := $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA      ?= $(if $(NVCC),1,0)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
NVCCFLAGS := -std=c++20 -O3 -g -lineinfo $(CUDA_ARCH) -Ilib -Ilib/cuda \
             -Xcompiler -fPIC,-fvisibility=hidden,-Wall,-Wextra$(if $(WERROR),$(comma)-Werror) \
             $(if $(WERROR),-Werror all-warnings)
CU_SRC    := $(wildcard lib/cuda/*.cu)
CU_OBJ    := $(CU_SRC:lib/cuda/%.cu=$(BUILD)/cuda/%.o)
CUDA_SO   := $(BUILD)/libaging-cuda.so
CU_TESTS  := $(patsubst tests/cuda/%.cu,$(BUILD)/tests/%,$(wildcard tests/cuda/test_*.cu))

.PHONY: all tools units fuzzers test asan fuzz lint format deps install clean bench demo demo-train check-deps cuda test-gpu
all: check-deps tools units $(GPU_TESTS) $(BENCHES) $(if $(filter 1,$(CUDA)),cuda)

check-deps:
	@pkg-config --exists $(PKGS) && echo '#include <dnnl.h>' | $(CC) -E - >/dev/null 2>&1 || \
	  { echo "make: missing libraries; run 'make deps' (needs apt)" >&2; exit 1; }

tools: $(TOOLS)
units: $(UNITS) $(FUZZ_REPLAYS)

# Header dependencies are the compiler's (-MMD -MP): each object gets a .d
# file beside it listing the headers it read, included at the end, so
# changing a header rebuilds the objects that include it and nothing else.
# The .d names its object as $(BUILD)/lib/DIR/x.o, expanded when it is read,
# so a make given BUILD as another spelling of the same folder (an absolute
# path, as tests/model.bats does) still sees the headers.  An object without
# its .d (built before this rule) is rebuilt once, through the empty rule
# for .d.  Programs relink whenever $(LIBA) changes.
$(BUILD)/lib/%.o: lib/%.c $(BUILD)/lib/%.d | $(BUILD)/lib
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -MT '$$(BUILD)/lib/$*.o' -c -o $@ $<
	@touch $@

$(LIB_OBJ:.o=.d): ;

$(LIBA): $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

# Every tool links lib/tool/omp-env.o by name: nothing calls it, its start-up
# hook sets the OpenMP wait policy and AGING_THREADS before libgomp reads them.
OMP_ENV_OBJ := $(BUILD)/lib/tool/omp-env.o
$(BIN)/%: tools/%.c $(LIBA) | $(BIN)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(OMP_ENV_OBJ) $(LIBA) $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/check.h $(LIBA) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) -o $@ $< $(LIBA) $(LDFLAGS) $(LDLIBS)

# Each fuzz harness also builds with the normal compiler and a plain main
# (tests/fuzz/replay.c) that runs given inputs once: tests/fuzz.bats replays
# the seed corpus and the committed crashes through it.  (Its rule wins over
# the one above for fuzz_* names: make prefers the shorter stem.)
$(BUILD)/tests/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.c tests/fuzz/replay.c tests/fuzz/fuzz.h $(LIBA) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) -Itests/fuzz $(CFLAGS) -o $@ $< tests/fuzz/fuzz.c tests/fuzz/replay.c $(LIBA) $(LDFLAGS) $(LDLIBS)

# The libFuzzer builds (make fuzz: clang, the library instrumented too).
fuzzers: $(FUZZERS)
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.c tests/fuzz/fuzz.h $(LIBA) | $(BUILD)/fuzz
	$(CC) $(CPPFLAGS) -Itests/fuzz $(CFLAGS) -fsanitize=fuzzer -o $@ $< tests/fuzz/fuzz.c $(LIBA) $(LDFLAGS) $(LDLIBS)

# The device tests (make test-gpu) build everywhere, so they always compile,
# but live apart from $(BUILD)/tests, which `make test` runs.
$(BUILD)/gpu-tests/%: tests/gpu/%.c tests/gpu/gpu-check.h tests/unit/check.h $(LIBA) | $(BUILD)/gpu-tests
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) -o $@ $< $(LIBA) $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c bench/bench.h $(LIBA) | $(BUILD)/bench
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIBA) $(LDFLAGS) $(LDLIBS)

$(BUILD)/lib $(BUILD)/tests $(BUILD)/fuzz $(BUILD)/gpu-tests $(BUILD)/bench $(BUILD)/cuda $(BIN):
	mkdir -p $@

# The CUDA backend (-rdynamic above lets it call err_set in the executable)
# and the host-only checks of its per-element math (tests/cuda), which link
# the CPU backend to compare against.
cuda: $(CUDA_SO) $(CU_TESTS)

$(BUILD)/cuda/%.o: lib/cuda/%.cu $(wildcard lib/cuda/*.h lib/cuda/*.cuh) $(LIB_HDR) | $(BUILD)/cuda
	$(NVCC) $(NVCCFLAGS) -c -o $@ $<

# The NCCL allreduce of data-parallel training on GPUs (lib/nccl/, loaded
# by lib/dist/dist.c when the backend is CUDA): built when CUDA, MPI and nccl.h
# are all there; NCCL=0 skips it.
NCCL      ?= $(if $(and $(filter 1,$(CUDA)),$(filter 1,$(MPI)),$(wildcard $(CUDA_HOME)/include/nccl.h)),1,0)
NCCL_SO   := $(BUILD)/libaging-nccl.so
cuda: $(if $(filter 1,$(NCCL)),$(NCCL_SO))
$(NCCL_SO): lib/nccl/dist-nccl.c | $(BUILD)/lib
	$(CC) -std=c11 $(OPT) -Wall -Wextra -fPIC -fvisibility=hidden -shared -I$(CUDA_HOME)/include -o $@ $< \
	  -L$(CUDA_HOME)/lib64 -lnccl -lcudart -Wl,-rpath,$(CUDA_HOME)/lib64

$(CUDA_SO): $(CU_OBJ)
	$(NVCC) -shared -o $@ $^ -L$(CUDA_HOME)/lib64 -lcudnn -lcudart -Xlinker -rpath,$(CUDA_HOME)/lib64

$(BUILD)/tests/%: tests/cuda/%.cu $(wildcard lib/cuda/*.cuh) $(LIB_HDR) $(LIBA) | $(BUILD)/tests
	$(NVCC) -std=c++20 -O2 -Ilib -Ilib/cuda -Xcompiler -fopenmp,-Wall,-Wextra$(if $(WERROR),$(comma)-Werror) \
	  $(if $(WERROR),-Werror all-warnings) -o $@ $< $(LIBA) $(LDLIBS)

# dlib is detected, not required: with it (libdlib-dev), lib/face/face-dlib.cpp
# becomes build/libaging-face.so, which lib/face/face.c loads at run time for
# translate --face; without it (or DLIB=0) the tools say what is missing.
DLIB    ?= $(shell pkg-config --exists dlib-1 2>/dev/null && echo 1 || echo 0)
FACE_SO := $(BUILD)/libaging-face.so
tools: $(if $(filter 1,$(DLIB)),$(FACE_SO))
$(FACE_SO): lib/face/face-dlib.cpp | $(BUILD)/lib
	$(CXX) -std=c++17 -O2 -g -fPIC -fvisibility=hidden -Wall -Wextra $(if $(WERROR),-Werror) -shared \
	  -o $@ $< $(shell pkg-config --cflags --libs dlib-1 2>/dev/null)

# On a GPU machine: every CUDA op against the CPU backend, whole training
# steps, translate and train.sh on the GPU (one short script, tests/gpu/run.sh).
test-gpu:
	@$(MAKE) --no-print-directory -j$$(nproc) all
	@BIN_DIR=$(abspath $(BIN)) UNIT_DIR=$(abspath $(BUILD)/tests) GPU_TEST_DIR=$(abspath $(BUILD)/gpu-tests) \
	  bash tests/gpu/run.sh

# `make test` is the one command a fresh Debian 12 machine needs: it installs
# what is missing, builds, then runs every test.
test:
	@bash scripts/deps.sh
	@$(MAKE) --no-print-directory -j2 all
	@BIN_DIR=$(abspath $(BIN)) UNIT_DIR=$(abspath $(BUILD)/tests) bash tests/run.sh

# Sanitizer build in its own directories so it never mixes objects with the
# normal build; the test runner is the same.
asan:
	@bash scripts/deps.sh
	$(MAKE) -j2 BUILD=build-asan BIN=build-asan/bin CUDA=0 OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" all
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  BIN_DIR=$(abspath build-asan/bin) UNIT_DIR=$(abspath build-asan/tests) \
	  AGING_SANITIZED=1 bash tests/run.sh

# The libFuzzer harnesses, FUZZ_TIME seconds each on their seed corpus, one
# after another, with the library built by clang with coverage, ASan and
# UBSan in its own directories.  New inputs collect in build-fuzz/corpus/; a
# crash fails the target and its input is left in build-fuzz/crashes/
# (tests/fuzz/README.md says how to turn it into a regression test).
# FUZZ_SAN=undefined FUZZ_BUILD=build-fuzz/ub: without ASan, several times
# faster where inputs make large allocations (the stream reader's 1 MB buffer).
fuzz:
	@bash scripts/deps.sh
	$(MAKE) -j2 BUILD=$(FUZZ_BUILD) BIN=$(FUZZ_BUILD)/bin CUDA=0 CC=clang OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=fuzzer-no-link,$(FUZZ_SAN) -fno-sanitize-recover=all" fuzzers
	bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_TIME)

lint:
	@bash scripts/deps.sh
	bash scripts/check-layers.sh
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr --suppress=missingIncludeSystem -Ilib -Itests/fuzz lib tools tests/unit tests/fuzz
	clang-tidy --quiet --warnings-as-errors='*' $(LIB_SRC) $(TOOL_SRC) $(wildcard tests/fuzz/*.c) -- $(CPPFLAGS) \
	  -Itests/fuzz -std=c11 -fopenmp

format:
	clang-format -i $(LIB_SRC) $(LIB_HDR) tools/*.c tests/unit/*.c tests/unit/*.h tests/fuzz/*.c tests/fuzz/*.h \
	  $(BENCH_SRC) bench/bench.h \
	  $(wildcard lib/cuda/*.cu lib/cuda/*.h lib/cuda/*.cuh tests/cuda/*.cu tests/gpu/*.c)

deps:
	bash scripts/deps.sh

bench:
	@bash scripts/deps.sh
	@$(MAKE) --no-print-directory -j2 all
	bash bench/run.sh

# The shipped model on a portrait (and UTKFace test faces when UTKFACE_DIR is
# set): only what the tools need to build and run is installed.
demo:
	@bash scripts/deps.sh --runtime
	@$(MAKE) --no-print-directory -j2 tools
	@bash pipelines/demo.sh

# A short training run end to end (a toy model, minutes on a CPU).
demo-train:
	@bash scripts/deps.sh
	@$(MAKE) --no-print-directory -j2 all
	bash pipelines/demo-train.sh

# PREFIX/bin: the tools; PREFIX/share/aging-cyclegan: the shipped model, its
# card (models/README.md and its pictures), the pipelines (they find the
# tools in PREFIX/bin) and the demo's portrait.
SHARE := $(DESTDIR)$(PREFIX)/share/aging-cyclegan
install: tools $(if $(filter 1,$(CUDA)),cuda) $(if $(filter 1,$(DLIB)),$(FACE_SO))
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(SHARE)/pipelines $(SHARE)/data/demo
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(wildcard docs/man/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 $(MODEL) $(SHARE)/
	install -d $(SHARE)/models
	install -m 644 models/README.md models/metrics.jsonl $(wildcard models/*.png) $(SHARE)/models/
	install -m 755 $(wildcard pipelines/*.sh) $(SHARE)/pipelines/
	install -m 644 $(wildcard data/demo/*.png) data/demo/README.md $(SHARE)/data/demo/
	$(if $(filter 1,$(CUDA)),install -d $(DESTDIR)$(PREFIX)/lib/aging && \
	  install -m 755 $(CUDA_SO) $(DESTDIR)$(PREFIX)/lib/aging/)
	$(if $(filter 1,$(DLIB)),install -d $(DESTDIR)$(PREFIX)/lib/aging && \
	  install -m 755 $(FACE_SO) $(DESTDIR)$(PREFIX)/lib/aging/)
	$(if $(filter 1,$(NCCL)),install -d $(DESTDIR)$(PREFIX)/lib/aging && \
	  install -m 755 $(NCCL_SO) $(DESTDIR)$(PREFIX)/lib/aging/)

clean:
	rm -rf build build-asan build-fuzz bin

-include $(wildcard $(LIB_OBJ:.o=.d))
