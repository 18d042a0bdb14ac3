"""SMART Backend Services: client_credentials with private_key_jwt assertions (SMART App Launch 2,
client-confidential-asymmetric "Authenticating to the Token endpoint" and "FHIR Authorization Server
Obligations"), plus client_secret_basic for clients that cannot hold keys.
"""

from __future__ import annotations

import base64
import time

from joserfc import jwt

from tests.auth import support
from tests.auth.support import ASSERTION_TYPE, assertion, backend_token, bearer, register

REFERRALS = "system/ServiceRequest.rs system/Task.rus system/Patient.rs system/Observation.rs"


def referral(patient_id: str, clinic: str) -> dict:
    return {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {"text": "Anaemia: evaluation at the health centre"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "performer": [{"reference": f"Organization/{clinic}"}],
    }


async def seed(http, auth_app, rsa) -> dict[str, str]:
    """Two clinics, one referral each, created by an admin integrator."""
    admin_id, _ = await register(auth_app, scopes="system/*.cruds", keys=(rsa,), admin=True)
    token = await support.access_token(http, admin_id, rsa, "system/*.cruds")
    ids = {}
    for clinic in ("clinic-a", "clinic-b"):
        org = await http.put(f"/fhir/Organization/{clinic}", json={"resourceType": "Organization", "id": clinic,
                                                                   "name": clinic}, headers=bearer(token))
        assert org.status_code == 201, org.text
        patient = await http.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "female"},
                                  headers=bearer(token))
        request = await http.post("/fhir/ServiceRequest", json=referral(patient.json()["id"], clinic),
                                  headers=bearer(token))
        assert request.status_code == 201, request.text
        ids[clinic] = request.json()["id"]
    return ids


async def test_clinic_gets_a_token_with_an_rs384_assertion_and_pulls_only_its_referrals(http, auth_app, rsa):
    ids = await seed(http, auth_app, rsa)
    clinic_id, _ = await register(auth_app, scopes=REFERRALS, keys=(rsa,), organization="Organization/clinic-a")
    r = await backend_token(http, clinic_id, rsa, "system/ServiceRequest.rs system/Patient.rs")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300  # SMART Backend Services: five minutes by default
    assert body["scope"] == "system/ServiceRequest.rs system/Patient.rs"
    assert "refresh_token" not in body
    assert r.headers["cache-control"] == "no-store"
    header = jwt.decode(body["access_token"], support.service(auth_app).keys.verification_keys()).header
    assert header["typ"] == "at+jwt"

    own = await http.get(f"/fhir/ServiceRequest/{ids['clinic-a']}", headers=bearer(body["access_token"]))
    assert own.status_code == 200, own.text
    other = await http.get(f"/fhir/ServiceRequest/{ids['clinic-b']}", headers=bearer(body["access_token"]))
    assert other.status_code == 404  # another clinic's referral does not exist for this clinic
    history = await http.get("/fhir/ServiceRequest/_history", headers=bearer(body["access_token"]))
    assert history.status_code == 200
    assert [e["resource"]["id"] for e in history.json()["entry"]] == [ids["clinic-a"]]


async def test_es384_assertions_are_accepted(http, auth_app, ec):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", keys=(ec,))
    r = await backend_token(http, client_id, ec, "system/Patient.rs")
    assert r.status_code == 200, r.text


async def test_token_lifetime_and_scopes_follow_the_registration(http, auth_app, rsa):
    client_id, _ = await register(auth_app, scopes="system/Patient.r system/Observation.rs", keys=(rsa,))
    r = await backend_token(http, client_id, rsa, "system/Patient.cruds system/Observation.read user/Task.rs")
    assert r.status_code == 200, r.text
    # Patient narrowed to what is registered, v1 kept as asked, user/ never given to a system
    assert r.json()["scope"] == "system/Patient.r system/Observation.read"
    claims = jwt.decode(r.json()["access_token"], support.service(auth_app).keys.verification_keys()).claims
    assert claims["exp"] - claims["iat"] == 300
    assert claims["aud"] == support.FHIR_BASE
    assert claims["iss"] == f"{support.BASE}/auth"
    assert claims["client_id"] == client_id


