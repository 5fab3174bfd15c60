"""Tests for the ``hide_secrets`` detector (``policies/secret_detection.py``).

Corpus results (``test_corpus_rates`` prints them; ``pytest -s`` shows the line):

    detection rate      100.0%  (79/79 fake secrets in 76 texts redacted, with the right kind)
    false-positive rate   0.0%  (0/118 ordinary texts touched)

Every secret below is FAKE and generated at test time from a seeded RNG, so no key-shaped string
is committed to the repository (nothing for GitHub push protection or a secret scanner to trip
on). The ordinary texts live in ``tests/data/secrets/negatives.txt``.
"""

from __future__ import annotations

import base64
import copy
import inspect
import json
import logging
import random
import string
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from trioproxy.policies import secret_detection
from trioproxy.policies.secret_detection import (
    KINDS,
    Finding,
    find_secrets,
    redact_messages,
    redact_prompt,
    redact_text,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "secrets"
R = "[REDACTED]"

# --------------------------------------------------------------------------------------------
# Fake secret generators (seeded: the corpus is the same on every run)
# --------------------------------------------------------------------------------------------

_rng = random.Random(20240601)
_ALNUM = string.ascii_letters + string.digits
_B64URL = _ALNUM + "-_"
_B64 = _ALNUM + "+/"
_UPPER_B32 = string.ascii_uppercase + "234567"


def _pick(alphabet: str, n: int) -> str:
    # Always include a digit so "looks machine-made" checks see a realistic token.
    body = [_rng.choice(alphabet) for _ in range(n)]
    digits = [c for c in alphabet if c.isdigit()]
    if digits and not any(c.isdigit() for c in body):
        body[_rng.randrange(n)] = _rng.choice(digits)
    return "".join(body)


def alnum(n: int) -> str:
    return _pick(_ALNUM, n)


def b64url(n: int) -> str:
    return _pick(_B64URL, n)


def hexs(n: int) -> str:
    return _pick("0123456789abcdef", n)


def digits(n: int) -> str:
    return "".join(_rng.choice(string.digits) for _ in range(n))


def letters_mixed(n: int) -> str:
    body = [_rng.choice(string.ascii_letters) for _ in range(n)]
    body[0], body[1] = "a", "Q"  # guarantee both cases
    return "".join(body)


def fake_openai_legacy() -> str:
    return "sk-" + alnum(20) + "T3Blbk" + "FJ" + alnum(20)


def fake_openai_project() -> str:
    return "sk-" + "proj-" + b64url(156)


def fake_anthropic() -> str:
    return "sk-" + "ant-api03-" + b64url(93) + "AA"


def fake_google() -> str:
    return "AI" + "za" + "Sy" + b64url(33)


def fake_github(prefix: str) -> str:
    return prefix + "_" + alnum(36)


def fake_github_pat() -> str:
    return "github" + "_pat_" + "11A" + alnum(19) + "_" + alnum(59)


def fake_slack(kind: str) -> str:
    return f"xox{kind}-" + digits(12) + "-" + digits(13) + "-" + alnum(24)


def fake_stripe(prefix: str) -> str:
    return prefix + "_" + alnum(24)


def fake_aws_id(prefix: str = "AKIA") -> str:
    return prefix + _pick(_UPPER_B32, 16)


def fake_aws_secret() -> str:
    return _pick(_B64, 40)


def fake_hf() -> str:
    return "hf" + "_" + letters_mixed(34)


def fake_groq() -> str:
    return "gs" + "k_" + alnum(52)


def _b64_lines(n_bytes: int, width: int = 64) -> list[str]:
    raw = base64.b64encode(_rng.randbytes(n_bytes)).decode()
    return [raw[i : i + width] for i in range(0, len(raw), width)]


def fake_pem(label: str, n_bytes: int = 600, headers: tuple[str, ...] = (), sep: str = "\n") -> str:
    begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
    head = [*headers, ""] if headers else []
    return sep.join([begin, *head, *_b64_lines(n_bytes), end])


def _b64url_json(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def fake_jwt() -> str:
    header = _b64url_json({"alg": "HS256", "typ": "JWT"})
    payload = _b64url_json({"sub": digits(8), "name": "Jane Doe", "iat": 1716200000})
    return f"{header}.{payload}.{b64url(43)}"


def fake_opaque(n: int = 40) -> str:
    return alnum(n)


# --------------------------------------------------------------------------------------------
# The positive corpus: (template, [(kind, secret), ...]); "<<i>>" marks where secret i goes.
# --------------------------------------------------------------------------------------------

Case = tuple[str, list[tuple[str, str]]]

POSITIVES: list[Case] = [
    # OpenAI / Anthropic / other LLM vendors
    ("Here is my OpenAI key <<0>>, can you tell me why it returns 401?",
     [("openai_api_key", fake_openai_legacy())]),
    ("export OPENAI_API_KEY=<<0>>\npython app.py",
     [("openai_api_key", fake_openai_project())]),
    ("The service account key <<0>> was rotated yesterday.",
     [("openai_api_key", "sk-" + "svcacct-" + b64url(120))]),
    ("Use the admin key (<<0>>) only for the usage API.",
     [("openai_api_key", "sk-" + "admin-" + b64url(80))]),
    ("DeepSeek gave me <<0>> as an OpenAI-compatible key.",
     [("openai_api_key", "sk-" + hexs(32))]),
    ('client = anthropic.Anthropic(api_key="<<0>>")',
     [("anthropic_api_key", fake_anthropic())]),
    ("My Claude key <<0>> stopped working after the org migration.",
     [("anthropic_api_key", fake_anthropic())]),
    ("OpenRouter key: <<0>> (credits left: 12)",
     [("openrouter_api_key", "sk-" + "or-v1-" + hexs(64))]),
    ("Groq key <<0>> hits the rate limit at 30 rpm.",
     [("groq_api_key", fake_groq())]),
    ("curl https://api.groq.com/openai/v1/models -H 'Authorization: Bearer <<0>>'",
     [("groq_api_key", fake_groq())]),
    ("xAI console issued <<0>> for the grok-2 project.",
     [("xai_api_key", "xa" + "i-" + alnum(80))]),
    ("REPLICATE_API_TOKEN=<<0>>",
     [("replicate_api_token", "r8" + "_" + alnum(37))]),
    ("perplexity key is <<0>> today",
     [("perplexity_api_key", "pp" + "lx-" + alnum(48))]),
    ('from huggingface_hub import login\nlogin(token="<<0>>")',
     [("huggingface_token", fake_hf())]),
    ("Set HF_TOKEN to <<0>> before downloading gated models.",
     [("huggingface_token", fake_hf())]),
    # Google
    ("https://maps.googleapis.com/maps/api/geocode/json?address=Paris&key=<<0>>",
     [("google_api_key", fake_google())]),
    ('const firebaseConfig = { apiKey: "<<0>>", authDomain: "demo-app.firebaseapp.com" };',
     [("google_api_key", fake_google())]),
    # GitHub / GitLab / package registries
    ("git clone https://<<0>>@github.com/acme/private-repo.git",
     [("github_token", fake_github("ghp"))]),
    ("The OAuth app returned <<0>> for the user.",
     [("github_token", fake_github("gho"))]),
    ("GITHUB_TOKEN=<<0>>",
     [("github_token", fake_github_pat())]),
    ("CI log: using installation token <<0>> for checkout",
     [("github_token", fake_github("ghs"))]),
    ("curl -H 'Authorization: token <<0>>' https://api.github.com/user",
     [("github_token", fake_github("ghp"))]),
    ("Deploy with GITLAB_TOKEN=<<0>> from the runner.",
     [("gitlab_token", "gl" + "pat-" + b64url(20))]),
    ("//registry.npmjs.org/:_authToken=<<0>>",
     [("npm_token", "np" + "m_" + alnum(36))]),
    ("[pypi]\nusername = __token__\npassword = <<0>>",
     [("pypi_token", "py" + "pi-AgEIcHlwaS5vcmc" + b64url(70))]),
    # Slack / Stripe / SendGrid
    ("Our bot token is <<0>> and it posts to #alerts.",
     [("slack_token", fake_slack("b"))]),
    ("SLACK_USER_TOKEN=<<0>>",
     [("slack_token", fake_slack("p"))]),
    ("POST the payload to https://hooks.slack.com/services/<<0>> every morning.",
     [("slack_webhook", "T" + _pick(_UPPER_B32, 8) + "/B" + _pick(_UPPER_B32, 10) + "/" + alnum(24))]),
    ('stripe.api_key = "<<0>>"',
     [("stripe_key", fake_stripe("sk" + "_live"))]),
    ("The restricted key <<0>> can only read charges.",
     [("stripe_key", fake_stripe("rk" + "_live"))]),
    ("In test mode use <<0>> with the 4242 card.",
     [("stripe_key", fake_stripe("sk" + "_test"))]),
    ("SENDGRID_API_KEY=<<0>>",
     [("sendgrid_api_key", "SG." + b64url(22) + "." + b64url(43))]),
    # AWS
    ("The access key id <<0>> belongs to the ci-deployer IAM user.",
     [("aws_access_key_id", fake_aws_id())]),
    ("Temporary credentials start with <<0>> and expire in an hour.",
     [("aws_access_key_id", fake_aws_id("ASIA"))]),
    ("[default]\naws_access_key_id = <<0>>\naws_secret_access_key = <<1>>\nregion = us-east-1",
     [("aws_access_key_id", fake_aws_id()), ("aws_secret_access_key", fake_aws_secret())]),
    ('{"Credentials": {"AccessKeyId": "<<0>>", "SecretAccessKey": "<<1>>", "Expiration": "2024-06-01T12:00:00Z"}}',
     [("aws_access_key_id", fake_aws_id("ASIA")), ("aws_secret_access_key", fake_aws_secret())]),
    ("export AWS_SECRET_ACCESS_KEY=<<0>>",
     [("aws_secret_access_key", fake_aws_secret())]),
    ("$ aws configure\nAWS Access Key ID [None]: <<0>>\nAWS Secret Access Key [None]: <<1>>\nDefault region name [None]: eu-west-1",
     [("aws_access_key_id", fake_aws_id()), ("aws_secret_access_key", fake_aws_secret())]),
    # Private keys
    ("Why does ssh reject this key?\n<<0>>\nThanks in advance!",
     [("private_key", fake_pem("RSA PRIVATE KEY", 900))]),
    ("Here is the deploy key:\n\n<<0>>\n\nIt was generated with ssh-keygen -t ed25519.",
     [("private_key", fake_pem("OPENSSH PRIVATE KEY", 300))]),
    ("openssl says 'unable to load key' for\n<<0>>",
     [("private_key", fake_pem("EC PRIVATE KEY", 120))]),
    ("Encrypted one:\n<<0>>\nwhat is the passphrase format?",
     [("private_key", fake_pem("RSA PRIVATE KEY", 600,
                               headers=("Proc-Type: 4,ENCRYPTED", "DEK-Info: AES-128-CBC,0A1B2C3D4E5F6A7B")))]),
    ('{"type": "service_account", "project_id": "demo-123", "private_key": "<<0>>", "client_email": "bot@demo-123.iam.gserviceaccount.com"}',
     [("private_key", fake_pem("PRIVATE KEY", 600, sep="\\n"))]),
    ("PGP export:\n<<0>>",
     [("private_key", fake_pem("PGP PRIVATE KEY BLOCK", 400))]),
    ("My key starts like this (the rest got cut off):\n<<0>>\n\nwhat format is it?",
     [("private_key", "\n".join(fake_pem("PRIVATE KEY", 900).splitlines()[:6]))]),
    # JWT / bearer / basic
    ("Decode this token for me: <<0>>",
     [("jwt", fake_jwt())]),
    ("Cookie: session=<<0>>; Path=/; HttpOnly",
     [("jwt", fake_jwt())]),
    ("Authorization: Bearer <<0>>",
     [("jwt", fake_jwt())]),
    ("curl -H 'Authorization: Bearer <<0>>' https://api.example.com/v1/me",
     [("bearer_token", fake_opaque(40))]),
    ("I pass Bearer <<0>> in the header but get 403.",
     [("bearer_token", fake_opaque(32))]),
    ("GET /v1/me HTTP/1.1\nHost: api.example.com\nAuthorization: Basic <<0>>\n",
     [("basic_auth", base64.b64encode(b"admin:" + alnum(12).encode()).decode())]),
    # URL credentials
    ("Push to https://deploy:<<0>>@git.example.com/acme/app.git after review.",
     [("url_credentials", "Xk9" + alnum(13))]),
    ("DATABASE_URL=postgres://app:<<0>>@db.internal:5432/prod",
     [("url_credentials", "p4ss" + alnum(8) + "!")]),
    ("Celery broker: redis://:<<0>>@cache.internal:6379/0",
     [("url_credentials", alnum(24))]),
    ("mongodb+srv://analytics:<<0>>@cluster0.ab12c.mongodb.net/?retryWrites=true",
     [("url_credentials", alnum(16))]),
    # Assignment style: only the value goes
    ("Login with username=alice password=<<0>> on staging.",
     [("password", "Hunter2" + "!x9")]),
    ("database:\n  host: db.internal\n  passwd: <<0>>\n  port: 5432",
     [("password", "s3cr3t-" + alnum(6))]),
    ('DB_PASSWORD="<<0>>"',
     [("password", "correct-horse-" + digits(4))]),
    ('api_key = "<<0>>"',
     [("generic_secret", hexs(32))]),
    ("https://example.com/oauth/callback?code=abc&client_secret=<<0>>&state=xyz",
     [("generic_secret", alnum(32))]),
    ("auth:\n  token: <<0>>\n  refresh: true",
     [("generic_secret", alnum(40))]),
    ('{"client_id": "1234567890.apps.example.com", "client_secret": "<<0>>"}',
     [("generic_secret", b64url(35))]),
    ('{"username": "bob", "password": "<<0>>"}',
     [("password", "Tr0ub4dor&3")]),
    ('{"name": "login", "arguments": "{\\"user\\": \\"bob\\", \\"password\\": \\"<<0>>\\"}"}',
     [("password", "Summer2024!")]),
    ("mysql -u root --password <<0>> -h db.internal",
     [("password", "Qz7" + alnum(9))]),
    ("CREATE USER 'app'@'%' IDENTIFIED BY '<<0>>';",
     [("password", "Wq" + alnum(14))]),
    ("x-api-key: <<0>>",
     [("generic_secret", alnum(40))]),
    ('const session = { accessToken: "<<0>>", userId: 42 };',
     [("generic_secret", b64url(48))]),
    ('SECRET_KEY: str = "<<0>>"',
     [("generic_secret", "django-insecure-" + b64url(40))]),
    ("The wifi password: <<0>>.",
     [("password", "Gr33nT34" + "!")]),
    ("PGPASSWORD=<<0>> psql -h db.internal -U app",
     [("password", "pG" + alnum(12))]),
    ("SMTP_HOST=mail.example.com\nSMTP_PASS=<<0>>\nSMTP_PORT=587",
     [("password", "m4il" + alnum(8) + "#")]),
    ("<server>\n  <id>nexus</id>\n  <username>deploy</username>\n  <password><<0>></password>\n</server>",
     [("password", "Nx" + alnum(14))]),
    ("ALTER ROLE app WITH PASSWORD '<<0>>';",
     [("password", "Zx81" + alnum(10))]),
    ("$ git credential fill\nprotocol=https\nhost=github.com\nusername=bob\npassword=<<0>>\n",
     [("password", "s3cr3t" + alnum(6))]),
    ("[Interface]\nPrivateKey = <<0>>\nAddress = 10.0.0.2/32\nListenPort = 51820",
     [("generic_secret", "/" + base64.b64encode(_rng.randbytes(32)).decode()[1:])]),
]  # fmt: skip


def _render(case: Case, fill: str | None = None) -> str:
    template, secrets = case
    for i, (_, value) in enumerate(secrets):
        template = template.replace(f"<<{i}>>", value if fill is None else fill)
    return template


def _load_negatives() -> list[str]:
    raw = (DATA / "negatives.txt").read_text(encoding="utf-8")
    return [entry.strip("\n") for entry in raw.split("\n%%\n")[1:]]


NEGATIVES = _load_negatives()


def _case_id(case: Case) -> str:
    return "+".join(kind for kind, _ in case[1])


def _detected(case: Case) -> bool:
    redacted, kinds = redact_text(_render(case))
    return redacted == _render(case, R) and kinds == sorted({kind for kind, _ in case[1]})


# --------------------------------------------------------------------------------------------
# Corpus tests
# --------------------------------------------------------------------------------------------


def test_corpus_sizes() -> None:
    assert len(POSITIVES) >= 40
    assert len(NEGATIVES) >= 60
    assert len(set(NEGATIVES)) == len(NEGATIVES)


@pytest.mark.parametrize("case", POSITIVES, ids=_case_id)
def test_secret_is_redacted_and_surroundings_survive(case: Case) -> None:
    text = _render(case)
    redacted, kinds = redact_text(text)
    # Exactly the secret is replaced: every other character of the sentence is still there.
    assert redacted == _render(case, R)
    assert kinds == sorted({kind for kind, _ in case[1]})
    for _, value in case[1]:
        assert value not in redacted


@pytest.mark.parametrize("text", NEGATIVES, ids=lambda t: t[:40])
def test_ordinary_text_is_untouched(text: str) -> None:
    assert find_secrets(text) == []
    redacted, kinds = redact_text(text)
    assert redacted is text
    assert kinds == []


def test_corpus_rates() -> None:
    detected = sum(_detected(case) for case in POSITIVES)
    n_secrets = sum(len(case[1]) for case in POSITIVES)
    detected_secrets = sum(len(case[1]) for case in POSITIVES if _detected(case))
    false_positives = sum(bool(find_secrets(text)) for text in NEGATIVES)
    detection_rate = detected_secrets / n_secrets
    fp_rate = false_positives / len(NEGATIVES)
    print(
        f"\nsecret detection: detection rate {detection_rate:.1%} ({detected_secrets}/{n_secrets} "
        f"secrets, {detected}/{len(POSITIVES)} texts); false-positive rate {fp_rate:.1%} "
        f"({false_positives}/{len(NEGATIVES)} texts)"
    )
    assert detection_rate == 1.0
    assert fp_rate == 0.0


def test_every_kind_in_the_corpus_is_a_known_kind() -> None:
    corpus_kinds = {kind for case in POSITIVES for kind, _ in case[1]}
    assert corpus_kinds <= KINDS
    # The brief's required kinds are all exercised.
    assert {
        "openai_api_key", "anthropic_api_key", "google_api_key", "github_token", "slack_token",
        "stripe_key", "aws_access_key_id", "aws_secret_access_key", "huggingface_token",
        "groq_api_key", "private_key", "jwt", "bearer_token", "url_credentials", "password",
        "generic_secret",
    } <= corpus_kinds  # fmt: skip


# --------------------------------------------------------------------------------------------
# Behaviour of find_secrets / redact_text
# --------------------------------------------------------------------------------------------


def test_findings_are_sorted_non_overlapping_and_carry_no_value() -> None:
    key, jwt = fake_openai_legacy(), fake_jwt()
    text = f"first {jwt} then password=Xy9!abcdef and {key} last"
    findings = find_secrets(text)
    assert [f.kind for f in findings] == ["jwt", "password", "openai_api_key"]
    assert all(a.end <= b.start for a, b in zip(findings, findings[1:], strict=False))
    assert text[findings[0].start : findings[0].end] == jwt
    assert text[findings[2].start : findings[2].end] == key
    # A Finding is frozen, slotted, and its repr never includes the secret itself.
    f = findings[2]
    assert key not in repr(f)
    assert not hasattr(f, "__dict__")
    with pytest.raises(FrozenInstanceError):
        f.kind = "x"  # type: ignore[misc]
    assert Finding("jwt", 1, 2) == Finding("jwt", 1, 2)


def test_overlapping_detections_merge_and_keep_the_specific_kind() -> None:
    key = fake_openai_project()
    # Both the "api_key =" label and the sk-proj- prefix match the same span.
    assert redact_text(f'api_key = "{key}"') == (f'api_key = "{R}"', ["openai_api_key"])
    # A JWT behind "Bearer" is reported as a JWT, and redacted once.
    jwt = fake_jwt()
    assert redact_text(f"Bearer {jwt}") == (f"Bearer {R}", ["jwt"])


def test_label_is_kept_only_value_replaced() -> None:
    assert redact_text("password=Sup3r$ecret") == (f"password={R}", ["password"])
    assert redact_text("passwd: Sup3r$ecret") == (f"passwd: {R}", ["password"])
    assert redact_text('secret="k8Hj2mNq9xLp"') == (f'secret="{R}"', ["generic_secret"])
    assert redact_text("token: a8f9Kx02LmQz77") == (f"token: {R}", ["generic_secret"])


def test_custom_placeholder_and_multiple_kinds() -> None:
    text = f"{fake_aws_id()} and {fake_github('ghp')}"
    redacted, kinds = redact_text(text, placeholder="***")
    assert redacted == "*** and ***"
    assert kinds == ["aws_access_key_id", "github_token"]


def test_redaction_is_idempotent() -> None:
    for case in POSITIVES:
        once, _ = redact_text(_render(case))
        twice, kinds = redact_text(once)
        assert twice == once
        assert kinds == []


def test_empty_and_tiny_inputs() -> None:
    assert find_secrets("") == []
    assert redact_text("") == ("", [])
    assert redact_text("sk-") == ("sk-", [])


def test_placeholder_values_are_not_secrets() -> None:
    for text in [
        "api_key = 'sk-...'",
        "OPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxx",
        'password = "${DB_PASSWORD}"',
        "password: %(password)s",
        'token = "<your-token>"',
        "Authorization: Bearer YOUR_API_KEY",
        "postgres://user:<password>@localhost/db",
        "postgres://user:${PGPASSWORD}@localhost/db",
        'unk_token: "[UNK]"',
        'bos_token = "<|begin_of_text|>"',
    ]:
        assert find_secrets(text) == [], text


def test_offsets_survive_non_ascii_text() -> None:
    # Case-insensitive detectors run over a lowercased copy; "İ".lower() is two characters, so
    # the copy must be built without shifting offsets.
    for prefix in ("İİİ ", "Grüße, ", "日本語のテキスト ", "KELVIN \u212a "):
        text = f"{prefix}DB_PASSWORD=Hunter2!x and Bearer {fake_opaque(24)} done İ"
        assert redact_text(text) == (
            f"{prefix}DB_PASSWORD={R} and Bearer {R} done İ",
            ["bearer_token", "password"],
        )


def test_secret_deep_inside_a_large_message() -> None:
    key = fake_anthropic()
    filler = "The quick brown fox jumps over the lazy dog; tokens: 17, keys: none. " * 1500
    text = filler + key + " " + filler
    assert len(text) > 200_000
    redacted, kinds = redact_text(text)
    assert redacted == filler + R + " " + filler
    assert kinds == ["anthropic_api_key"]


# --------------------------------------------------------------------------------------------
# Performance and pathological inputs (bounded, possessive quantifiers: no blow-ups)
# --------------------------------------------------------------------------------------------

_PATHOLOGICAL = [
    "password=" + "a" * 100_000,
    "password: " + "1" * 100_000 + "(",
    "sk-" + "a" * 100_000,
    "sk-proj-" + "-" * 100_000,
    "-----BEGIN RSA PRIVATE KEY-----\n" + "A" * 100_000,
    "-----BEGIN RSA PRIVATE KEY-----\n" * 3_000,
    ("-----BEGIN PRIVATE KEY-----" + " " * 50) * 1_500,
    "eyJ" + "a" * 50_000 + "." + "b" * 50_000,
    "eyJaaaaaaaaa." * 8_000,
    "https://" + "a:" * 50_000,
    "https://u:" + "p" * 100_000,
    "Bearer " + "a" * 100_000,
    "Authorization: " * 7_000,
    "token=" * 17_000,
    "password " * 11_000,
    "AKIA" * 25_000,
    "x" * 100_000,
]


@pytest.mark.parametrize("text", _PATHOLOGICAL, ids=lambda t: repr(t[:24]))
def test_pathological_inputs_finish_with_clean_findings(text: str) -> None:
    # Speed is measured by bench/secret_detection.py, never asserted here (no test asserts a time).
    findings = find_secrets(text)
    assert all(0 <= f.start < f.end <= len(text) for f in findings)


def test_ordinary_100kb_message_has_no_findings() -> None:
    text = "\n\n".join(NEGATIVES)
    text = (text * (100_000 // len(text) + 1))[:100_000]
    assert find_secrets(text) == []


# --------------------------------------------------------------------------------------------
# redact_messages / redact_prompt
# --------------------------------------------------------------------------------------------


def test_redact_messages_string_content_in_place() -> None:
    key = fake_openai_legacy()
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": f"My key is {key}, why 401?"},
    ]
    system, user = messages
    kinds = redact_messages(messages)
    assert kinds == ["openai_api_key"]
    assert messages[0] is system and messages[1] is user  # same dicts, mutated in place
    assert user["content"] == f"My key is {R}, why 401?"
    assert system["content"] == "You are a helpful assistant."


def test_redact_messages_list_of_parts() -> None:
    jwt = fake_jwt()
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    parts = [
        {"type": "text", "text": f"Decode {jwt} please"},
        image,
        {"type": "text", "text": "nothing here"},
    ]
    image_before = copy.deepcopy(image)
    messages = [{"role": "user", "content": parts}]
    assert redact_messages(messages) == ["jwt"]
    assert messages[0]["content"] is parts
    assert parts[0] == {"type": "text", "text": f"Decode {R} please"}
    assert parts[1] == image_before
    assert parts[2]["text"] == "nothing here"


def test_redact_messages_tool_call_arguments_stay_valid_json() -> None:
    pem = fake_pem("PRIVATE KEY", 300)
    password = "Summer2024!"
    arguments = json.dumps({"host": "db.internal", "password": password, "key": pem})
    legacy = json.dumps({"token": "ghp_" + alnum(36)})
    messages = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "connect", "arguments": arguments},
                }
            ],
        },
        {"role": "assistant", "content": None, "function_call": {"name": "x", "arguments": legacy}},
        {"role": "tool", "tool_call_id": "call_1", "content": "connected"},
    ]
    kinds = redact_messages(messages)
    assert kinds == ["github_token", "password", "private_key"]
    redacted_args = json.loads(messages[0]["tool_calls"][0]["function"]["arguments"])
    assert redacted_args == {"host": "db.internal", "password": R, "key": R}
    assert json.loads(messages[1]["function_call"]["arguments"]) == {"token": R}
    assert messages[2]["content"] == "connected"


