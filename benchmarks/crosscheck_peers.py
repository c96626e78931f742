"""llmsoak and vLLM's benchmark client side by side against the same stub, at fixed concurrency.

    .venv/bin/python benchmarks/crosscheck_peers.py [--concurrency 16] [--output-len 64]
        [--input-len 32] [--num-prompts 200] [--seconds 20] [--repeats 3]

Starts ``llmsoak stub --ttft-ms 50 --itl-ms 20 --itl-slowdown 0 --max-concurrency 1024``, then
alternates ``vllm bench serve`` (from the vLLM venv of ``scripts/engines.sh``; ``--backend
openai-chat``, the random dataset, ``--max-concurrency C``, ``--request-rate inf``, the tiny test
model's tokenizer) and llmsoak (one headless Locust process, C Stress users without think time),
both through benchmarks/crosscheck_vllm.py's runners, and prints the medians and ratios of TTFT,
ITL, TPOT and output tokens/s. The stub's timing is known exactly (TTFT 50 ms plus queueing,
20 ms per token), so both clients can also be held against the truth.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import crosscheck_vllm as cc  # noqa: E402 - sibling benchmark (it also puts tests/ on sys.path)


def start_stub(output_len: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "llmsoak", "stub", "--port", "0", "--ttft-ms", "50",
                             "--itl-ms", "20", "--itl-slowdown", "0", "--output-tokens", str(max(output_len, 256)),
                             "--max-concurrency", "1024", "--queue-size", "4096"],
                            stdout=subprocess.PIPE, text=True, cwd=cc.REPO)
    for _ in range(100):
        if m := re.search(r"listening on (http://\S+)", proc.stdout.readline()):
            return proc, m.group(1).rstrip("/")
    proc.kill()
    raise SystemExit("stub did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--input-len", type=int, default=32)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--num-prompts", type=int, default=200, help="requests of vllm bench serve")
    parser.add_argument("--seconds", type=int, default=20, help="length of the llmsoak run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="keep the raw results here (default: a temporary folder)")
    args = parser.parse_args(argv)

    from support.engines import engine_status, tiny_model

    state, venv = engine_status()["vllm"]
    python = venv / "bin" / "python"
    if not (venv / "bin" / "vllm").exists():
        print(f"crosscheck: vllm is {state}: run scripts/engines.sh ensure vllm", file=sys.stderr)
        return 2
    tokenizer = tiny_model("hf-llama", python)
    out = args.out or Path(tempfile.mkdtemp(prefix="crosscheck-peers-"))
    stub, url = start_stub(args.output_len)
    benches, soaks = [], []
    try:
        for i in range(args.repeats):
            pair = [("bench", lambda d: cc.run_vllm_bench(python, url, "m", tokenizer, args, d)),
                    ("llmsoak", lambda d: cc.run_llmsoak(url, "m", args.input_len, args, d))]
            for name, run in (pair if i % 2 == 0 else pair[::-1]):
                result = run(out / f"{name}-{i + 1}")
                (benches if name == "bench" else soaks).append(result)
                print(f"crosscheck: {name} run {i + 1}: " + ", ".join(f"{k} {cc._fmt(v)}" for k, v in result.items()),
                      file=sys.stderr, flush=True)
    finally:
        stub.terminate()
        stub.wait(10)
    print(f"\nllmsoak stub (TTFT 50 ms, ITL 20 ms) at {url}, concurrency {args.concurrency}, output {args.output_len} "
          f"tokens; medians of {args.repeats} alternating runs each (vllm bench serve: {args.num_prompts} requests; "
          f"llmsoak: {args.seconds} s); raw results in {out}\n")
    print(cc.table(cc.median_of(benches), cc.median_of(soaks)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