async def test_no_grantable_scope_is_invalid_scope(http, auth_app, rsa):
    client_id, _ = await register(auth_app, scopes="system/Patient.r", keys=(rsa,))
    r = await backend_token(http, client_id, rsa, "system/Observation.rs")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_scope"


async def test_keys_by_url_are_cached_and_a_new_kid_is_fetched(http, auth_app, jwks_server, rsa, ec, monkeypatch):
    url = "https://ehr.example.org/.well-known/jwks-rotating.json"
    jwks_server.publish(url, support.public_jwks(rsa), {"Cache-Control": "max-age=600"})
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", jwks_url=url)
    before = jwks_server.fetches.count(url)
    assert (await backend_token(http, client_id, rsa, "system/Patient.rs")).status_code == 200
    assert (await backend_token(http, client_id, rsa, "system/Patient.rs")).status_code == 200
    assert jwks_server.fetches.count(url) == before + 1  # cached
    jwks_server.publish(url, support.public_jwks(rsa, ec), {"Cache-Control": "max-age=600"})  # rotation
    # An unknown kid right after a fetch does not make us hammer the client's server...
    assert (await backend_token(http, client_id, ec, "system/Patient.rs")).status_code == 401
    assert jwks_server.fetches.count(url) == before + 1
    # ...but a few seconds later it is looked up again, and the new key works.
    keys = support.service(auth_app).server.client_keys
    clock = keys.clock
    monkeypatch.setattr(keys, "clock", lambda: clock() + 11)
    r = await backend_token(http, client_id, ec, "system/Patient.rs")
    assert r.status_code == 200, r.text
    assert jwks_server.fetches.count(url) == before + 2


async def test_no_store_jwks_is_fetched_every_time(http, auth_app, jwks_server, rsa):
    url = "https://ehr.example.org/jwks-no-store.json"
    jwks_server.publish(url, support.public_jwks(rsa), {"Cache-Control": "no-store"})
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", jwks_url=url)
    before = jwks_server.fetches.count(url)
    for _ in range(2):
        assert (await backend_token(http, client_id, rsa, "system/Patient.rs")).status_code == 200
    assert jwks_server.fetches.count(url) == before + 2


async def test_jku_must_be_the_registered_url(http, auth_app, jwks_server, rsa):
    url = "https://ehr.example.org/jwks.json"
    jwks_server.publish(url, support.public_jwks(rsa))
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", jwks_url=url)
    ok = await backend_token(http, client_id, rsa, "system/Patient.rs", header={"jku": url})
    assert ok.status_code == 200, ok.text
    r = await backend_token(http, client_id, rsa, "system/Patient.rs", header={"jku": "https://evil.example/jwks"})
    assert_invalid_client(r, "jku")


# ---- unhappy paths: each refused with invalid_client (RFC 6749 5.2), status 401 -------------------


def assert_invalid_client(r, words: str) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"
    assert words.lower() in r.json()["error_description"].lower(), r.json()


async def test_expired_assertion(http, auth_app, rsa):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", keys=(rsa,))
    r = await backend_token(http, client_id, rsa, "system/Patient.rs", issued_at=time.time() - 600, lifetime=240)
    assert_invalid_client(r, "expired")


async def test_not_yet_valid_assertion(http, auth_app, rsa):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", keys=(rsa,))
    r = await backend_token(http, client_id, rsa, "system/Patient.rs", not_before=time.time() + 120)
    assert_invalid_client(r, "not yet valid")


async def test_assertion_issued_in_the_future(http, auth_app, rsa):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", keys=(rsa,))
    r = await backend_token(http, client_id, rsa, "system/Patient.rs", issued_at=time.time() + 120, lifetime=60)
    assert_invalid_client(r, "future")


async def test_wrong_signature(http, auth_app, rsa, rsa_other):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", keys=(rsa,))
    r = await backend_token(http, client_id, rsa_other, "system/Patient.rs")  # same kid, another private key
    assert_invalid_client(r, "signature")


async def test_alg_none(http, auth_app, rsa):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", keys=(rsa,))
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": support.TOKEN_URL, "exp": now + 60, "jti": "none-1"}
    r = await http.post("/auth/token", data={
        "grant_type": "client_credentials", "scope": "system/Patient.rs", "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": support.unsigned(claims, {"kid": rsa.kid, "typ": "JWT"}),
    })
    assert_invalid_client(r, "RS384")


