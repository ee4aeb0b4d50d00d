"""Hostile failure text and the checks every text filed on GitHub must pass (issue 18, findings 1 to 4).

`SECRETS` holds one sample of every secret shape the ops scan must redact, each with `fragments`: pieces
of the secret that survive the old digit masking of "Normalized" (so a check for them fails on code that
only masks digits). `problems(text)` lists what makes a filed title, body or comment unsafe.
"""
from __future__ import annotations

import re

GITHUB_BODY_LIMIT = 65_536
GITHUB_TITLE_LIMIT = 256

# shape -> (text holding the secret, fragments that must not reach GitHub or an ops group)
SECRETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "aws-access-key-id": ("s3 denied for AKIAIOSFODNN7EXAMPLE", ("IOSFODNN", "EXAMPLE")),
    "aws-session-key-id": ("sts creds ASIAY34FZKBOKMUTVV7A expired", ("FZKBOKMUTVV",)),
    "aws-secret-key-pair": ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY rejected",
                            ("wJalrXUtnFEMI", "bPxRfiCYEXAMPLEKEY")),
    "aws-secret-key-standalone": ("signing with wJalrXUtnFEMI/K7MDENG/bPxRfiCYZXAMPLEKEY failed",
                                  ("wJalrXUtnFEMI", "bPxRfiCYZXAMPLEKEY")),
    "jwt": ("401 for eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZG1pbiJ9.dozjgNryPJjVmNHlwNXgLnIPlFUPTHsRU",
            ("hbGciOiJIUzI", "eyJzdWIiOiJhZG", "dozjgNryPJjVmNHlwNXgLnIPlFUPTHsRU")),
    "github-ghp": ("push failed with ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZabcdefghij", ("aBcDeFgHiJkLmNoPqRsTuVwXyZ",)),
    "github-gho": ("oauth gho_ZyXwVuTsRqPoNmLkJiHgFeDcBazyxwvutsrq", ("ZyXwVuTsRqPoNmLkJiHgFeDcBa",)),
    "github-ghu": ("app user ghu_QwErTyUiOpAsDfGhJkLzXcVbNmqwertyuiop", ("QwErTyUiOpAsDfGhJkLzXcVbNm",)),
    "github-ghs": ("installation ghs_MnBvCxZlKjHgFdSaPoIuYtReWqmnbvcxzlkj", ("MnBvCxZlKjHgFdSaPoIuYtReWq",)),
    "github-ghr": ("refresh ghr_PlOkMiJnUhBgYvTfCrDxEsZwAqplokmijnuh", ("PlOkMiJnUhBgYvTfCrDxEsZwAq",)),
    "github-pat": ("clone with github_pat_ABCDEFGHIJKLMNOPQRSTUV_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi",
                   ("ABCDEFGHIJKLMNOPQRSTUV_abcdefghijklmnop", "WXYZabcdefghi")),
    "pem-block": ("bad key -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAuSUfVLPHCozMxHMolgOEePzNmtRgeLezVffAtgun\n"
                  "VTLwonLRnrqIzWyWRQkrmBLjTKEnuqKhbwKfBstIsbMYZkpgnTxKzzzz\n-----END RSA PRIVATE KEY----- end",
                  ("MIIEowIBAAKCAQEAuSUfVLPHCozMxHMolgOEePzNmtRgeLezVffAtgun", "VTLwonLRnrqIzWyWRQkrmBLjTKE")),
    "pem-lone-header": ("key cut short -----BEGIN OPENSSH PRIVATE KEY-----\nbBlbnNzaCrZXktdjEAAAAABGvbmUAAAAEbmZQAAAAAAAAAB",
                        ("bBlbnNzaCrZXktdjEAAAAABGvbmUAAAAEbmZQ", "BEGIN OPENSSH PRIVATE KEY-----\nbBlbn")),
    "api-key": ("auth failed for cpk.01JD8ZQ3K4M5N6P7Q8R9S0T1V2.ZmvYmFyYmFcXVMTIzNDUNzgMGFiYlZmdoQWxYz",
                ("ZmvYmFyYmFcXVMTIzNDUNzgMGFiYlZmdoQWxYz",)),
    "password-pair": ("connect postgres://app@db?password=hunterTwoSecret&sslmode=require failed", ("hunterTwoSecret",)),
    "secret-pair": ("config secret=VerySecretValue loaded", ("VerySecretValue",)),
    "token-pair": ("webhook token=TokenValueXyz rejected", ("TokenValueXyz",)),
    "api-key-pair": ("vendor api_key=AKlivePqrstuvw refused", ("AKlivePqrstuvw",)),
    "json-password": ('bad config {"user": "app", "password": "JsonHunterSecret"}', ("JsonHunterSecret",)),
    "bearer": ("GET /v1 -H 'Authorization: Bearer opaqueBearerValueXyz' -> 401", ("opaqueBearerValueXyz",)),
}

# Markdown and HTML a tenant might write into an error message.
HOSTILE = ("@octocat and @acme/security-team please look. Fixes #1, closes acme/platform#2, see GH-3 and #45\n"
           "- list item that breaks out\n\n# Heading\n<img src=x onerror=alert(1)> <script>alert(2)</script>"
           "<details><summary>open</summary>hidden</details> ![pixel](https://evil.example/p.png) "
           "[click](javascript:alert(3)) <a href=\"https://evil.example\">x</a> ````\n```\nfence breakout")

_MENTION = re.compile(r"(?<![A-Za-z0-9`\u200d])@[A-Za-z0-9]")
_REFERENCE = re.compile(r"#\d|\bGH-\d", re.IGNORECASE)
_TAG = re.compile(r"<[A-Za-z/!?]")
_LINKS = re.compile(r"!\[|\]\(|javascript:|https?://evil", re.IGNORECASE)


def problems(text: str, limit: int = GITHUB_BODY_LIMIT, first_line_comment: bool = False) -> list[str]:
    """What is wrong with a text filed on GitHub: a secret fragment, a live mention or reference, raw HTML,
    a link or image, or a length over `limit`. `first_line_comment`: the first line is the scan's own marker."""
    found = []
    for shape, (_, fragments) in SECRETS.items():
        found += [f"secret {shape}: {f!r}" for f in fragments if f in text]
    checked = text.split("\n", 1)[1] if first_line_comment and "\n" in text else text
    if first_line_comment:
        first = text.split("\n", 1)[0]
        if not re.fullmatch(r"<!-- ops-fingerprint: [0-9a-f]{16} [0-9a-f]{32} -->", first):
            found.append(f"first line is not the scan's marker: {first[:100]!r}")
    for name, pattern in (("mention", _MENTION), ("reference", _REFERENCE), ("html", _TAG), ("link", _LINKS)):
        for m in pattern.finditer(checked):
            found.append(f"{name}: {checked[max(0, m.start() - 20):m.end() + 20]!r}")
    if len(text) > limit:
        found.append(f"{len(text)} characters, over {limit}")
    return found
