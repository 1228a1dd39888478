"""schemathesis hooks of `scripts/fuzz` (loaded with SCHEMATHESIS_HOOKS=fuzz_hooks).

- Unknown headers. negative_data_rejection sends, among its schema-violating requests, some
  whose only violation is an extra header no operation declares
  (`x-schemathesis-unknown-property`), and expects them refused. HTTP does not work that way: a
  recipient ignores header fields it does not recognize (RFC 9110, section 5.1), and proxies,
  tracers and client libraries add some (traceparent, x-request-id, user-agent, ...). Those cases
  alone are dropped; every other invalid request (bad ids, amounts, cursors, bodies, malformed
  declared headers) must still be refused.
- Ledger-Min-Seq. A valid value the journal has not reached is answered `503
  projection_lagging` after a wait, by design (read-your-writes, tested end to end in
  projector/tests/read_side); so a *valid* generated value is replaced by 0, and an invalid one
  is sent as generated and must be refused with 400.
- The live feed (`GET /v1/accounts/{id}/events`) never ends by itself, and schemathesis reads
  every answer to its end. The fuzzed stack (bench's `stack` binary) ends each feed stream
  after one second (`feed_stream_max_s`), so a generated request that opens a real feed costs
  a second and the run stays bounded; its invalid requests are refused at once like any other.
  No hook is needed for it, and none drops its cases: they are all checked.
"""

import schemathesis

UNKNOWN_HEADER = "x-schemathesis-unknown-property"
MIN_SEQ = "ledger-min-seq"
# What the query API's document promises for Ledger-Min-Seq: an int64 from 0.
MIN_SEQ_MAX = 2**63 - 1


@schemathesis.hook
def filter_case(ctx, case):
    headers = case.headers or {}
    return not any(name.lower().startswith(UNKNOWN_HEADER) for name in headers)


def _valid_min_seq(value):
    text = str(value)
    return text.isdigit() and int(text) <= MIN_SEQ_MAX


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    # Before every call of every phase (the coverage phase's boundary values, e.g. 2^63 - 2,
    # do not pass through the generation hooks).
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == MIN_SEQ and _valid_min_seq(headers[name]):
            headers[name] = "0"
