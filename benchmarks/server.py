"""Ember's local API server under load: requests per second and latency (median, p95) of short
non-streamed chat completions from 1 and from 4 concurrent clients, through the gateway, and the same
requests sent straight to the model process (what the gateway costs), side by side in one run.

    python benchmarks/server.py [--model PATH] [--requests 40] [--tokens 8] [--threads 1]
    python benchmarks/server.py --smoke      # tiny budget, for CI
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.paths import starter_model  # noqa: E402
from engine.runtime.registry import HostRegistry, LoadedModel  # noqa: E402
from engine.runtime.supervisor import HostSettings, RuntimeHost  # noqa: E402
from engine.server.gateway import Gateway, GatewaySettings, new_api_key  # noqa: E402


def one_request(port: int, key: str, tokens: int, number: int) -> float:
    body = json.dumps({"messages": [{"role": "user", "content": f"Give me a word for the number {number}."}],
                       "max_tokens": tokens, "temperature": 0.0}).encode()
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", "/v1/chat/completions", body=body,
                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    answer = conn.getresponse()
    answer.read()
    conn.close()
    if answer.status != 200:
        raise RuntimeError(f"status {answer.status}")
    return time.perf_counter() - start


def load(port: int, key: str, tokens: int, requests: int, clients: int) -> tuple[float, float, float]:
    """(requests/s, median s, p95 s) of `requests` requests spread over `clients` threads."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = requests // clients

    def client(c: int) -> None:
        for n in range(per_client):
            seconds = one_request(port, key, tokens, c * 1000 + n)
            with lock:
                latencies.append(seconds)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))]
    return len(latencies) / wall, statistics.median(latencies), p95


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.requests, args.tokens = 4, 2
    model = Path(args.model) if args.model else starter_model()
    if model is None:
        print("No model: give --model PATH (or install the starter model).", file=sys.stderr)
        return 2
    host = RuntimeHost(HostSettings(model_path=str(model), context_length=512, gpu_layers=0, threads=args.threads))
    host.start_blocking()
    registry = HostRegistry()
    registry.put(LoadedModel("chat", host, str(model)))
    key = new_api_key()
    gateway = Gateway(registry, GatewaySettings(port=0, api_key=key))
    gateway.start()
    results = {}
    try:
        one_request(gateway.port, key, args.tokens, 0)  # warm
        for clients in (1, 4):
            for route, port, token in (("gateway", gateway.port, key), ("direct", host.port, host.token)):
                rps, median, p95 = load(port, token, args.tokens, args.requests, clients)
                results[(route, clients)] = (rps, median, p95)
                print(f"{route:8s} {clients} client(s): {rps:6.2f} req/s, median {median * 1000:7.1f} ms, "
                      f"p95 {p95 * 1000:7.1f} ms")
    finally:
        gateway.stop()
        host.stop()
    ratio = [results[("gateway", c)][0] / results[("direct", c)][0] for c in (1, 4)]
    print(f"summary: {model.name}, {args.requests} requests of {args.tokens} tokens, {args.threads} thread(s): "
          f"gateway {results[('gateway', 1)][0]:.2f} req/s (1 client, p95 {results[('gateway', 1)][2] * 1000:.0f} ms), "
          f"{results[('gateway', 4)][0]:.2f} req/s (4 clients, p95 {results[('gateway', 4)][2] * 1000:.0f} ms); "
          f"gateway/direct {ratio[0]:.3f} and {ratio[1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
