# Thin wrapper over CMake. Each target does all of its own set-up.
#   make demo   install deps, build, compile a bundled sample model, show its plan, run it,
#               and fit it to a smaller memory budget
#   make test   install deps, build (with the CUDA backend: MEMPLAN_CUDA=ON, one
#               architecture, so a broken CUDA build fails CI), run the whole test suite
#               (CTest; the `gpu` tests report skipped without a GPU), including the
#               bad-input tests again under AddressSanitizer + UBSan (CUDA off)
#   make gpu-bundle  a self-contained folder (build-gpu/gpu-bundle/) to carry to a GPU
#               machine: see docs/cuda-backend.md
BUILD ?= build
ASAN_BUILD ?= build-asan
GPU_BUILD ?= build-gpu
JOBS ?= 2
CMAKE_FLAGS ?=
# `make build` builds the CUDA backend when nvcc is found (AUTO); `make test` requires it.
CUDA_TEST_FLAGS ?= -DMEMPLAN_CUDA=ON -DMEMPLAN_CUDA_ARCHS=80-real

.PHONY: all deps configure configure-ci build build-ci demo test test-asan bench bench-cpu gpu-bundle clean

all: build

deps:
	@scripts/install-deps

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMPLAN_WERROR=ON $(CMAKE_FLAGS) >/dev/null

build: configure
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	$(BUILD)/memplan compile samples/tiny_cnn.onnx --dim batch=32 -o $(BUILD)/tiny_cnn.plan.json
	$(BUILD)/memplan verify $(BUILD)/tiny_cnn.plan.json
	$(BUILD)/memplan inspect $(BUILD)/tiny_cnn.plan.json --top 8
	$(BUILD)/memplan run $(BUILD)/tiny_cnn.plan.json --init random --synthetic --steps 20 --no-progress
	@echo "--- the same step under a 10 MiB budget (unconstrained peak above: 13.44 MiB)"
	$(BUILD)/memplan compile samples/tiny_cnn.onnx --dim batch=32 --budget 10MiB -o $(BUILD)/tiny_cnn.10MiB.plan.json
	$(BUILD)/memplan run $(BUILD)/tiny_cnn.10MiB.plan.json --init random --synthetic --steps 20 --no-progress

configure-ci: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMPLAN_WERROR=ON $(CUDA_TEST_FLAGS) $(CMAKE_FLAGS) >/dev/null

build-ci: configure-ci
	cmake --build $(BUILD) -j$(JOBS)

test: build-ci test-asan
	cd $(BUILD) && ctest --output-on-failure --timeout 600 -j$(JOBS)

# Bad-input tests under ASan/UBSan: memory errors on malformed files fail CI.
test-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMEMPLAN_WERROR=ON -DMEMPLAN_SANITIZE=ON \
	  -DMEMPLAN_BUILD_BENCH=OFF -DMEMPLAN_CUDA=OFF $(CMAKE_FLAGS) >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS) --target memplan_tests memplan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 \
	  ctest --output-on-failure --timeout 600 -j$(JOBS) -R 'BadInput'

bench: build
	$(BUILD)/bench/memplan_bench --out docs/benchmarks.md

# CPU step time and peak RSS against PyTorch (needs `scripts/install-deps --tools`).
bench-cpu: build
	bench/cpu_vs_pytorch.sh 4

# memplan + memplan_gpu_tests + their non-CUDA shared libraries (rpath $ORIGIN/lib),
# the test data and run-gpu-checks.sh, for a machine with only the driver and toolkit.
# Its own build dir: every default architecture (sm_80, sm_90, PTX), rpath $ORIGIN/lib,
# generic BLAS (the bundle ships Debian's small reference libblas, not OpenBLAS).
gpu-bundle: deps
	@cmake -S . -B $(GPU_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMPLAN_WERROR=ON -DMEMPLAN_CUDA=ON \
	  -DMEMPLAN_BUNDLE=ON -DMEMPLAN_BUILD_BENCH=OFF -DBLA_VENDOR=Generic $(CMAKE_FLAGS) >/dev/null
	cmake --build $(GPU_BUILD) -j$(JOBS) --target memplan memplan_gpu_tests
	scripts/make-gpu-bundle $(GPU_BUILD) $(GPU_BUILD)/gpu-bundle

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(GPU_BUILD)
