"""Secrets out of text that leaves the building: every known secret shape becomes `[redacted:<shape>]`.

Pure (no AWS, no settings): the ops scan runs it on every failure before the
failure is grouped, stored or filed (chalicelib/ops/rules.py), so a secret
that a tenant's job or log wrote into an error message reaches neither the
ops group in DynamoDB, the operators' API, Bedrock nor a GitHub issue. The
same shapes as the local stack's log filter (devstack/redact.py, which must
not import chalicelib) and more:

  aws-access-key-id   AKIA/ASIA/AROA/... followed by 16 of [A-Z0-9]
  aws-secret-key      40 base64 characters after aws_secret_access_key / SecretAccessKey / aws_secret,
                      or standalone when unambiguous (mixed case, a digit, no longer run around it)
  jwt                 eyJ<base64url>.<base64url>.<base64url> (also unsigned, with an empty signature)
  github-token        ghp_ gho_ ghu_ ghs_ ghr_ (classic) and github_pat_ (fine-grained)
  private-key         -----BEGIN ... PRIVATE KEY----- through its END line; a lone header takes the
                      base64 lines that follow it (a key cut short is still a key)
  api-key             this product's keys, cpk.<keyId>.<secret>: the public keyId stays (it names the key)
  bearer              Authorization: Bearer <token>, Basic <credentials>
  value             name=value, name: value, "name": "value" for names holding password, passwd, pwd,
                      passphrase, secret, token, api_key, apikey, access_key, private_key, credential(s),
                      authorization, cookie (db_password=, AWS_SESSION_TOKEN=, "clientSecret": ...)

Every pattern is linear (no nested unbounded repetition; the PEM body is
bounded), and runs only when a literal it needs is in the text (`cpk.`,
`ghp_`, `eyJ`, `AKIA`, `password`, ...): an ordinary 110-character message
costs about 20 us, a 2.7 KB traceback about 0.25 ms, 190 KB about 22 ms
(bench/ops_redaction.py).
"""
from __future__ import annotations

import re

MASK = "[redacted:{}]"

_B64 = r"A-Za-z0-9+/"
_SECRET_NAMES = (r"(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
                 r"|credentials?|authorization|cookie)")
# A name that holds a secret, from its secret word on (db_password, AWS_SESSION_TOKEN, clientSecret: what
# comes before the word stays as it is, so the match starts at the word and costs linear time).
_NAME = rf"{_SECRET_NAMES}[A-Za-z0-9_\-]{{0,40}}"

