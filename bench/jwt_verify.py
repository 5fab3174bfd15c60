"""What verifying a bearer JWT costs on the Trio thread, and what the verified-token cache saves.

Measured here, never asserted by a test: ``python bench/jwt_verify.py``. Interleaved rounds (one
round of each variant, repeated), medians reported, because the development machine is shared.

Variants, per token:
* ``header`` — reading the unverified header (every token pays this before the key lookup);
* ``decode`` — PyJWT signature + claims verification with the key in hand (RS256, PS256, ES256);
* ``authenticate (cached)`` — ``JWTAuthenticator.authenticate`` on a token it verified before.
* ``to_thread hop`` — an empty ``trio.to_thread.run_sync``: what moving verification off the Trio
  thread would add.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import jwt
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.jwks_server import SigningKey
from trioproxy.access import JWTAuthenticator, JWTAuthSettings

N = 2000
ROUNDS = 7


def per_call(fn, n: int = N) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


async def main() -> None:
    keys = {alg: SigningKey(f"k-{alg}", alg=alg) for alg in ("RS256", "PS256", "ES256")}
    tokens = {alg: key.token({"client_id": "team-a"}) for alg, key in keys.items()}

    async def fetch(url: str):
        return {"keys": [k.jwk for k in keys.values()]}

    settings = JWTAuthSettings.from_config({"enable_jwt_auth": True, "litellm_jwtauth": {"team_id_jwt_field":
                                                                                         "client_id"}},
                                           {"JWT_PUBLIC_KEY_URL": "https://idp.example/jwks"})
    auth = JWTAuthenticator(settings, fetch)
    for token in tokens.values():
        await auth.authenticate(token)

    results: dict[str, list[float]] = {}
    for _ in range(ROUNDS):
        for alg, token in tokens.items():
            public = keys[alg].private.public_key()
            results.setdefault(f"header {alg}", []).append(per_call(lambda t=token: jwt.get_unverified_header(t)))
            results.setdefault(f"decode {alg}", []).append(
                per_call(lambda t=token, k=public, a=alg: jwt.decode(t, k, algorithms=[a])))
            start = time.perf_counter()
            for _ in range(N):
                await auth.authenticate(token)
            results.setdefault(f"authenticate (cached) {alg}", []).append((time.perf_counter() - start) / N * 1e6)
        start = time.perf_counter()
        for _ in range(N // 10):
            await trio.to_thread.run_sync(lambda: None)
        results.setdefault("to_thread hop", []).append((time.perf_counter() - start) / (N // 10) * 1e6)
    for name, values in results.items():
        print(f"{name:32s} median {statistics.median(values):7.1f} µs  (min {min(values):.1f}, max {max(values):.1f})")


if __name__ == "__main__":
    trio.run(main)
