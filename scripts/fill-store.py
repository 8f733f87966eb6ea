#!/usr/bin/env python3
"""Makes a large embedded store to measure reads on, in the shape of docs/performance.md's growth table.

    scripts/fill-store.py BINARY DATA_DIR [--events 5000000] [--days 10]

BINARY (a release `hookline`) starts on DATA_DIR once, to make the schema, ten tenants (t0 … t9) and two endpoints
each, then stops; the events, deliveries, attempts and hourly counts are then written in bulk into its SQLite file:
two deliveries an event, over the last DAYS days, t0 holding half of them; 94.8% succeeded, 4.2% failed, 0.5%
cancelled and 0.5% pending (waiting for a retry), t1's second endpoint failing every attempt; one attempt each.
The admin key is printed at the end, with a portal link's token for t0.
"""

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase
ADMIN_KEY = "hka_fill_store_admin_key_0123456789"
TOPICS = ["pdf.processed"] * 6 + ["end_user.processed"] * 3 + ["pdf.failed"]


def body(millis: int) -> str:
    """An id's 26 characters: 48 bits of milliseconds, then 80 random bits."""
    value = (millis << 80) | random.getrandbits(80)
    return "".join(ALPHABET[(value >> (5 * (25 - index))) & 31] for index in range(26))


def call(url: str, method: str, path: str, payload=None):
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url + path, data=data, method=method)
    request.add_header("authorization", f"Bearer {ADMIN_KEY}")
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read() or b"null")


def set_up(binary: str, data_dir: str):
    """Schema, tenants and endpoints, made by the server itself."""
    env = dict(os.environ, HOOKLINE_ADMIN_KEY=ADMIN_KEY, HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS="true")
    server = subprocess.Popen(
        [binary, "serve", "--data-dir", data_dir, "--listen", "127.0.0.1:0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = server.stdout.readline().split("listening on ")[1].strip()
    endpoints = {}
    for number in range(10):
        tenant = f"t{number}"
        call(url, "POST", "/v1/tenants", {"id": tenant, "name": f"Tenant {number}"})
        endpoints[tenant] = []
        for which in ("a", "b"):
            made = call(
                url,
                "POST",
                f"/v1/tenants/{tenant}/endpoints",
                # Nothing listens there: the server is stopped before anything is due.
                {"url": f"http://127.0.0.1:9/{tenant}/{which}", "topics": sorted(set(TOPICS))},
            )
            endpoints[tenant].append(made["id"])
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)
    return endpoints


def fill(data_dir: str, endpoints: dict, events: int, days: int):
    db = sqlite3.connect(os.path.join(data_dir, "hookline.db"), isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -1048576")
    now = int(time.time() * 1000)
    start = now - days * 86_400_000
    step = (now - start - 60_000) / events
    tenants = sorted(endpoints)
    failing = endpoints["t1"][1]
    hours = {}
    health = {}
    request_headers = json.dumps([["content-type", "application/json"], ["webhook-id", "msg"], ["user-agent", "Hookline/0.1"]])
    response_headers = json.dumps([["content-type", "text/plain"], ["content-length", "2"]])
    db.execute("BEGIN")
    batch = 0
    for number in range(events):
        created = int(start + number * step)
        tenant = "t0" if number % 2 == 0 else tenants[1 + (number // 2) % 9]
        topic = random.choice(TOPICS)
        event_id = "evt_" + body(created)
        data = json.dumps({"pdf_id": f"pdf_{number}", "pages": number % 40, "note": "x" * 140})
        db.execute(
            "INSERT INTO events (id, tenant_id, topic, created_at, data) VALUES (?, ?, ?, ?, ?)",
            (event_id, tenant, topic, created, data),
        )
        for endpoint in endpoints[tenant]:
            roll = random.random()
            if endpoint == failing or 0.948 <= roll < 0.990:
                status, answer, error = "failed", 503, "status"
            elif roll < 0.948:
                status, answer, error = "succeeded", 200, None
            elif roll < 0.995:
                status, answer, error = "cancelled", None, "connect"
            else:
                status, answer, error = "pending", 500, "status"
            # Pending ones wait for a retry, due within the next ten hours.
            due = now + random.randint(60_000, 36_000_000) if status == "pending" else None
            delivery_id = "del_" + body(created)
            db.execute(
                "INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, topic, format, text_escape, status,"
                " attempts, next_attempt_at, last_status, last_error, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, 'envelope', 'utf8', ?, 1, ?, ?, ?, ?, ?)",
                (delivery_id, tenant, event_id, endpoint, topic, status, due, answer,
                 None if answer == 200 else "the endpoint answered 503" if answer else "connection refused",
                 created, created + 40),
            )
            db.execute(
                "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, url, request_headers,"
                " response_status, response_headers, response_body, error_kind, error_detail)"
                " VALUES (?, 1, ?, 37, ?, ?, ?, ?, ?, ?, ?)",
                (delivery_id, created + 3, f"http://127.0.0.1:9/{tenant}", request_headers, answer,
                 response_headers, "ok" if answer == 200 else "unavailable", error,
                 None if answer == 200 else "the endpoint answered 503"),
            )
            if created >= now - 7 * 86_400_000:
                key = (endpoint, created // 3_600_000 * 3_600_000)
                counts = hours.setdefault(key, [0, 0])
                counts[0 if answer == 200 else 1] += 1
            health[endpoint] = (tenant, answer == 200, created)
        batch += 1
        if batch == 20_000:
            db.execute("COMMIT")
            db.execute("BEGIN")
            batch = 0
            print(f"{number + 1} events", file=sys.stderr, flush=True)
    for (endpoint, hour), (successes, failures) in hours.items():
        db.execute(
            "INSERT INTO endpoint_hours (endpoint_id, hour, successes, failures) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (endpoint_id, hour) DO UPDATE SET successes = excluded.successes, failures = excluded.failures",
            (endpoint, hour, successes, failures),
        )
    for endpoint, (tenant, succeeded, at) in health.items():
        run = 0 if succeeded else (278_000 if endpoint == failing else 1)
        db.execute(
            "INSERT OR REPLACE INTO endpoint_health (endpoint_id, tenant_id, consecutive_failures, failing_since,"
            " last_success_at, last_failure_at) VALUES (?, ?, ?, ?, ?, ?)",
            (endpoint, tenant, run, start if endpoint == failing else (None if succeeded else at),
             None if endpoint == failing else at, at),
        )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("data_dir")
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=10)
    args = parser.parse_args()
    random.seed(7)
    endpoints = set_up(args.binary, args.data_dir)
    fill(args.data_dir, endpoints, args.events, args.days)
    print(json.dumps({"admin_key": ADMIN_KEY, "endpoints": endpoints}))


if __name__ == "__main__":
    main()