def test_redact_messages_without_secrets_and_odd_shapes() -> None:
    messages = [
        {"role": "user", "content": "What is the token count of 'hello world'?"},
        {"role": "assistant", "content": None},
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAAA"}}]},
        {"role": "assistant", "tool_calls": [{"function": {"arguments": {"not": "a string"}}}]},
        "not a dict",
    ]
    before = copy.deepcopy(messages)
    assert redact_messages(messages) == []
    assert messages == before
    assert redact_messages([]) == []


def test_redact_messages_collects_unique_sorted_kinds_across_messages() -> None:
    messages = [
        {"role": "user", "content": f"{fake_aws_id()} and {fake_aws_id()}"},
        {"role": "user", "content": [{"type": "text", "text": f"key {fake_google()}"}]},
        {"role": "user", "content": f"again {fake_aws_id()}"},
    ]
    assert redact_messages(messages) == ["aws_access_key_id", "google_api_key"]


def test_redact_prompt_str_and_list() -> None:
    key = fake_hf()
    assert redact_prompt(f"token {key} ok") == (f"token {R} ok", ["huggingface_token"])
    assert redact_prompt("Once upon a time") == ("Once upon a time", [])

    prompts = ["plain", f"slack {fake_slack('b')}", f"stripe {fake_stripe('sk' + '_live')}"]
    original = list(prompts)
    out, kinds = redact_prompt(prompts)
    assert out == ["plain", f"slack {R}", f"stripe {R}"]
    assert kinds == ["slack_token", "stripe_key"]
    assert prompts == original  # the input list is not mutated


def test_redact_prompt_token_ids_untouched() -> None:
    ids = [1, 2, 3]
    assert redact_prompt(ids) == (ids, [])
    nested = [[1, 2], [3]]
    assert redact_prompt(nested) == (nested, [])
    assert redact_prompt(None) == (None, [])


# --------------------------------------------------------------------------------------------
# The module never logs (a log line is the easiest place to leak what it finds)
# --------------------------------------------------------------------------------------------


def test_module_does_not_log(caplog: pytest.LogCaptureFixture) -> None:
    source = inspect.getsource(secret_detection)
    assert "import logging" not in source
    assert "getLogger" not in source
    assert "print(" not in source
    assert not any(isinstance(v, logging.Logger) for v in vars(secret_detection).values())
    with caplog.at_level(logging.DEBUG):
        for case in POSITIVES:
            redact_text(_render(case))
            redact_messages([{"role": "user", "content": _render(case)}])
    assert caplog.records == []
