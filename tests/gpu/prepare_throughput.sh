#!/usr/bin/env bash
# Here (the controller, no GPU): make .gpucarry/ for tests/gpu/measure_throughput.sh.
#
#   bash tests/gpu/prepare_throughput.sh            # source tarball + role.env
#   BUILD_LOCAL=1 bash tests/gpu/prepare_throughput.sh   # also build llama.cpp for sm_90 here
#
# - .gpucarry/llama.cpp.tar.xz: llama.cpp vendored in the pinned llama-cpp-python sdist
#   (roles/_common/defaults/main/downloads.yml, checked by sha256), trimmed to what cmake and
#   gguf-py need (about 5 MB), with its upstream commit in BUILD_COMMIT;
# - .gpucarry/role.env: the llama_cpp role's environment for Llama 3.1 8B Q8_0, context 8192,
#   parallel 32 on one H200 (tests/gpu/role_env.py, through the collection's own placement);
# - with BUILD_LOCAL=1, .gpucarry/llama-bin.tar.xz: llama-server, llama-bench and
#   llama-batched-bench built HERE with nvcc for sm_90 (saves the ~5 minutes the GPU machine
#   would spend building; needs nvcc 13; cuBLAS headers come from the nvidia-cublas wheel and a
#   stub libcuda.so stands in for the driver, whose real one the GPU machine has). On 2 busy
#   cores this took well over an hour. The GPU machine builds the same source itself when no
#   usable build is carried.
# Then call the device tool with carry [".gpucarry"] and the command
#   bash tests/gpu/measure_throughput.sh
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
CARRY=$ROOT/.gpucarry
WORK=${WORK:-/tmp/teamllm-throughput}
PY=${PY:-$ROOT/.venv/bin/python}
mkdir -p "$CARRY" "$WORK"
grep -qx '/.gpucarry/' .git/info/exclude 2>/dev/null || echo /.gpucarry/ >>.git/info/exclude
grep -qx '/.gpubuild/' .git/info/exclude 2>/dev/null || echo /.gpubuild/ >>.git/info/exclude

# 1. the pinned sdist, checked
read -r VERSION SHA < <("$PY" - <<'PY'
import yaml
d = yaml.safe_load(open("roles/_common/defaults/main/downloads.yml"))["llm_downloads"]["llama_cpp_python_sdist"]
print(d["version"], d["sha256"])
PY
)
SDIST=$WORK/llama_cpp_python-$VERSION.tar.gz
if [ ! -f "$SDIST" ]; then
  "$PY" -m pip download --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$WORK"
fi
echo "$SHA  $SDIST" | sha256sum -c -
# 2. trimmed source
rm -rf "$WORK/src" && mkdir -p "$WORK/src"
tar -C "$WORK/src" -xzf "$SDIST" "llama_cpp_python-$VERSION/vendor/llama.cpp" "llama_cpp_python-$VERSION/CHANGELOG.md"
COMMIT=$(grep -m1 -o 'ggml-org/llama.cpp@[0-9a-f]*' "$WORK/src/llama_cpp_python-$VERSION/CHANGELOG.md" | cut -d@ -f2)
mv "$WORK/src/llama_cpp_python-$VERSION/vendor/llama.cpp" "$WORK/src/llama.cpp"
(
  cd "$WORK/src/llama.cpp"
  rm -rf models docs tests examples benches .git .github media pocs conversion convert_*.py \
    tools/ui/src tools/ui/tests \
    ggml/src/ggml-{cann,et,hexagon,metal,musa,opencl,openvino,sycl,virtgpu,vulkan,webgpu,zdnn,zendnn,hip}
  echo "$COMMIT" >BUILD_COMMIT
)
tar -C "$WORK/src" -cJf "$CARRY/llama.cpp.tar.xz" llama.cpp
echo "source: llama-cpp-python $VERSION, llama.cpp $COMMIT, $(du -h "$CARRY/llama.cpp.tar.xz" | cut -f1)"
# 3. the role's environment
PYTHONPATH=$ROOT/.collections "$PY" tests/gpu/role_env.py --context 8192 --parallel 32 \
  --model-path /tmp/models/llama-3.1-8b-q8_0.gguf >"$CARRY/role.env"