async def test_symmetric_algorithm_refused(http, auth_app, rsa):
    # HS256 "signed" with the public key, the classic algorithm-confusion attack
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", keys=(rsa,))
    from joserfc.jwk import OctKey

    fake = OctKey.import_key(base64.urlsafe_b64encode(rsa.as_pem(private=False)).decode())
    now = int(time.time())
    token = jwt.encode({"alg": "HS256", "kid": rsa.kid}, {"iss": client_id, "sub": client_id, "aud": support.TOKEN_URL,
                                                       "exp": now + 60, "jti": "hs-1"}, fake, algorithms=["HS256"])
    r = await http.post("/auth/token", data={"grant_type": "client_credentials",
                                             "client_assertion_type": ASSERTION_TYPE,
                                             "client_assertion": token})
    assert_invalid_client(r, "RS384")


async def test_wrong_audience(http, auth_app, rsa):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", keys=(rsa,))
    r = await backend_token(http, client_id, rsa, "system/Patient.rs", aud=support.FHIR_BASE)
    assert_invalid_client(r, "aud")


async def test_wrong_issuer(http, auth_app, rsa):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", keys=(rsa,))
    r = await backend_token(http, client_id, rsa, "system/Patient.rs", iss="https://someone-else.example")
    assert_invalid_client(r, "iss")


async def test_replayed_jti(http, auth_app, rsa):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", keys=(rsa,))
    signed = assertion(client_id, rsa)
    data = {"grant_type": "client_credentials", "scope": "system/Patient.rs", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed}
    assert (await http.post("/auth/token", data=data)).status_code == 200
    assert_invalid_client(await http.post("/auth/token", data=data), "already used")


async def test_assertion_valid_for_more_than_five_minutes(http, auth_app, rsa):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", keys=(rsa,))
    r = await backend_token(http, client_id, rsa, "system/Patient.rs", lifetime=360)
    assert_invalid_client(r, "five minutes")


async def test_unknown_client(http, auth_app, rsa):
    r = await backend_token(http, "no-such-client", rsa, "system/Patient.rs")
    assert_invalid_client(r, "unknown client")


async def test_unknown_kid(http, auth_app, rsa, ec):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", keys=(rsa,))
    r = await backend_token(http, client_id, ec, "system/Patient.rs")
    assert_invalid_client(r, "kid")


async def test_missing_jti(http, auth_app, rsa):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", keys=(rsa,))
    now = int(time.time())
    token = jwt.encode({"alg": "RS384", "kid": rsa.kid}, {"iss": client_id, "sub": client_id, "aud": support.TOKEN_URL,
                                                        "exp": now + 60}, rsa, algorithms=["RS384"])
    r = await http.post("/auth/token", data={"grant_type": "client_credentials",
                                             "client_assertion_type": ASSERTION_TYPE,
                                             "client_assertion": token})
    assert_invalid_client(r, "jti")


async def test_removed_client_can_no_longer_authenticate(http, auth_app, rsa):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", keys=(rsa,))
    assert await support.service(auth_app).store.remove_client(client_id)
    assert_invalid_client(await backend_token(http, client_id, rsa, "system/Patient.rs"), "unknown client")


# ---- client_secret_basic -----------------------------------------------------------------------


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def test_client_secret_basic(http, auth_app):
    client_id, secret = await register(auth_app, scopes="system/Patient.rs", secret=True)
    r = await http.post("/auth/token", data={"grant_type": "client_credentials", "scope": "system/Patient.rs"},
                        headers=basic(client_id, secret))
    assert r.status_code == 200, r.text
    assert (await http.get("/fhir/Patient/none", headers=bearer(r.json()["access_token"]))).status_code == 404


async def test_wrong_client_secret(http, auth_app):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", secret=True)
    r = await http.post("/auth/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, "guess"))
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


async def test_key_client_cannot_fall_back_to_a_secret(http, auth_app, rsa):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", keys=(rsa,))
    r = await http.post("/auth/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, "x"))
    assert r.status_code == 401


async def test_public_client_cannot_use_client_credentials(http, auth_app):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", public=True,
                                  redirect_uris=(support.REDIRECT,))
    r = await http.post("/auth/token", data={"grant_type": "client_credentials", "client_id": client_id})
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
