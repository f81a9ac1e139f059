"""The hand-written importer offersync is measured against (issue 15).

What a competent engineer writes in an afternoon to import Everflow offers
into a campaign table: requests for the pages, jsonpath-ng for the fields
(the same ones the built-in `everflow` mapping reads), the payout ratio and
tracking append, and a psycopg COPY into a staging table followed by one
upsert that skips rows whose content did not change (so a no-change re-sync
writes no campaign row). No raw record is stored. Offers that left the feed
are paused.

    python importer.py BASE_URL API_KEY DATABASE_URL PAGE_SIZE

Prints one JSON line: {"fetched": N, "created": C, "updated": U, "paused": P}.
"""

import hashlib
import json
import sys
from decimal import ROUND_HALF_UP, Decimal

import psycopg
import requests
from jsonpath_ng.ext import parse

RATIO = Decimal("0.8")
APPEND = "sub1={click_id}&sub2={pub_id}"

FIELDS = {
    "external_id": parse("$.network_offer_id"),
    "name": parse("$.name"),
    "status": parse("$.offer_status"),
    "affiliate_status": parse("$.relationship.offer_affiliate_status"),
    "preview_url": parse("$.preview_url"),
    "tracking_url": parse("$.tracking_url"),
    "thumbnail_url": parse("$.thumbnail_url"),
    "payout": parse("$.relationship.payouts.entries[?(@.is_default == true)].payout_amount"),
    "payout_type": parse("$.relationship.payouts.entries[?(@.is_default == true)].payout_type"),
    "currency": parse("$.currency_id"),
    "countries": parse('$.relationship.ruleset.countries[?(@.targeting_type == "include")].country_code'),
    "os": parse('$.relationship.ruleset.platforms[?(@.targeting_type == "include")].label'),
    "category": parse("$.relationship.category.name"),
    "description": parse("$.html_description"),
    "kpi": parse("$.terms_and_conditions"),
    "expires_at": parse("$.date_live_until"),
}
LISTS = {"countries", "os"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns_py (
    external_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    preview_url TEXT, tracking_url TEXT, thumbnail_url TEXT,
    revenue NUMERIC, payout NUMERIC, currency TEXT, model TEXT,
    countries JSONB NOT NULL, os JSONB NOT NULL,
    category TEXT, description TEXT, kpi TEXT, expires_at TEXT,
    content_hash TEXT NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""
COLUMNS = [
    "external_id", "name", "status", "preview_url", "tracking_url", "thumbnail_url",
    "revenue", "payout", "currency", "model", "countries", "os", "category",
    "description", "kpi", "expires_at", "content_hash",
]


def first(expr, record):
    found = expr.find(record)
    return found[0].value if found else None


def row_of(record):
    values = {}
    for name, expr in FIELDS.items():
        if name in LISTS:
            values[name] = [m.value for m in expr.find(record)]
        else:
            values[name] = first(expr, record)
    status = values["status"] or "paused"
    if values["affiliate_status"] in ("pending", "rejected", "blocked"):
        status = "pending"
    revenue = Decimal(str(values["payout"])) if values["payout"] is not None else None
    payout = (revenue * RATIO).quantize(Decimal("0.01"), ROUND_HALF_UP) if revenue is not None else None
    tracking = values["tracking_url"]
    if tracking:
        tracking += ("&" if "?" in tracking else "?") + APPEND
    row = [
        str(values["external_id"]), values["name"] or "", status, values["preview_url"],
        tracking, values["thumbnail_url"], revenue, payout,
        (values["currency"] or "USD").upper(), (values["payout_type"] or "cpa").upper(),
        json.dumps(values["countries"]), json.dumps(values["os"]), values["category"],
        values["description"], values["kpi"], values["expires_at"] or None,
    ]
    digest = hashlib.sha256(json.dumps(row, default=str).encode()).hexdigest()
    return row + [digest]


def main():
    base_url, api_key, database_url, page_size = sys.argv[1:5]
    session = requests.Session()
    session.headers["X-Eflow-API-Key"] = api_key
    rows, page = [], 1
    while True:
        response = session.get(
            f"{base_url}/v1/affiliates/offersrunnable",
            params={"page": page, "page_size": page_size},
            timeout=60,
        )
        response.raise_for_status()
        body = response.json()
        offers = body.get("offers") or []
        rows.extend(row_of(o) for o in offers)
        total = (body.get("paging") or {}).get("total_count")
        if not offers or (total is not None and len(rows) >= total):
            break
        page += 1

    with psycopg.connect(database_url) as conn:
        conn.execute(SCHEMA)
        conn.execute("CREATE TEMP TABLE staging (LIKE campaigns_py INCLUDING DEFAULTS) ON COMMIT DROP")
        with conn.cursor() as cur:
            with cur.copy(f"COPY staging ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS[1:])
            cur.execute(
                f"INSERT INTO campaigns_py ({', '.join(COLUMNS)}) "
                f"SELECT {', '.join(COLUMNS)} FROM staging "
                f"ON CONFLICT (external_id) DO UPDATE SET {updates}, changed_at = now() "
                f"WHERE campaigns_py.content_hash IS DISTINCT FROM EXCLUDED.content_hash "
                f"RETURNING (xmax = 0) AS created"
            )
            written = cur.fetchall()
            created = sum(1 for (c,) in written if c)
            cur.execute(
                "UPDATE campaigns_py SET status = 'paused', changed_at = now() "
                "WHERE status <> 'paused' AND NOT EXISTS "
                "(SELECT 1 FROM staging s WHERE s.external_id = campaigns_py.external_id)"
            )
            paused = cur.rowcount
    print(json.dumps({"fetched": len(rows), "created": created,
                      "updated": len(written) - created, "paused": paused}))


if __name__ == "__main__":
    main()