_PEM_BEGIN = re.compile(r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
# What follows a header without its END line: the base64 lines of a key cut short (also JSON-escaped, \\n).
_PEM_BODY = re.compile(r"(?:(?:\s|\\[nr])*+[A-Za-z0-9+/=:,\-]{16,}+)*+(?:(?:\s|\\[nr])++[A-Za-z0-9+/=]++)?")
PEM_MAX = 20_000  # the longest private key block looked for (an RSA 8192 key is about 6,500 characters)

_NAME_TRIGGERS = ("password", "passwd", "pwd", "passphrase", "secret", "token", "apikey", "api_key", "api-key",
                  "accesskey", "access_key", "access-key", "privatekey", "private_key", "private-key", "credential",
                  "authorization", "cookie")

# (pattern, replacement, triggers): a pattern runs only when one of its triggers (lower case) is in the
# text, so ordinary text (most failures) costs a few substring searches instead of a dozen regex scans.
_PATTERNS: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    # This product's API keys: keep the keyId, as the local stack's log does.
    (re.compile(r"\b(cpk\.[0-9A-Za-z]{10,40}\.)[A-Za-z0-9_\-]{4,}"), r"\g<1>" + MASK.format("api-key"), ("cpk.",)),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9_]{16,255}|github_pat_[A-Za-z0-9_]{20,255})"), MASK.format("github-token"),
     ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*"), MASK.format("jwt"), ("eyj",)),
    (re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AROA|AIDA|AGPA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])"),
     MASK.format("aws-access-key-id"), ("akia", "asia", "aroa", "aida", "agpa", "aipa", "anpa", "anva", "abia", "acca")),
    (re.compile(r"((?:aws_?secret(?:_?access)?_?key|secret_?access_?key|aws_?secret)[\"']?\s*[:=]\s*[\"']?)"
                rf"[{_B64}]{{40}}(?![{_B64}])", re.IGNORECASE), r"\g<1>" + MASK.format("aws-secret-key"), ("secret",)),
    # An Authorization header's value, whatever its scheme.
    (re.compile(r"(\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:(?:Bearer|Basic|Digest|token)\s+)?)"
                r"(?!\[redacted)(?!(?:Bearer|Basic|Digest|token)\b)"
                r"[A-Za-z0-9_\-.~+/=]{4,}", re.IGNORECASE), r"\g<1>" + MASK.format("bearer"), ("authorization",)),
    (re.compile(r"(\bBearer\s+)(?!\[redacted)[A-Za-z0-9_\-.~+/=]{8,}", re.IGNORECASE), r"\g<1>" + MASK.format("bearer"),
     ("bearer",)),
    # Basic credentials are base64: a digit or a symbol in them tells them from a word ("Basic authentication").
    (re.compile(r"(\bBasic\s+)(?=[A-Za-z0-9_\-.~+/=]*[0-9_\-.~+/=])[A-Za-z0-9_\-.~+/=]{8,}"),
     r"\g<1>" + MASK.format("bearer"), ("basic",)),
    # "name": "value" (JSON and Python reprs).
    (re.compile(rf"({_NAME}[\"']\s*:\s*[\"'])(?!\[redacted)[^\"'\n]{{1,2000}}", re.IGNORECASE),
     r"\g<1>" + MASK.format("value"), _NAME_TRIGGERS),
    # name=value, name: value (query strings, env dumps, YAML, log lines).
    (re.compile(rf"({_NAME}[\"']?\s*(?:=|:\s)\s*[\"']?)(?!\[redacted)(?!Bearer\b|Basic\b)[^\s&,;\"'<>)}}\]]{{1,2000}}",
                re.IGNORECASE), r"\g<1>" + MASK.format("value"), _NAME_TRIGGERS),
]

# A standalone AWS secret key: a run of exactly 40 base64 characters (no padding) with upper and lower case
# and a digit (a git SHA is lower-case hex; a path is split by dots and slashes into shorter words... or
# a slash-joined run without a digit). Runs are found from their start only (the lookbehind), so the scan
# is linear; the rest is checked in Python.
_BASE64_RUN = re.compile(rf"(?<![{_B64}=])[{_B64}=]{{40,}}")


def _standalone_secret(match: re.Match[str]) -> str:
    run = match.group()
    if (len(run) == 40 and "=" not in run and any(c.isupper() for c in run) and any(c.islower() for c in run)
            and any(c.isdigit() for c in run)):
        return MASK.format("aws-secret-key")
    return run


# Past this, a text is cut before it is redacted (the cut is at a line end, so no secret is split by it
# except on a single giant line, and then the last 200 characters are dropped too).
MAX_INPUT = 1_000_000


def redact(text: str) -> str:
    """`text` with every secret of a known shape replaced by `[redacted:<shape>]`."""
    if len(text) > MAX_INPUT:
        cut = text.rfind("\n", 0, MAX_INPUT)
        text = text[:cut] if cut > 0 else text[:MAX_INPUT - 200]
    lower = text.lower()
    if "private key" in lower:
        text = _redact_private_keys(text)
    for pattern, replacement, triggers in _PATTERNS:
        if any(t in lower for t in triggers):
            text = pattern.sub(replacement, text)
    return _BASE64_RUN.sub(_standalone_secret, text)


def _redact_private_keys(text: str) -> str:
    """PEM private keys (a block through its END line, or a header and the key lines after it); by hand, so a
    text of many headers costs one bounded search for END per header, not a regex backtracking over it."""
    out: list[str] = []
    position = 0
    mask = MASK.format("private-key")
    while True:
        begin = _PEM_BEGIN.search(text, position)
        if begin is None:
            out.append(text[position:])
            return "".join(out)
        out.append(text[position:begin.start()])
        end = _PEM_END.search(text, begin.end(), min(len(text), begin.end() + PEM_MAX))
        if end is not None:
            position = end.end()
        else:
            body = _PEM_BODY.match(text, begin.end())
            position = body.end() if body else begin.end()
        out.append(mask)
