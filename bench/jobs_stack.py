"""The app exactly as app.py defines it, for `python -m devstack --app bench.jobs_stack`.

Importing it first makes moto's transactions and GSI queries cost what they
touch instead of a deep copy or a sort of every item of the table
(bench/jobs_moto.py), so that the jobs bench and end-to-end tests measure the app, not a local-stack
slowdown that grows with every job created. The patch applies in the devstack
process, where the embedded moto runs.
"""
if __name__ == "__main__":  # `make bench` runs every bench/*.py: this one is a module, not a bench
    print("bench/jobs_stack.py is an app module: python -m devstack --app bench.jobs_stack")
    raise SystemExit(0)

from bench.jobs_moto import patch_index_queries, patch_transactions  # noqa: E402

patch_transactions()
patch_index_queries()

from app import app, local_seed  # noqa: E402,F401