cat "$CARRY/role.env"
# 4. optional local build
if [ "${BUILD_LOCAL:-0}" = 1 ]; then
  TK=$WORK/cudatk
  if [ ! -f "$TK/lib/stubs/libcuda.so" ]; then
    NVCC_REAL=$(dirname "$(readlink -f "$(command -v nvcc)")")/..
    [ -f "$NVCC_REAL/bin/nvcc.profile" ] || NVCC_REAL=/usr/local/cuda
    rm -rf "$TK" && mkdir -p "$TK"
    for d in "$NVCC_REAL"/*; do  # a copy made of links, into which cuBLAS goes
      b=$(basename "$d")
      if [ "$b" = bin ] || [ "$b" = include ] || [ "$b" = lib ]; then cp -as "$(readlink -f "$d")" "$TK/$b"; else ln -s "$(readlink -f "$d")" "$TK/$b"; fi
    done
    rm -f "$TK/bin/nvcc" "$TK/bin/nvcc.profile"
    cp "$(readlink -f "$NVCC_REAL/bin/nvcc")" "$NVCC_REAL/bin/nvcc.profile" "$TK/bin/"
    ln -sfn lib "$TK/lib64"
    mkdir -p "$TK/targets/x86_64-linux" && ln -sfn ../../include "$TK/targets/x86_64-linux/include" && ln -sfn ../../lib "$TK/targets/x86_64-linux/lib"
    "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
      --platform manylinux_2_27_x86_64 "nvidia-cublas>=13.0,<13.1" -d "$WORK/wheels"
    "$PY" -c "import zipfile,glob,sys; zipfile.ZipFile(glob.glob(sys.argv[1])[0]).extractall(sys.argv[2])" \
      "$WORK/wheels/nvidia_cublas-13.0*.whl" "$WORK/cublas"
    cp "$WORK"/cublas/nvidia/cu13/include/* "$TK/include/"
    cp "$WORK"/cublas/nvidia/cu13/lib/libcublas.so.13 "$WORK"/cublas/nvidia/cu13/lib/libcublasLt.so.13 "$TK/lib/"
    ln -sf libcublas.so.13 "$TK/lib/libcublas.so" && ln -sf libcublasLt.so.13 "$TK/lib/libcublasLt.so"
    mkdir -p "$TK/lib/stubs" && echo >"$WORK/stub.c" &&
      gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$TK/lib/stubs/libcuda.so" "$WORK/stub.c"
  fi
  cmake -S "$WORK/src/llama.cpp" -B "$WORK/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON \
    -DGGML_F16C=ON -DGGML_OPENMP=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF \
    -DGGML_CUDA=ON -DGGML_CUDA_NCCL=OFF -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DCMAKE_CUDA_COMPILER="$TK/bin/nvcc" -DCUDAToolkit_ROOT="$TK" \
    -DLLAMA_BUILD_COMMIT="$COMMIT" -DLLAMA_BUILD_NUMBER=0 \
    "-DCMAKE_EXE_LINKER_FLAGS=-Wl,--allow-shlib-undefined" "-DCMAKE_BUILD_RPATH=\$ORIGIN" >/dev/null
  nice -n 19 cmake --build "$WORK/build" -j "$(nproc)" --target llama-server llama-bench llama-batched-bench
  (cd "$WORK/build/bin" && tar -cJf "$CARRY/llama-bin.tar.xz" llama-server llama-bench llama-batched-bench lib*.so*)
  echo "build: $(du -h "$CARRY/llama-bin.tar.xz" | cut -f1)"
fi
du -sh "$CARRY"
