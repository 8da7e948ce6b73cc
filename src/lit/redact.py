"""Secrets out of everything lit writes: the DB, the notes, the pages, the PR text and the terminal.

Two kinds of rule, as the secret scanners people trust have them (gitleaks, detect-secrets):
provider patterns, whose prefix says what they are (`sk-ant-`, `ghp_`, `AKIA`, a JWT's `eyJ`), and
keyword rules for everything else: a value given to a name that says it is secret (`DB_PASSWORD=`,
`"api_key": "..."`, `--password=`, `X-Auth:`, `?key=`), kept only when the value looks like a
credential and not like code (`token_count = 3`, `password_field = forms.CharField()` survive).
Both are alternatives of ONE regular expression, so a text is scanned once; a text holding none of
the rules' hints (lowercased) is not scanned at all. A match becomes `[REDACTED:kind]`; the name,
quote and `=` before a labelled value are kept. Redaction is idempotent and keeps JSON structure.

`Redactor.text` and `Redactor.obj` are pure functions of their input (for one Redactor): a caller
may cache their result by the content's hash, keyed with `Redactor.fingerprint`; CachedRedactor
does so in memory, for the recorder, which meets the same content several times.
Users add patterns in lit's config (`[redact] patterns = ["..."]`).
"""

from __future__ import annotations

import functools
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

MARK = "[REDACTED:{}]"

