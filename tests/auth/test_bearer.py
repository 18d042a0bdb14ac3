"""The FHIR API as a resource server: bearer tokens (RFC 6750) and SMART scopes on every interaction."""

from __future__ import annotations

import time

import pytest

from tests.auth import support
from tests.auth.support import bearer, register, sign_access_token, token_claims

PATIENT = {"resourceType": "Patient", "gender": "female"}


def assert_invalid_token(r, words: str) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert words.lower() in r.json()["issue"][0]["diagnostics"].lower()


async def test_missing_token_is_401_with_a_bearer_challenge(http):
    r = await http.get("/fhir/Patient/x")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="puente"'
    assert r.json()["issue"][0]["code"] == "login"


async def test_other_schemes_are_not_tokens(http):
    r = await http.get("/fhir/Patient/x", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="puente"'


async def test_metadata_and_smart_configuration_need_no_token(http):
    assert (await http.get("/fhir/metadata")).status_code == 200
    assert (await http.get("/fhir/.well-known/smart-configuration")).status_code == 200


async def test_a_valid_token_works(http, auth_app):
    r = await http.post("/fhir/Patient", json=PATIENT, headers=bearer(sign_access_token(auth_app, token_claims())))
    assert r.status_code == 201, r.text


async def test_expired_token(http, auth_app):
    now = int(time.time())
    token = sign_access_token(auth_app, token_claims(iat=now - 900, exp=now - 600))
    assert_invalid_token(await http.get("/fhir/Patient/x", headers=bearer(token)), "expired")


async def test_not_yet_valid_token(http, auth_app):
    token = sign_access_token(auth_app, token_claims(nbf=int(time.time()) + 600))
    assert_invalid_token(await http.get("/fhir/Patient/x", headers=bearer(token)), "not yet valid")


async def test_token_issued_in_the_future(http, auth_app):
    now = int(time.time())
    token = sign_access_token(auth_app, token_claims(iat=now + 600, exp=now + 900))
    assert_invalid_token(await http.get("/fhir/Patient/x", headers=bearer(token)), "future")


async def test_wrong_signature(http, auth_app, rsa_other):
    # signed by someone else's key, claiming our kid
    token = sign_access_token(auth_app, token_claims(), key=rsa_other)
    assert_invalid_token(await http.get("/fhir/Patient/x", headers=bearer(token)), "signature")


async def test_alg_none(http, auth_app):
    kid = support.service(auth_app).keys.signing_key.kid
    token = support.unsigned(token_claims(), {"kid": kid, "typ": "at+jwt"})
    assert_invalid_token(await http.get("/fhir/Patient/x", headers=bearer(token)), "signature")


async def test_unknown_kid(http, auth_app):
    token = sign_access_token(auth_app, token_claims(), kid="another-server")
    assert_invalid_token(await http.get("/fhir/Patient/x", headers=bearer(token)), "not signed by this server")


async def test_wrong_audience(http, auth_app):
    token = sign_access_token(auth_app, token_claims(aud="https://other-fhir.example.org/fhir"))
    assert_invalid_token(await http.get("/fhir/Patient/x", headers=bearer(token)), "aud")


async def test_wrong_issuer(http, auth_app):
    token = sign_access_token(auth_app, token_claims(iss="https://other-issuer.example.org"))
    assert_invalid_token(await http.get("/fhir/Patient/x", headers=bearer(token)), "iss")


async def test_id_token_or_other_jwt_is_not_an_access_token(http, auth_app):
    from joserfc import jwt

    keys = support.service(auth_app).keys
    token = jwt.encode({"alg": keys.algorithm, "kid": keys.signing_key.kid, "typ": "JWT"}, token_claims(),
                       keys.signing_key, algorithms=[keys.algorithm])
    assert_invalid_token(await http.get("/fhir/Patient/x", headers=bearer(token)), "not an access token")


async def test_garbage(http):
    assert_invalid_token(await http.get("/fhir/Patient/x", headers=bearer("not-a-jwt")), "not a jwt")


async def test_missing_claims(http, auth_app):
    token = sign_access_token(auth_app, token_claims(jti=None))
    assert_invalid_token(await http.get("/fhir/Patient/x", headers=bearer(token)), "jti")


async def test_revoked_access_token(http, auth_app, rsa):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", keys=(rsa,), admin=True)
    token = await support.access_token(http, client_id, rsa, "system/Patient.rs")
    assert (await http.get("/fhir/Patient/x", headers=bearer(token))).status_code == 404
    data = {"token": token, "client_assertion_type": support.ASSERTION_TYPE,
            "client_assertion": support.assertion(client_id, rsa, aud=support.TOKEN_URL)}
    assert (await http.post("/auth/revoke", data=data)).status_code == 200
    assert_invalid_token(await http.get("/fhir/Patient/x", headers=bearer(token)), "revoked")


# ---- scopes: 403 when they do not cover the interaction ----------------------------------------


@pytest.mark.parametrize(
    ("scope", "method", "path", "body"),
    [
        ("system/Patient.r", "POST", "/fhir/Patient", PATIENT),  # no c
        ("system/Patient.rs", "DELETE", "/fhir/Patient/p1", None),  # no d
        ("system/Observation.cruds", "GET", "/fhir/Patient/p1", None),  # another type
        ("system/*.read", "PUT", "/fhir/Patient/p1", {**PATIENT, "id": "p1"}),  # v1 read: no u
        ("system/*.write", "GET", "/fhir/Patient/p1", None),  # v1 write: no r
        ("system/Patient.crds", "PATCH", "/fhir/Patient/p1", [{"op": "add", "path": "/active", "value": True}]),
    ],
)
async def test_scope_that_does_not_cover_the_interaction_is_403(http, auth_app, scope, method, path, body):
    admin = bearer(sign_access_token(auth_app, token_claims()))
    assert (await http.put("/fhir/Patient/p1", json={**PATIENT, "id": "p1"}, headers=admin)).status_code == 201
    token = sign_access_token(auth_app, token_claims(scope=scope))
    headers = bearer(token)
    if method == "PATCH":
        headers["Content-Type"] = "application/json-patch+json"
    r = await http.request(method, path, headers=headers, json=body)
    assert r.status_code == 403, r.text
    assert r.json()["issue"][0]["code"] == "forbidden"


async def test_v1_scopes_grant_as_v2(http, auth_app):
    admin = bearer(sign_access_token(auth_app, token_claims()))
    await http.put("/fhir/Patient/p1", json={**PATIENT, "id": "p1"}, headers=admin)
    read = bearer(sign_access_token(auth_app, token_claims(scope="system/*.read")))
    assert (await http.get("/fhir/Patient/p1", headers=read)).status_code == 200
    assert (await http.get("/fhir/Patient/p1/_history/1", headers=read)).status_code == 200
    write = bearer(sign_access_token(auth_app, token_claims(scope="system/Patient.write")))
    assert (await http.put("/fhir/Patient/p1", json={**PATIENT, "id": "p1"}, headers=write)).status_code == 200


async def test_every_bundle_entry_is_checked(http, auth_app):
    token = sign_access_token(auth_app, token_claims(scope="system/Patient.c"))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": PATIENT, "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
             "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    r = await http.post("/fhir", json=bundle, headers=bearer(token))
    assert r.status_code == 403, r.text
    admin = bearer(sign_access_token(auth_app, token_claims()))
    history = await http.get("/fhir/Patient/_history", headers=admin)
    assert history.json()["total"] == 0  # the transaction left nothing behind


async def test_restricted_scope_grants_nothing(http, auth_app):
    token = sign_access_token(auth_app, token_claims(scope="system/Patient.rs?gender=female"))
    assert (await http.get("/fhir/Patient/p1", headers=bearer(token))).status_code == 403
