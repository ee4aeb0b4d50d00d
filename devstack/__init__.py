"""The local stack: embedded moto, the app's REST and WebSocket APIs on one port,
and the queue, stream and schedule pumps that call the app's real handlers.

Run it with ``python -m devstack`` (see devstack/server.py); tests start it
with devstack.testing.running_devstack().
"""
