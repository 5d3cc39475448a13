"""``switchman keys new --tenant NAME [--id LABEL]``: a new client key and its keys-file entry.

Prints the key once (hand it to the tenant; it is stored nowhere) and the entry to add to the
keys file (or the Secret behind RoutingPolicy ``spec.tenancy.keysSecret``), which holds only the
key's SHA-256. ``switchman keys hash`` reads a key on stdin and prints its entry, to re-register
an existing key. See docs/tenancy.md.
"""

from __future__ import annotations

import argparse
import json
import sys

from switchman.gateway.tenancy.keys import hash_key, new_key


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("new", "hash"), help="new: make a key; hash: stdin's")
    parser.add_argument("--tenant", required=True, help="the tenant the key belongs to")
    parser.add_argument("--id", help="a label for the key in the keys file (never secret)")


def entry(tenant: str, key: str, label: str | None) -> str:
    """The keys-file line (YAML flow mapping, valid JSON too)."""
    fields = {"tenant": tenant, "sha256": hash_key(key)}
    if label:
        fields["id"] = label
    return "  - " + json.dumps(fields)


def run(args: argparse.Namespace) -> int:
    if args.action == "new":
        key = new_key()
        print(f"key {args.tenant}: {key}")
    else:
        key = sys.stdin.readline().strip()
        if not key:
            print("switchman keys hash: no key on stdin", file=sys.stderr)
            return 2
    print("add under 'keys:' in the keys file:")
    print(entry(args.tenant, key, args.id))
    return 0
