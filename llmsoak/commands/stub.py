"""``llmsoak stub``: run the reference target (an LLM-like server without a model)."""

from __future__ import annotations

import argparse

from llmsoak.errors import CommandError

HELP = "Run a fake LLM server (OpenAI, Ollama and chat-app APIs) with tunable latency, leaks and faults."

_FAULTS = ("http_429, http_500, http_503, reset_before_headers, reset_mid_stream, stall, "
           "malformed_chunk, empty_response")


def _non_negative(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
        return value
    return parse


def _positive_int(text: str) -> int:
    value = _non_negative(int)(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def prepare_parser(parser: argparse.ArgumentParser) -> None:
    nn_float, nn_int = _non_negative(float), _non_negative(int)
    parser.add_argument("--host", metavar="HOST", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", metavar="PORT", type=nn_int, default=8000, help="TCP port; 0 picks a free one (default 8000)")
    parser.add_argument("--ttft-ms", metavar="MS", type=nn_float, default=50.0,
                        help="time to first token after admission, ms (default 50)")
    parser.add_argument("--prefill-ms-per-1k-tokens", metavar="MS", type=nn_float, default=0.0,
                        help="extra TTFT per 1000 prompt tokens, ms (default 0)")
    parser.add_argument("--itl-ms", metavar="MS", type=nn_float, default=10.0,
                        help="inter-token latency of a lone request, ms; 0 = as fast as possible (default 10)")
    parser.add_argument("--itl-jitter", metavar="FRACTION", type=nn_float, default=0.03,
                        help="relative jitter on each token gap, 0.03 = ±3%% (default 0.03)")
    parser.add_argument("--itl-slowdown", metavar="FRACTION", type=nn_float, default=0.5,
                        help="ITL grows by this fraction at full concurrency: itl × (1 + s × (active−1)/"
                             "max_concurrency) (default 0.5)")
    parser.add_argument("--output-tokens", metavar="N", type=nn_int, default=256,
                        help="most tokens per response, and the length of unlimited ones (default 256)")
    parser.add_argument("--max-concurrency", metavar="N", type=_positive_int, default=64,
                        help="requests generated at once; more wait in the queue (default 64)")
    parser.add_argument("--queue-size", metavar="N", type=nn_int, default=256,
                        help="requests that may wait for a slot; beyond that → 429 (default 256)")
    parser.add_argument("--kv-bytes-per-token", metavar="BYTES", type=nn_int, default=1024,
                        help="memory held per token of each in-flight request, bytes (default 1024)")
    parser.add_argument("--leak-kb-per-request", metavar="KIB", type=nn_int, default=0,
                        help="KiB kept forever per finished model request: a deliberate leak (default 0)")
    parser.add_argument("--fault", action="append", default=[], metavar="NAME=RATE",
                        help=f"inject a fault into a fraction of requests (repeatable); names: {_FAULTS}")
    parser.add_argument("--stall-s", metavar="SECONDS", type=nn_float, default=600.0,
                        help="how long the 'stall' fault keeps a connection silent, s (default 600)")
    parser.add_argument("--session-idle-s", metavar="SECONDS", type=nn_float, default=600.0,
                        help="chat sessions expire after this many idle seconds (default 600)")
    parser.add_argument("--model", metavar="NAME", default="llmsoak-stub", help="model name reported (default llmsoak-stub)")
    parser.add_argument("--seed", metavar="N", type=int, default=None, help="seed for text, jitter and fault draws")
    parser.add_argument("--access-log", action="store_true", help="print one line per request")


def run(args: argparse.Namespace) -> int:
    # The server (asyncio and the rest) loads only for this command: `llmsoak` imports every
    # command module to build its parser.
    from llmsoak.stub.config import StubConfig  # start-up: see above
    from llmsoak.stub.faults import FaultSpecError, check_total, parse_fault_spec  # start-up: see above
    from llmsoak.stub.server import run as run_server  # start-up: see above

    faults: dict[str, float] = {}
    for spec in args.fault:
        try:
            name, rate = parse_fault_spec(spec)
        except FaultSpecError as err:
            raise CommandError(str(err)) from None
        faults[name] = rate
    if args.port > 65535:
        raise CommandError(f"--port {args.port}: must be between 0 and 65535")
    try:
        check_total(faults, where="--fault")
    except FaultSpecError as err:
        raise CommandError(str(err)) from None
    config = StubConfig(
        host=args.host, port=args.port, ttft_ms=args.ttft_ms,
        prefill_ms_per_1k_tokens=args.prefill_ms_per_1k_tokens, itl_ms=args.itl_ms,
        itl_jitter_frac=args.itl_jitter, itl_slowdown=args.itl_slowdown,
        output_tokens=args.output_tokens, max_concurrency=args.max_concurrency,
        queue_size=args.queue_size, kv_bytes_per_token=args.kv_bytes_per_token,
        leak_kb_per_request=args.leak_kb_per_request, faults=faults, stall_s=args.stall_s,
        session_idle_s=args.session_idle_s, model=args.model, seed=args.seed,
        access_log=args.access_log,
    )
    return run_server(config)
