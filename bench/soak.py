#!/usr/bin/env python3
"""Soak: our server's memory under the peers.py mix for a while (issue 19).

    python3 bench/soak.py --minutes 10              # 16 clients, the six questions in turn
    python3 bench/soak.py --minutes 2 --clients 4

Starts the release `salesops serve` (default settings, as bench/peers.py)
on the database peers.py uses, then for --minutes asks Q1..Q5 and the VP
dashboard of bench/peers.py in turn, --slot seconds each at --clients
clients, and prints per slot the requests/s and the peak VmRSS, then the
first and last minute's peaks and the overall VmHWM: a cache that grows
shows as a rising peak from one round of the mix to the next.
"""
import argparse
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import load  # noqa: E402
import peers  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="postgres://postgres@127.0.0.1:5432/salesops_bench")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--slot", type=int, default=20, help="seconds per question before the next")
    ap.add_argument("--clients", type=int, default=16)
    args = ap.parse_args()

    port = peers.free_port()
    env = dict(os.environ, SALESOPS_DATABASE_URL=args.db, SALESOPS_JWT_SECRET=load.SECRET,
               SALESOPS_BIND=f"127.0.0.1:{port}", RUST_LOG="warn", SALESOPS_WEBHOOK_WORKER="false",
               SALESOPS_DB_ACQUIRE_TIMEOUT_MS="300000", SALESOPS_STATEMENT_TIMEOUT_MS="0")
    server = subprocess.Popen([peers.BIN, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        peers.wait_http(f"http://127.0.0.1:{port}/readyz", server, "salesops serve")
        token = load.sh([peers.BIN, "token", "--role", "ADMIN", "--sub", "bench-soak", "--ttl", "8h"], env=env).strip()
        sampler = peers.RssSampler(server.pid)
        sampler.start()
        print(f"== soak: pid {server.pid}, {args.clients} clients, {args.minutes} min, "
              f"{args.slot} s per question; idle RSS {peers.vm(server.pid, 'VmRSS'):.0f} MB", flush=True)
        started, peaks, i = time.time(), [], 0
        while time.time() - started < args.minutes * 60:
            q = peers.QUESTIONS[i % len(peers.QUESTIONS)]
            sampler.take()
            rps, _, _ = peers.http_load(port, "/graphql", q["ours"], q["vars"], token, args.clients, args.slot)
            peak = sampler.take()
            at = (time.time() - started) / 60
            peaks.append((at, peak))
            print(f"   {at:5.1f} min {q['id']:3} {rps:9.2f}/s peak RSS {peak:6.0f} MB", flush=True)
            i += 1
        sampler.stop = True
        first = max(p for t, p in peaks if t <= 1.0 + args.slot / 60)
        last = max(p for t, p in peaks if t >= peaks[-1][0] - 1.0)
        rounds = [max(p for _, p in peaks[k:k + len(peers.QUESTIONS)])
                  for k in range(0, len(peaks), len(peers.QUESTIONS))]
        print(f"peak RSS per round of the mix: {' / '.join(f'{r:.0f}' for r in rounds)} MB; "
              f"first minute {first:.0f} MB, last minute {last:.0f} MB; "
              f"VmHWM {peers.vm(server.pid, 'VmHWM'):.0f} MB after {(time.time() - started) / 60:.1f} min")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
