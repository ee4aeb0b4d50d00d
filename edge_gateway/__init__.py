"""The edge gateway: a local process beside the agents that buffers their data in SQLite, uploads it to
the control plane's POST /ingest, and runs commands that arrive over the control plane's WebSocket.

Not part of the Lambda app (chalicelib/fanout is the control plane's WebSocket fan-out). Run it with
`make gateway` or `python -m edge_gateway`; see docs/GATEWAY.md.
"""
