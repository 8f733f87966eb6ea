#!/usr/bin/env python3
"""Times the portal's and the console's pages against a running server, as a browser asks for them.

    scripts/time-pages.py URL ADMIN_KEY [--calls 50] [--tenant t0] [--other t1]

Signs in to TENANT's portal (a link, all capabilities) and to the console (the admin key), then asks for each page
CALLS times in a row over one connection and prints its status, size and p50 / p99 in milliseconds. Made for a store
from scripts/fill-store.py: OTHER is the tenant with an endpoint that always fails.
"""

import argparse
import http.client
import json
import time
import urllib.parse


class Client:
    def __init__(self, url: str):
        parsed = urllib.parse.urlparse(url)
        self.origin = url.rstrip("/")
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port)

    def request(self, method: str, path: str, body=None, headers=None):
        self.connection.request(method, path, body=body, headers=headers or {})
        answer = self.connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()

    def api(self, key: str, method: str, path: str, payload=None):
        body = json.dumps(payload) if payload is not None else None
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        status, _, data = self.request(method, path, body, headers)
        assert status < 300, (path, status, data[:300])
        return json.loads(data)

    def form(self, path: str, fields: dict) -> str:
        body = urllib.parse.urlencode(fields)
        headers = {"content-type": "application/x-www-form-urlencoded", "origin": self.origin}
        status, headers, data = self.request("POST", path, body, headers)
        assert status == 303, (path, status, data[:300])
        return headers["set-cookie"].split(";")[0]


def percentile(sorted_values, share):
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("admin_key")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--tenant", default="t0")
    parser.add_argument("--other", default="t1")
    args = parser.parse_args()
    client = Client(args.url)

    def portal_cookie(tenant):
        link = client.api(args.admin_key, "POST", f"/v1/tenants/{tenant}/portal-links", {"user": "timing"})
        token = link["url"].split("#token=")[1]
        return client.form("/portal/session", {"token": token})

    ours, other = portal_cookie(args.tenant), portal_cookie(args.other)
    console = client.form("/console/sign-in", {"key": args.admin_key})
    endpoints = client.api(args.admin_key, "GET", f"/v1/tenants/{args.tenant}/endpoints")["data"]
    failing = client.api(args.admin_key, "GET", f"/v1/tenants/{args.other}/endpoints")["data"][1]["id"]
    delivery = client.api(args.admin_key, "GET", f"/v1/tenants/{args.tenant}/deliveries?limit=1")["data"][0]["id"]
    endpoint = endpoints[0]["id"]
    day = 86_400
    since = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 5 * day))
    until = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 4 * day))
    pages = [
        (ours, "/portal/webhooks"),
        (ours, f"/portal/webhooks/{endpoint}"),
        (ours, f"/portal/webhooks/{endpoint}/settings"),
        (ours, "/portal/deliveries"),
        (ours, "/portal/deliveries?status=failed"),
        (ours, "/portal/deliveries?status=succeeded"),
        (ours, "/portal/deliveries?status=pending"),
        (ours, "/portal/deliveries?topic=pdf.failed"),
        (ours, "/portal/deliveries?answer=5xx"),
        (ours, "/portal/deliveries?topic=transactions.deleted"),
        (ours, "/portal/deliveries?window=24h"),
        (ours, f"/portal/deliveries?window=range&since={since}&until={until}"),
        (ours, f"/portal/deliveries?window=24h&status=failed&endpoint={endpoint}"),
        (ours, f"/portal/deliveries/{delivery}"),
        (ours, "/portal/catalogue"),
        (other, f"/portal/webhooks/{failing}"),
        (other, f"/portal/deliveries?endpoint={failing}&status=succeeded"),
        (console, "/console/queue"),
        (console, "/console/tenants"),
        (console, f"/console/tenants/{args.tenant}"),
        (console, f"/console/search?id={delivery}"),
        (console, "/console/topics"),
    ]
    for cookie, path in pages:
        took = []
        for _ in range(args.calls):
            began = time.perf_counter()
            status, _, data = client.request("GET", path, headers={"cookie": cookie})
            took.append((time.perf_counter() - began) * 1000)
        took.sort()
        print(f"{path[:78]:<80} {status} {len(data):>7} B  p50 {percentile(took, 0.5):6.2f} ms  p99 {percentile(took, 0.99):6.2f} ms")


if __name__ == "__main__":
    main()