# Each rule: (kind, triggers, pattern, check). The triggers are lowercase literals: one scan of the
# lowercased text finds them all at once, and a rule's pattern is then tried only where one of its
# triggers starts (`match`, never a scan of its own). A pattern starts with its trigger.
# Provider patterns: the whole match is the secret.
PROVIDERS: list[tuple[str, tuple[str, ...], str]] = [
    ("private-key", ("-----begin",), r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
                                      r"(?:-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----|\Z)"),
    ("anthropic-key", ("sk-",), r"\bsk-ant-[a-z]{2,8}\d{2}-[\w-]{20,1024}"),
    ("openai-key", ("sk-",), r"\bsk-(?:proj|svcacct|admin|None)-[\w-]{20,1024}|\bsk-[A-Za-z0-9]{32,1024}(?![\w-])"),
    ("github-token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
     r"\b(?:gh[pousr]_[A-Za-z0-9]{36,1024}|github_pat_\w{50,1024})"),
    ("gitlab-token", ("glpat-",), r"\bglpat-[\w-]{20,1024}"),
    ("slack-token", ("xox", "xapp-"), r"\bxox[abposre]-[A-Za-z0-9-]{10,1024}|\bxapp-\d-[A-Za-z0-9-]{10,1024}"),
    ("slack-webhook", ("hooks.slack.com/",), r"hooks\.slack\.com/services/[A-Za-z0-9/_-]{1,1024}"),
    ("aws-access-key", ("akia", "asia", "abia", "acca", "a3t"), r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b"),
    ("google-api-key", ("aiza",), r"\bAIza[\w-]{35}"),
    ("stripe-key", ("sk_live_", "rk_live_", "sk_test_", "rk_test_", "whsec_"),
     r"\b(?:sk|rk)_(?:live|test)_[0-9a-zA-Z]{20,1024}|\bwhsec_[0-9a-zA-Z]{24,1024}"),
    ("npm-token", ("npm_",), r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("pypi-token", ("pypi-",), r"\bpypi-AgE[\w-]{50,1024}"),
    ("huggingface-token", ("hf_",), r"\bhf_[A-Za-z]{34}\b"),
    ("sendgrid-key", ("sg.",), r"\bSG\.[\w-]{22}\.[\w-]{43}\b"),
    ("google-oauth-token", ("ya29.",), r"\bya29\.[\w-]{20,1024}"),
    ("jwt", ("eyj",), r"\beyJ[\w-]{8,8192}\.eyJ[\w-]{8,65536}\.[\w-]{0,8192}={0,2}"),
]

# Keyword rules: only the value (group `v`) is the secret, and a check decides from the match and
# the text around it (the name before the keyword) whether it is one.
# Not `signature`: a thinking block's signature (and a webhook's HMAC) is the sender's opaque proof,
# sent back as it came, never a credential; `sig` stays for an Azure SAS token's `&sig=`.
_KW = (r"(?P<kw>(?i:pass(?:word|wd|phrase)?|secrets?|token|keys?|auth(?:ori[sz]ation)?|credentials?|cookie"
       r"|sig))")
_KW_TRIGGERS = ("pass", "secret", "token", "key", "auth", "credential", "cookie", "sig")
_Q = r"\\?[\"'`]"  # a quote, maybe escaped inside JSON text
CONTEXTUAL: list[tuple[str, tuple[str, ...], str]] = [
    ("bearer-token", ("bearer",), r"(?i:bearer)[ \t]{1,8}(?P<v>[\w.~+/-]{16,4096}={0,2})"),
    # scheme://user:password@host (also with \/ as JSON escapes it)
    ("url-password", ("://", r":\/\/"), r":\\?/\\?/[^\s:/@\"'\\<>]{1,100}:(?P<v>[^\s/@\"'\\<>]{1,200})@"),
    # name = "value", name: 'value', "name": "value", name := `value` (code, JSON, YAML, .env)
    ("secret", _KW_TRIGGERS, _KW + r"(?:" + _Q + r")?[ \t]{0,8}(?::[ \t]{0,4}[A-Za-z_][\w\[\].,|]{0,40}"
                             r"(?: \| [\w\[\].,]{1,40}){0,4}[ \t]{0,4})?"
                             r"(?:=|:=|:|=>)[ \t]{0,8}" + _Q + r"(?P<v>[^\"'`\\\r\n]{1,300})" + _Q),
    # NAME=value (.env, a shell line), --password=value, ?api_key=value
    ("secret", _KW_TRIGGERS, _KW + r"(?P<suffix>[A-Z0-9_]{0,40})=(?P<v>[^\s\"'`\\&;,)#<>]{1,300})"),
    # curl -u user:password, --user=user:password
    ("password", ("-u ", "-u=", "--user"), r"(?:-u|--user)[ =]{1,4}[\"']?[^\s:\"'@/]{1,100}:"
                                            r"(?P<v>[^\s\"'@]{1,200})"),
    # --password value
    ("secret", _KW_TRIGGERS, _KW + r"[ \t]{1,8}(?P<v>[^\s\"'`\\;,)-][^\s\"'`\\;,)]{0,300})"),
    # X-Auth: value, Authorization: Basic value, Cookie: a=b (HTTP headers in any text)
    ("auth-header", _KW_TRIGGERS, _KW + r"[ \t]{0,8}:[ \t]{0,8}(?:(?P<scheme>Basic|Bearer|Token|Digest|Negotiate"
                                  r"|[A-Z][A-Za-z0-9-]{1,30})[ \t]{1,8})?"
                                  r"(?P<v>[^\s\"'`\\,;]{4,300}(?:;[ \t]{0,8}[^\s\"'`\\,;]{1,300}){0,50})"),
]
# An AWS secret access key on its own has no trigger: 40 base64 characters, found by a scan of
# their own (a character class, as fast as the trigger scan), then checked for randomness.
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")

# How much a name says "secret", by its ending. 3: any value but a placeholder or a field name is
# one (even `letmein`); 2: a value with a digit or a symbol in it is one (`API_KEY = "cygwin"` is
# not); 1: the word is as often an ordinary one (`sort_key`, `token`), so the value must look random.
SECRET_NAMES = ("password", "passwd", "passphrase", "secret", "secrets", "credential", "credentials",
                "client_secret")
KEY_NAMES = ("api_key", "apikey", "access_key", "secret_key", "private_key", "auth_key", "auth_token",
             "access_token", "refresh_token", "id_token", "session_token", "bot_token", "x_auth",
             "authorization", "authorisation", "signing_key", "master_key", "encryption_key")
_PLACEHOLDER = re.compile(r"(?i)^(?:[\[$<{%]|\*+$|x+$|\.+$|(?:none|null|nil|true|false|undefined|changeme|"
                          r"example|redacted|required|optional|string|str|bytes|int|env|stdin|-)$)")
_IDENT = re.compile(r"[a-z_][a-z0-9_]*|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?:\(\))?|[a-z]+(?:-[a-z]+)*|[A-Z_][A-Z0-9_]*")
_SECRET_WORDS = ("pass", "secret", "token", "key", "auth", "cred", "cookie", "sig")


# A file name, a relative path, a %-format: not a credential even when mixed letters and digits.
_FILE_NAME = re.compile(r"\.[A-Za-z]{1,5}$|\.\.|^\.|/.*\.|%[-#0-9.]*[sdfrxi]")


def _entropy(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in (s.count(ch) for ch in set(s)))


def looks_random(value: str, min_len: int = 12) -> bool:
    """A generated credential, not a word, a number, a file name or an identifier."""
    if len(value) < min_len or not re.fullmatch(r"[A-Za-z0-9+/=_~%.-]+", value) or _FILE_NAME.search(value):
        return False
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    return has_digit and has_alpha and _entropy(value) >= 3.0


def _name_before(s: str, start: int) -> tuple[str, int]:
    """The name that ends at `start` (letters, digits, `_`, `-`, `.`), and where it begins."""
    i = start
    while i > 0 and start - i < 80 and (s[i - 1].isalnum() or s[i - 1] in "_-."):
        i -= 1
    if i > 0 and s[i - 1] == "\\" and s[i] in "nrt":  # after a \n in JSON text
        i += 1
    return s[i:start], i


def _strength(name: str) -> int:
    """3, 2, 1 (see SECRET_NAMES), or 0: not a secret's name."""
    n = name.lower().replace("-", "_").replace(".", "_")
    if n.endswith(SECRET_NAMES):
        return 3
    if n.endswith(KEY_NAMES) or name.isupper() and n.endswith(("_key", "_keys", "_token", "_auth")):
        return 2
    return 1 if n.endswith(("token", "key", "keys", "auth", "sig", "cookie")) else 0


def _plausible(value: str, strength: int) -> bool:
    """Is `value`, given to a name of this strength, a secret rather than code or a placeholder?"""
    v = value.strip()
    if not v or "[REDACTED:" in v or _PLACEHOLDER.match(v):
        return False
    if strength <= 1:
        return strength == 1 and looks_random(v)
    if sum(c.isalnum() for c in v) < 2:
        return False
    if len(v) < 4 or any(c.isspace() for c in v) or re.fullmatch(r"[\d.]+", v):
        return False
    if not any(c.isdigit() for c in v):
        # A field or setting named after the secret (`password_field = "password"`), a constant
        # (`KEY = OTHER_KEY`), or for a key's name, a plain word (`BYTES_KEY = 'cygwin'`).
        if _IDENT.fullmatch(v) and (any(w in v.lower() for w in _SECRET_WORDS) or v.isupper()):
            return False
        if strength == 2 and re.fullmatch(r"[a-z_.-]+", v):
            return False
    return True


# --- the checks of the keyword rules: the kind to redact as, or None ---------------------------


def _check_bearer(m: re.Match, s: str, v: str) -> str | None:
    return "bearer-token" if looks_random(v, 16) or len(v) >= 24 else None


def _check_url(m: re.Match, s: str, v: str) -> str | None:
    if _PLACEHOLDER.match(v) or v.lower() in ("pass", "password", "passwd", "pwd", "pw", "secret", "token"):
        return None  # https://user:pass@host in documentation
    return "url-password"


def _check_quoted(m: re.Match, s: str, v: str) -> str | None:
    prefix, _ = _name_before(s, m.start())
    name = prefix + m.group("kw")
    if name.isupper() and s.startswith("=", m.end("kw")):
        v = v.replace(" ", "_")  # X_SECRET="two words" in a .env file: spaces and all
    return _kind(name) if _plausible(v, _strength(name)) else None


def _check_assigned(m: re.Match, s: str, v: str) -> str | None:
    suffix = m.group("suffix") or ""
    prefix, begin = _name_before(s, m.start())
    name = prefix + m.group("kw") + suffix
    if "[REDACTED:" in v or _PLACEHOLDER.match(v):
        return None
    if begin >= 1 and s[begin - 1] in "?&" and not suffix:  # ?api_key=... in a URL
        strength = _strength(name)
        return "query-secret" if strength >= 2 and len(v) >= 4 or looks_random(v, 8) else None
    if re.fullmatch(r"[\d.]{1,9}", v):
        return None
    bare = name.lstrip("-")
    if name.startswith("-") or begin >= 1 and s[begin - 1] == "-":  # --password=value
        strength = _strength(bare)
        ok = not suffix and (strength >= 2 and _plausible(v, strength) or strength == 1 and looks_random(v, 8))
        return _kind(bare) if ok else None
    if bare.isupper() and bare[:1].isalpha():
        # An environment variable (.env, `export`, `env X=... cmd`): its value is the secret when
        # the name says so (SECRET_KEY_BASE too), else when it looks random (CACHE_KEY=...).
        base = prefix + m.group("kw")
        strength = max(_strength(base), _strength(bare))
        if strength >= 2:
            return _kind(bare) if _plausible(v, strength) else None
        return _kind(bare) if looks_random(v, 8) else None
    # a lowercase name=value is as often code (`connect(password=pw)`): only random values
    return _kind(name) if not suffix and _strength(name) >= 1 and looks_random(v) else None


def _check_flag(m: re.Match, s: str, v: str) -> str | None:
    name, begin = _name_before(s, m.start())
    if not name.startswith("-"):
        return None
    bare = (name + m.group("kw")).lstrip("-")
    strength = _strength(bare)
    if re.fullmatch(r"[a-z]+", v):  # "the --password option" in prose
        return None
    return _kind(bare) if strength >= 2 and _plausible(v, strength) or strength == 1 and looks_random(v) else None


def _check_header(m: re.Match, s: str, v: str) -> str | None:
    prefix, begin = _name_before(s, m.start())
    name = (prefix + m.group("kw")).lower()
    if "[REDACTED" in v or _PLACEHOLDER.match(v):
        return None
    if name in ("cookie", "set-cookie"):  # cookies are secrets when their values look generated
        pairs = [p.split("=", 1)[-1].strip('"') for p in re.split(r";\s*", v)]
        return "auth-header" if any(looks_random(p) for p in pairs) else None
    if s.startswith(" =", m.end("v")) or "[" in v:  # `authorization: Optional[str] = None`
        return None
    signature = name.endswith("sig")
    header = "-" in name.strip("-") and not name.startswith("-") or name in ("authorization", "proxy-authorization")
    if header and not signature and (_strength(name) >= 1 or "auth" in name):
        # a credential, not a word: `Authorization: Bearer skips CSRF` is prose
        return None if len(v) < 6 or re.fullmatch(r"[A-Za-z][a-z]+", v) else "auth-header"
    # `password: str` is an annotation; YAML's `token: <random>` still counts
    return "secret" if not signature and _strength(name) >= 1 and looks_random(v) else None


def _kind(name: str) -> str:
    return "password" if "pass" in name.lower() else "secret"


def _check_user(m: re.Match, s: str, v: str) -> str | None:
    return None if _PLACEHOLDER.match(v) or v.lower() in ("pass", "password", "passwd", "pw") else "password"


_CHECKS: list[Callable[[re.Match, str, str], str | None]] = [
    _check_bearer, _check_url, _check_quoted, _check_assigned, _check_user, _check_flag, _check_header]
Rule = tuple[str, re.Pattern, Callable[[re.Match, str, str], str | None] | None]  # check None: a provider's


@functools.lru_cache(maxsize=1)
def _compiled() -> tuple[re.Pattern, dict[str, list[Rule]]]:
    """The trigger scan, and the rules to try where each trigger starts (compiled on first use:
    a command that never redacts does not pay for it)."""
    rules: list[Rule] = [(kind, re.compile(p), None) for kind, _, p in PROVIDERS] + [
        (kind, re.compile(p), check) for (kind, _, p), check in zip(CONTEXTUAL, _CHECKS, strict=True)]
    by_trigger: dict[str, list[Rule]] = {}
    for i, (_, triggers, _) in enumerate(PROVIDERS + CONTEXTUAL):
        for t in triggers:
            by_trigger.setdefault(t, []).append(rules[i])
    # Grouped by first character, so that the scan skips every other character in C.
    groups: dict[str, list[str]] = {}
    for t in sorted(by_trigger, key=len, reverse=True):
        groups.setdefault(t[0], []).append(re.escape(t[1:]))
    scan = re.compile("|".join(f"{re.escape(c)}(?:{'|'.join(rest)})" if any(rest) else re.escape(c)
                               for c, rest in groups.items()))
    return scan, by_trigger


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


_NEWLINE_AFTER = re.compile(r"(?:\r?\n|(?:\\r)?\\n)[A-Za-z0-9/+=]{32}")
_NEWLINE_BEFORE = re.compile(r"[A-Za-z0-9/+=]{32}(?:\r?\n|(?:\\r)?\\n)$|base64,$")


def _in_base64_block(s: str, start: int, end: int) -> bool:
    """A line of wrapped base64 (an attachment, an image), not a key: base64 on the next or the
    previous line (real newlines, or escaped in JSON text), or a data URL."""
    return bool(_NEWLINE_AFTER.match(s, end) or _NEWLINE_BEFORE.search(s[max(0, start - 40):start]))


_SEGMENT = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+|[/+]")


def _check_aws_secret(v: str) -> bool:
    # Random base64 splits into many case/digit runs (12 or more in 99.99% of keys); a 40-letter
    # CamelCase name (`BetaAsyncAbstractComputerToolset20260801`) into a few words.
    return (any(c.isupper() for c in v) and any(c.islower() for c in v) and any(c.isdigit() for c in v)
            and v.count("/") <= 4 and len(_SEGMENT.findall(v)) >= 12)


def find(s: str) -> list[tuple[int, int, str]]:
    """The secrets in `s`: (start, end, kind), in order, not overlapping."""
    low = s.lower()
    if len(low) != len(s):  # a few non-ASCII letters change length when lowercased
        low = s.translate(_ASCII_LOWER)
    found: list[tuple[int, int, str]] = []
    pos = 0
    triggers, rules_of = _compiled()
    search = triggers.search
    while (t := search(low, pos)) is not None:
        at = t.start()
        pos = at + 1
        for kind, rx, check in rules_of[t.group()]:
            m = rx.match(s, at)
            if m is None:
                continue
            if check is None:
                found.append((at, m.end(), kind))
                pos = m.end()
                break
            kind = check(m, s, m.group("v"))
            if kind:
                found.append((m.start("v"), m.end("v"), kind))
                pos = m.end("v")
                break
    for m in _AWS_SECRET.finditer(s):
        if _check_aws_secret(m.group()) and not _in_base64_block(s, m.start(), m.end()) \
                and not any(a <= m.start() < b for a, b, _ in found):
            found.append((m.start(), m.end(), "aws-secret-key"))
    if len(found) > 1:
        found.sort()
    return found


def _scan(s: str) -> str:
    found = find(s)
    if not found:
        return s
    out: list[str] = []
    last = 0
    for start, end, kind in found:
        if start < last:
            continue
        out.append(s[last:start])
        out.append(MARK.format(kind))
        last = end
    out.append(s[last:])
    return "".join(out)


class Redactor:
    """Built-in rules plus `extra` patterns (each match of one becomes `[REDACTED:custom]`)."""

    def __init__(self, extra: Iterable[str] = ()):
        self.extra = [re.compile(p) for p in extra]

    @functools.cached_property
    def fingerprint(self) -> str:
        """Changes when the rules do: part of the key of a cache of redacted content."""
        import hashlib  # noqa: PLC0415 - 20 ms to import, for the recorder only

        rules = [p for _, _, p in PROVIDERS + CONTEXTUAL] + ["--"] + [p.pattern for p in self.extra]
        return hashlib.sha256("\n".join(rules).encode()).hexdigest()[:16]

    def text(self, s: str) -> str:
        if not s:
            return s
        s = _scan(s)
        for rx in self.extra:
            s = rx.sub(MARK.format("custom"), s)
        return s

    def obj(self, value: Any) -> Any:
        """Every string in a JSON value; a string under a key that names a secret (`"password"`,
        `"X-Auth"`) is redacted whole when it is plausibly one."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if isinstance(v, str) and isinstance(k, str) and v and (strength := _strength(k)) \
                        and _plausible(v, strength):
                    out[k] = MARK.format(_kind(k))
                else:
                    out[k] = self.obj(v)
            return out
        if isinstance(value, list):
            return [self.obj(v) for v in value]
        return value

    def headers(self, headers: dict[str, str]) -> dict[str, str]:
        """HTTP headers to keep: a value whose header name says secret is dropped whole."""
        return {k: "[REDACTED]" if is_secret_header(k) else self.text(v) for k, v in headers.items()}


class CachedRedactor(Redactor):
    """A Redactor that scans each distinct text once. The recorder meets the same content again and
    again: a step's text, then the block it was made from, then the message that holds that block;
    a tool result in the request after the call. Texts of MIN_CACHED characters or more are
    remembered by a 128-bit BLAKE2b of their content (hashing a MB takes ~2 ms, scanning it ~150):
    a clean text costs its key, a redacted one its result too, up to `max_bytes`, oldest forgotten
    first."""

    MIN_CACHED = 512
    _ENTRY = 120  # bytes a remembered text costs besides its result: key, dict slot, list node

    def __init__(self, extra: Iterable[str] = (), max_bytes: int = 32 << 20):
        import hashlib  # noqa: PLC0415 - see fingerprint

        super().__init__(extra)
        self._digest = hashlib.blake2b
        self._seen: OrderedDict[bytes, str | None] = OrderedDict()  # None: the text was clean
        self._held, self.max_bytes = 0, max_bytes
        self.scanned = self.reused = 0

    @classmethod
    def of(cls, redactor: Redactor, max_bytes: int = 32 << 20) -> CachedRedactor:
        """The same rules as `redactor` (the user's patterns too), with a memory."""
        cached = cls(max_bytes=max_bytes)
        cached.extra = list(redactor.extra)
        return cached

    def text(self, s: str) -> str:
        if not s or len(s) < self.MIN_CACHED:
            return super().text(s)
        key = self._digest(s.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        if key in self._seen:
            self._seen.move_to_end(key)
            self.reused += 1
            known = self._seen[key]
            return s if known is None else known
        self.scanned += 1
        out = super().text(s)
        kept = None if out == s else out
        self._seen[key] = kept
        self._held += self._ENTRY + (len(kept) if kept else 0)
        while self._held > self.max_bytes and self._seen:
            _, old = self._seen.popitem(last=False)
            self._held -= self._ENTRY + (len(old) if old else 0)
        return out


# Header names whose values are never kept, whatever they hold.
SECRET_HEADERS = {"x-api-key", "authorization", "proxy-authorization", "cookie", "set-cookie",
                  "anthropic-api-key", "openai-api-key", "api-key", "x-goog-api-key"}


def is_secret_header(name: str) -> bool:
    n = name.lower()
    return n in SECRET_HEADERS or n.endswith("key") or any(
        w in n for w in ("token", "secret", "apikey", "auth", "password", "passwd", "cookie", "signature"))


@functools.lru_cache(maxsize=1)
def default() -> Redactor:
    try:
        from lit.config import load_config  # noqa: PLC0415

        extra = load_config().get("redact", {}).get("patterns", [])
    except Exception:  # noqa: BLE001 - a broken config must not stop recording; lit config says why
        extra = []
    return Redactor(extra)


def redact_text(s: str) -> str:
    return default().text(s)


def redact_obj(value: Any) -> Any:
    return default().obj(value)


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    return default().headers(headers)


def redact_query(query: str | None) -> str | None:
    """A URL's query string (without its `?`): `key=...&api_key=...` values that are secrets."""
    return default().text("?" + query)[1:] if query else query


def fingerprint() -> str:
    """Changes when the rules do (a user's new pattern): part of a cache key for redacted content."""
    return default().fingerprint
# --- `lit redact`: re-scrub what was written before a pattern existed ----------------------------


# Columns that hold lit's own identifiers, hashes and enums, never content: not scanned.
_NOT_CONTENT = re.compile(r"(?:id|key|hash|seq|.+_id|.+_key|.+_sha|.+_hash|.+_at|kind|status|role|protocol|method|"
                          r"model|reason|stop_reason|path|tool_name|tool_use_id|base_snapshot|step_ids|request_headers|"
                          r"response_blob|request_blob)")


def scrub_value(table: str, column: str, value: Any, redactor: Redactor | None = None,
                kind: str | None = None) -> Any:
    """`value` of `table`.`column` as lit would have written it with the current rules, or None when
    it is already clean (or the column holds no content: ids, hashes, enums). `kind`: a blob's or a step's."""
    import json  # noqa: PLC0415

    from lit import store  # noqa: PLC0415

    r = redactor or default()
    if _NOT_CONTENT.fullmatch(column) or value is None:
        return None
    if table == "messages" and column == "content":
        old = store.unpack_content(value)
        new = r.obj(old)
        return None if new == old else store.pack_content(new)
    if table == "steps" and column == "text" and isinstance(value, bytes):  # a packed tool result
        old_text = store.step_text(value)
        new_text = r.text(old_text)
        return None if new_text == old_text else store.pack_text(kind, new_text)
    if table == "blobs" and column == "content":
        text = (value if isinstance(value, bytes) else str(value).encode()).decode("utf-8", "surrogateescape")
        if kind == "headers":
            new_text = scrub_value("exchanges", "response_headers", text, r)
            return None if new_text is None else new_text.encode("utf-8", "surrogateescape")
        new_text = r.text(text)
        return None if new_text == text else new_text.encode("utf-8", "surrogateescape")
    if not isinstance(value, str) or not value:
        return None
    if column == "query":
        new = r.text("?" + value)[1:]
        return None if new == value else new
    if value[:1] in "[{":
        try:
            old = json.loads(value)
        except ValueError:
            old = None
        if old is not None:
            new_obj = r.headers(old) if column.endswith("headers") and isinstance(old, dict) else r.obj(old)
            return None if new_obj == old else json.dumps(new_obj, ensure_ascii=False, sort_keys=column == "params")
    new = r.text(value)
    return None if new == value else new


def redact_row(table: str, row: dict, redactor: Redactor | None = None) -> dict:
    """A row of lit's DB (an imported one) with every content column redacted."""
    out = dict(row)
    for column, value in row.items():
        new = scrub_value(table, column, value, redactor, row.get("kind") if table in ("blobs", "steps") else None)
        if new is not None:
            out[column] = new
            if table == "blobs" and column == "content":
                out["size"] = len(new)
    return out


def scrub_db(db, redactor: Redactor | None = None, *, dry_run: bool = False) -> dict[str, int]:
    """Apply the rules to every column that can hold content, in every table lit writes (text and
    JSON columns, the compressed messages, the blobs of bodies and headers); returns rows changed
    per table. The old bytes then leave the file too (the FTS index rebuilt, the WAL checkpointed,
    VACUUM)."""
    from lit import store  # noqa: PLC0415

    changed: dict[str, int] = {}
    tables = [t for t in db.table_names() if not t.startswith(("_", "sqlite_")) and "_fts" not in t]
    with store.write_transaction(db):
        for table in tables:
            columns = [c.name for c in db[table].columns
                       if c.type in ("TEXT", "BLOB", "") and not _NOT_CONTENT.fullmatch(c.name)]
            if not columns:
                continue
            names = ", ".join(f"[{c}]" for c in columns)
            kind = "kind" if table in ("blobs", "steps") else "NULL"
            for row in db.execute(f"SELECT rowid, {kind}, {names} FROM [{table}]").fetchall():
                updates = {}
                for column, value in zip(columns, row[2:], strict=True):
                    new = scrub_value(table, column, value, redactor, row[1])
                    if new is not None:
                        updates[column] = new
                if updates:
                    changed[table] = changed.get(table, 0) + 1
                    if table == "blobs" and "content" in updates:
                        updates["size"] = len(updates["content"])
                    if not dry_run:
                        sets = ", ".join(f"[{c}] = ?" for c in updates)
                        db.execute(f"UPDATE [{table}] SET {sets} WHERE rowid = ?", [*updates.values(), row[0]])
    if not dry_run and changed:
        with store.write_transaction(db):
            store.reindex_steps(db)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    order = ("steps", "messages", "blobs", "exchanges", "threads", "sessions")
    return {t: changed.get(t, 0) for t in order} | {t: n for t, n in changed.items() if t not in order}


_KEY_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_KEY_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")


def redact_lines(lines: list[str]) -> list[str]:
    """Line by line (a diff keeps its line numbers), with a private key block's lines all hidden."""
    out, inside = [], False
    for line in lines:
        if inside or _KEY_BEGIN.search(line):
            inside = not _KEY_END.search(line)
            out.append(MARK.format("private-key"))
        else:
            out.append(redact_text(line))
    return out
