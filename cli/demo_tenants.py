"""``switchman demo --tenants [--redis URL]``: two example tenants, their keys and limits.

Called by ``demo``. ``team-a`` may make 5 requests per minute; ``team-b`` has a daily budget of
$0.00075 that a few dozen short demo requests exhaust (each reserves its worst case first: 32
completion tokens at the priciest candidate). The keys file holds only the keys' hashes; the keys
themselves are printed once, as ``key team-a: <key>``. Without ``--redis`` the limits live in the
demo process; with it every demo on that Redis shares them, and derives the same keys from the
URL, so a key printed by one demo works on the others. Demo keys are for the demo only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from switchman.gateway.tenancy.keys import hash_key, new_key

TENANTS = ("team-a", "team-b")

TENANCY_BLOCK = """\
tenancy:                                # keys required; limits {where}
  keys_file: {keys_file}
  default_max_tokens: 32                # reserved when a request sets no max_tokens
{redis}  tenants:
    - name: team-a
      limits: {{requests_per_minute: 5}}
    - name: team-b
      daily: {{hard_usd: 0.00075, soft_usd: 0.0006}}
"""


def keys_for(redis_url: str | None) -> dict[str, str]:
    """One key per tenant: random, or derived from the Redis URL so demos sharing it agree."""
    if redis_url is None:
        return {tenant: new_key() for tenant in TENANTS}
    return {
        tenant: "sk-sw-demo-"
        + hashlib.sha256(f"switchman-demo|{redis_url}|{tenant}".encode()).hexdigest()[:32]
        for tenant in TENANTS
    }


def write(workdir: Path, redis_url: str | None) -> tuple[str, dict[str, str]]:
    """Write the keys file into ``workdir``; return the GatewayConfig ``tenancy`` block (YAML)
    and ``{tenant: key}``."""
    keys = keys_for(redis_url)
    keys_file = workdir / "keys.json"
    entries = [{"tenant": tenant, "sha256": hash_key(key)} for tenant, key in keys.items()]
    keys_file.write_text(json.dumps({"keys": entries}, indent=2) + "\n")
    redis = "" if redis_url is None else f"  redis: {{url: {json.dumps(redis_url)}}}\n"
    where = "in this process" if redis_url is None else "shared through Redis"
    block = TENANCY_BLOCK.format(keys_file=json.dumps(str(keys_file)), redis=redis, where=where)
    return block, keys


def key_lines(keys: dict[str, str]) -> str:
    return "\n".join(f"key {tenant}: {key}" for tenant, key in keys.items())


def guide(keys: dict[str, str], gateway: str) -> str:
    """What the demo prints with ``--tenants``: the key lines, then how to use them."""
    return f"""{key_lines(keys)}

Every request now needs one of these keys ('Authorization: Bearer KEY', 'api-key' or 'x-api-key'):

  curl -s {gateway}/v1/chat/completions -H "Authorization: Bearer {keys["team-a"]}" -D - \\
    -H 'content-type: application/json' -d '{{"model": "auto", "messages": [{{"role": "user", \\
"content": "Hi"}}]}}'

team-a gets a 429 with Retry-After on its 6th request in a minute (x-ratelimit-* headers count
down); team-b's responses carry x-switchman-cost-usd, a budget warning past $0.0006, and a 429
once its $0.00075 daily budget cannot cover a request. Spend: switchman usage --redis URL
"""
