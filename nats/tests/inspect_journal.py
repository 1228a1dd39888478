#!/usr/bin/env python3
"""Reads the journal the way an operator does with the `nats` CLI — with an independent
client (nats-py) — and checks that it is what README.md "Inspecting the journal" says:

- the stream: subjects `ledger.>`, direct gets allowed, deletes and purges denied;
- every message: a subject `ledger.<aggregate>.<id>` carrying only its aggregate's event
  types; headers `Nats-Msg-Id` = the body's `event_id`, `Ledger-Event-Type` = its `type`,
  `Ledger-Job-Id` = its `job_id`, `Content-Type: application/json`, a W3C `traceparent`,
  and the server's `Nats-Batch-Id`; a JSON body with the envelope's fields;
- `--last-for ledger.account.<id>`: the account's current state in the last message.

Usage: inspect_journal.py NATS_URL STREAM ACCOUNT_ID EXPECTED_BALANCE
Prints one summary line; exits 1 listing every mismatch.
"""

import asyncio
import json
import re
import sys

import nats

EVENTS = {
    "account": {
        "account_opened", "funds_deposited", "funds_withdrawn", "transfer_sent",
        "transfer_received", "balance_set", "order_charged", "hold_placed", "hold_captured",
        "hold_voided",
    },
    "order": {"order_placed", "order_paid", "order_rejected"},
    "hold": {"hold_placed", "hold_captured", "hold_voided"},
    "batch": {"batch_submitted", "batch_part_applied"},
    "job": {"job_failed"},
    "idem": {"idempotency_recorded"},
}
SUBJECT = re.compile(r"^ledger\.(account|order|hold|batch|job|idem)\.[A-Za-z0-9_-]+(\.\d+\.\d+)?$")
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$")
ENVELOPE = ("event_id", "type", "schema", "occurred_at", "job_id")


def check_message(msg, problems):
    where = f"message {msg.seq} on {msg.subject}"
    match = SUBJECT.match(msg.subject)
    if not match:
        problems.append(f"{where}: subject is not ledger.<aggregate>.<id>")
        return
    headers = msg.headers or {}
    try:
        body = json.loads(msg.data)
    except ValueError as e:
        problems.append(f"{where}: body is not JSON: {e}")
        return
    for field in ENVELOPE:
        if field not in body:
            problems.append(f"{where}: body lacks {field}")
    if body.get("type") not in EVENTS[match.group(1)]:
        problems.append(f"{where}: {body.get('type')} is not a {match.group(1)} event")
    expected = {
        "Nats-Msg-Id": body.get("event_id"),
        "Ledger-Event-Type": body.get("type"),
        "Ledger-Job-Id": body.get("job_id"),
        "Content-Type": "application/json",
    }
    for name, value in expected.items():
        if headers.get(name) != value:
            problems.append(f"{where}: header {name} is {headers.get(name)!r}, not {value!r}")
    if not TRACEPARENT.match(headers.get("traceparent", "")):
        problems.append(f"{where}: traceparent {headers.get('traceparent')!r} is not W3C")
    if not headers.get("Nats-Batch-Id"):
        problems.append(f"{where}: no Nats-Batch-Id (not an atomic batch)")


async def main(url, stream, account_id, expected_balance):
    problems = []
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        config = info.config
        if config.subjects != ["ledger.>"]:
            problems.append(f"stream subjects are {config.subjects}")
        for flag in ("allow_direct", "deny_delete", "deny_purge"):
            if not getattr(config, flag):
                problems.append(f"stream {flag} is off")
        last = info.state.last_seq
        traced = set()
        for seq in range(1, last + 1):
            msg = await js.get_msg(stream, seq=seq, direct=True)
            check_message(msg, problems)
            traceparent = (msg.headers or {}).get("traceparent", "")
            traced.add(traceparent[3:35])
        current = await js.get_last_msg(stream, f"ledger.account.{account_id}", direct=True)
        state = json.loads(current.data).get("state", {})
        if state.get("balance") != expected_balance:
            problems.append(f"last for ledger.account.{account_id}: state {state}")
    finally:
        await nc.close()
    for problem in problems:
        print(problem)
    print(
        f"journal: {last} messages read with nats-py, {len(traced)} trace(s), "
        f"{account_id} balance {state.get('balance')}, {len(problems)} problem(s)"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))))
