"""llmsoak against vLLM's own benchmark client, on the same real vLLM, side by side.

    .venv/bin/python benchmarks/crosscheck_vllm.py [--url http://127.0.0.1:8000 --tokenizer MODEL_DIR]
        [--concurrency 8] [--input-len 128] [--output-len 128] [--num-prompts 200] [--seconds 60]

Without ``--url`` it starts vLLM itself with the tiny test model (tests/support/engines.py; needs
``scripts/engines.sh ensure vllm``), prefix caching off unless ``--prefix-caching``, and stops it
at the end. Then, one after the other:

1. ``vllm bench serve`` (from the vLLM venv): ``--backend openai-chat``, the random dataset at
   ``--input-len`` / ``--output-len`` tokens (the model's own tokenizer), ``--max-concurrency``,
   ``--ignore-eos``;
2. llmsoak: headless Locust (locustfiles/llm_chat.py, one process) with a Stress-like profile:
   ``--concurrency`` users, no think time, one turn without history, ``max_tokens`` =
   ``--output-len`` and ``prompt_tokens`` calibrated so the server counts about ``--input-len``
   prompt tokens (measured with vLLM's ``/tokenize``). Its whole-run figures come from llmsoak's
   own histograms (``get_llm_state(env).snapshot()``, dumped at test stop).

After a discarded warm-up, the two alternate ``--repeats`` times each (order swapped every
round). Prints each run, then the medians of TTFT p50/p95, ITL p50, TPOT p50, output tokens/s
and the mean prompt/output tokens of each, and llmsoak / vLLM ratios. The tiny model never picks its end token, so both get
``--output-len`` tokens per request. docs/engines.md quotes a run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

SNAPSHOT_LOCUSTFILE = '''
"""Dumps llmsoak's whole-run LLM metrics when the test stops (crosscheck_vllm.py)."""
import json, os
from locust import events
from llmsoak.locust.plugin import get_llm_state

@events.test_stop.add_listener
def _dump(environment, **_kw):
    with open(os.environ["CROSSCHECK_SNAPSHOT"], "w") as fh:
        json.dump(get_llm_state(environment).snapshot(), fh)
