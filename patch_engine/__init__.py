"""The patch engine: structured file edits, pure (no AWS, nothing of chalicelib).

One package used by three callers: the control plane's patches domain (apply a batch to a
workspace snapshot), the workspaces domain (the path rule) and the agent CLI
(`python -m agent patch`, on local files). It reaches Lambda as a top-level package beside
`chalicelib/` (the Makefile links it into `vendor/`, which `chalice package` bundles).

    engine.py   apply_batch: the operations, all or nothing, bounded; decode, split_lines, sha256
    markers.py  the marker checker (refuses a pattern before it is compiled)
    paths.py    normalize_path: the one path rule (PathError)
    bridge.py   the files-to-patches bridge (files_to_batch, resolve) and the submit-path
                checks of a batch's operations (operation_problems)

import-linter holds it pure: it imports nothing of chalicelib, boto3 or botocore.
"""
