"""Schemathesis hooks for tests/http-conformance.sh.

They adjust generated requests where JSON Schema cannot say what
http.md requires, and keep the run bounded in time. They never turn a request
that should be rejected into one that should be accepted, or the reverse.
"""

import schemathesis

# http.md §4.2: the largest `timeout_s` / `acquire_timeout_s`.
MAX_SECS = 9223372036
WAIT_MEMBERS = ("timeout_s", "acquire_timeout_s")


def _integral_floats_to_ints(value):
    """`10.0` -> `10`, recursively.

    JSON Schema's `integer` includes numbers with a zero fraction, so
    Schemathesis may send `1176.0` as a valid integer; http.md §4.2 requires
    integers without fraction or exponent and answers `10.0` with 400 (the
    server's JSON parser keeps the distinction). JSON Schema cannot express
    that rule, so the value is sent the way the spec spells integers. The
    change never alters validity under the document's schema.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral_floats_to_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_floats_to_ints(v) for v in value]
    return value


@schemathesis.hook
def before_call(context, case, kwargs):
    if isinstance(case.body, (dict, list)):
        case.body = _integral_floats_to_ints(case.body)
    if isinstance(case.query, dict):
        case.query = _integral_floats_to_ints(case.query)
    if not isinstance(case.body, dict):
        return
    # A valid wait never ends before its timeout when nothing grants it
    # (a blocking pop on an empty list, a barrier of 2, a lock the fuzzer
    # itself holds): up to 292 years. Valid waits become tries (0), which
    # are equally valid and answer at once.
    for name in WAIT_MEMBERS:
        if _valid_secs(case.body.get(name), above=0):
            case.body[name] = 0
    # Grants are held by the one session every request uses, so a lease of
    # years would keep its key busy for the rest of the run, and the
    # stateful phase's acquire -> release/renew links would find only
    # `{"status":"timeout"}`. Leases become 1 s (the script also sets
    # --default-lease-ttl 1 for omitted, null and 0).
    if _valid_secs(case.body.get("lease_ttl_s"), above=1):
        case.body["lease_ttl_s"] = 1
    # Out-of-range values are left as generated, so they are still rejected.


def _valid_secs(v, above):
    return isinstance(v, int) and not isinstance(v, bool) and above < v <= MAX_SECS