'''


def post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def run_vllm_bench(python: Path, url: str, model: str, tokenizer: Path, args, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [str(python.parent / "vllm"), "bench", "serve", "--backend", "openai-chat", "--base-url", url,
           "--endpoint", "/v1/chat/completions", "--model", model, "--tokenizer", str(tokenizer),
           "--dataset-name", "random", "--random-input-len", str(args.input_len),
           "--random-output-len", str(args.output_len), "--random-range-ratio", "0",
           "--num-prompts", str(args.num_prompts), "--max-concurrency", str(args.concurrency),
           "--request-rate", "inf", "--ignore-eos", "--seed", "1", "--disable-tqdm",
           "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,95",
           "--save-result", "--result-dir", str(out), "--result-filename", "vllm_bench.json"]
    print("$ " + " ".join(cmd), file=sys.stderr)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    if proc.returncode != 0:
        raise SystemExit(f"vllm bench serve failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    r = json.loads((out / "vllm_bench.json").read_text())
    return {"requests": r["completed"], "ttft_p50_ms": r["median_ttft_ms"], "ttft_p95_ms": r["p95_ttft_ms"],
            "itl_p50_ms": r["median_itl_ms"], "tpot_p50_ms": r["median_tpot_ms"],
            "tokens_per_s": r["output_throughput"], "input_tokens_mean": r["total_input_tokens"] / r["completed"],
            "output_tokens_mean": r["total_output_tokens"] / r["completed"]}


def calibrate_prompt_tokens(url: str, model: str, input_len: int) -> int:
    """llmsoak's ``prompt_tokens`` (its chars/4 estimate) that gives about ``input_len`` server tokens."""
    probe = "The quarterly report covers incident response and on-call rotations. " * 40
    counted = post_json(url + "/tokenize", {"model": model, "messages": [{"role": "user", "content": probe}]})
    tokens_per_char = counted["count"] / len(probe)
    # llmsoak estimates tokens as characters / 4, so a prompt of input_len real tokens is about
    # input_len / tokens_per_char characters, i.e. that / 4 llmsoak tokens.
    return max(1, round(input_len / tokens_per_char / 4))


def run_llmsoak(url: str, model: str, prompt_tokens: int, args, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    profile = out / "crosscheck.yaml"
    profile.write_text(textwrap.dedent(f"""\
        name: crosscheck
        description: "Stress-like fixed concurrency for benchmarks/crosscheck_vllm.py"
        target: {{url: "{url}", flavour: openai, endpoint: chat, model: "{model}", stream: true, timeout_s: 300}}
        patterns:
          stress:
            users: {args.concurrency}
            think_time_s: 0
            turns_per_session: 1
            history: false
            prompt_tokens: {prompt_tokens}
            max_tokens: {args.output_len}
            session_pause_s: 0
            first_message_delay_s: 0
        load: {{shape: constant, users: {args.concurrency}, spawn_rate: {args.concurrency}}}
        run: {{seed: 1}}
        """))
    dump = out / "snapshot_dump.py"
    dump.write_text(SNAPSHOT_LOCUSTFILE)
    snapshot = out / "llmsoak_snapshot.json"
    cmd = [sys.executable, "-m", "locust", "-f", f"{REPO / 'locustfiles' / 'llm_chat.py'},{dump}", "--headless",
           "--profile", str(profile), "-u", str(args.concurrency), "-r", str(args.concurrency),
           "-t", f"{args.seconds}s", "--only-summary", "--stop-timeout", "30", "--exit-code-on-error", "0",
           "--csv", str(out / "locust"), "--llm-timeseries", str(out / "llm_timeseries.csv")]
    print("$ " + " ".join(cmd), file=sys.stderr)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 300, cwd=out,
                          env={**os.environ, "CROSSCHECK_SNAPSHOT": str(snapshot)})
    if proc.returncode != 0 or not snapshot.exists():
        raise SystemExit(f"llmsoak (locust) failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    c = json.loads(snapshot.read_text())["all"]["cumulative"]
    ok = c["requests"] - c["failures"]
    return {"requests": ok, "failures": c["failures"], "ttft_p50_ms": c["ttft_p50_ms"],
            "ttft_p95_ms": c["ttft_p95_ms"], "itl_p50_ms": c["itl_p50_ms"], "tpot_p50_ms": c["tpot_p50_ms"],
            "tokens_per_s": c["tokens_per_s"], "input_tokens_mean": c["input_tokens"] / max(ok, 1),
            "output_tokens_mean": c["output_tokens"] / max(ok, 1)}


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1 else f"{value:,.1f}"
    return str(value)


def median_of(runs: list[dict]) -> dict:
    """Per key, the median over the runs (keys with a None anywhere stay None)."""
    out = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        out[key] = None if any(v is None for v in values) else statistics.median(values)
    return out


def table(bench: dict, soak: dict) -> str:
    rows = [("TTFT p50 (ms)", "ttft_p50_ms"), ("TTFT p95 (ms)", "ttft_p95_ms"), ("ITL p50 (ms)", "itl_p50_ms"),
            ("TPOT p50 (ms)", "tpot_p50_ms"), ("output tokens/s", "tokens_per_s"),
            ("prompt tokens / request", "input_tokens_mean"), ("output tokens / request", "output_tokens_mean"),
            ("requests completed", "requests")]
    lines = ["| metric | vllm bench serve | llmsoak | llmsoak / vLLM |", "|---|---|---|---|"]
    for label, key in rows:
        a, b = bench.get(key), soak.get(key)
        ratio = f"{b / a:.2f}" if a and b is not None else "–"
        lines.append(f"| {label} | {_fmt(a)} | {_fmt(b)} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running vLLM (default: start one with the tiny model)")
    parser.add_argument("--model", default="tiny-llama", help="served model name (with --url)")
    parser.add_argument("--tokenizer", type=Path, help="the model's directory for vllm bench (with --url)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--input-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=128)
    parser.add_argument("--num-prompts", type=int, default=200, help="requests of vllm bench serve")
    parser.add_argument("--seconds", type=int, default=60, help="length of the llmsoak run")
    parser.add_argument("--prefix-caching", action=argparse.BooleanOptionalAction, default=False,
                        help="vLLM started here: keep its prefix cache on (llmsoak's prompts repeat, the "
                             "benchmark's random ones never do, so the default turns it off)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternate the two clients this many times each; medians are reported")
    parser.add_argument("--out", type=Path, help="keep the raw results here (default: a temporary folder)")
    args = parser.parse_args(argv)

    from support.engines import engine_status, start_vllm, tiny_model

    state, venv = engine_status()["vllm"]
    if state != "ready":
        print(f"crosscheck: vllm is {state}: run scripts/engines.sh ensure vllm", file=sys.stderr)
        return 2
    python = venv / "bin" / "python"
    out = args.out or Path(tempfile.mkdtemp(prefix="crosscheck-"))
    out.mkdir(parents=True, exist_ok=True)
    server = None
    if args.url:
        if not args.tokenizer:
            parser.error("--url needs --tokenizer (the served model's directory)")
        url, model, tokenizer = args.url.rstrip("/"), args.model, args.tokenizer
    else:
        tokenizer = tiny_model("hf-llama", python)
        print("crosscheck: starting vLLM with the tiny model (1-2 min)", file=sys.stderr)
        extra = () if args.prefix_caching else ("--no-enable-prefix-caching",)
        server = start_vllm(python, tokenizer, out / "vllm.log", extra_args=extra)
        url, model = server.url, server.model
    benches, soaks = [], []
    try:
        prompt_tokens = calibrate_prompt_tokens(url, model, args.input_len)
        # Warm-up, discarded: a fresh vLLM compiles and caches for a while under its first load.
        run_vllm_bench(python, url, model, tokenizer, argparse.Namespace(**{**vars(args), "num_prompts": 32}),
                       out / "warmup")
        for i in range(args.repeats):
            # Alternate the order so that drift of the shared machine does not favour one client.
            pair = [("bench", lambda d: run_vllm_bench(python, url, model, tokenizer, args, d)),
                    ("llmsoak", lambda d: run_llmsoak(url, model, prompt_tokens, args, d))]
            for name, run in (pair if i % 2 == 0 else pair[::-1]):
                result = run(out / f"{name}-{i + 1}")
                (benches if name == "bench" else soaks).append(result)
                print(f"crosscheck: {name} run {i + 1}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in result.items()),
                      file=sys.stderr)
    finally:
        if server is not None:
            server.stop()
    bench, soak = median_of(benches), median_of(soaks)
    print(f"\nvLLM at {url}, concurrency {args.concurrency}, input {args.input_len} / output {args.output_len} "
          f"tokens; medians of {args.repeats} alternating runs each (vllm bench serve: {args.num_prompts} "
          f"requests; llmsoak: {args.seconds} s, prompt_tokens {prompt_tokens}); raw results in {out}\n")
    print(table(bench, soak))
    return 0


if __name__ == "__main__":
    sys.exit(main())
