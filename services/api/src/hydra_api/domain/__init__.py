"""The API's domain layer: the SQL and the rules behind the routers.

A router parses the request, authorises the caller, calls one function here and shapes the
answer; the function owns the queries, decides which rows count and what is allowed, and
raises ``hydra_common.errors`` (mapped to HTTP once, in ``main``). Functions that change
something commit their own transaction, so a rule and its write never part. The model life
cycle itself stays in ``hydra_common.lifecycle``, which the trainer's CLI shares.
"""
