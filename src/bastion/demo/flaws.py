"""The demo's flaw registry: which flaws exist, where they live and which checks must find them.

This table is the test oracle of the whole suite: planting a flaw must make each of its `checks`
fire, and the hardened twin (no flaws) must make none of them fire. Ids are a contract.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Flaw:
    id: str
    title: str
    checks: tuple[str, ...]
    location: str


_TABLE: tuple[Flaw, ...] = (
    Flaw("debug_console", "Werkzeug interactive debugger exposed", ("config.debug-exposed",),
         "GET /console (Werkzeug debugger, evalex on; PIN-protected)"),
    Flaw("verbose_errors", "Unhandled exceptions return a Python traceback", ("config.stack-trace",),
         "GET /invoices?page= (non-integer page raises ValueError; error handler returns the traceback)"),
    Flaw("version_banner", "Server and framework versions in response headers", ("config.version-banner",),
         "every response: Server: DemoCorp-API/1.4.2 Python/3.11.7, X-Powered-By: Flask/3.1.3"),
    Flaw("exposed_files", "Project directory served as static files", ("config.file-exposure",),
         "GET /.env, /.git/config, /.git/HEAD, /app.py.bak, /settings.py~ "
         "and GET /backup/ (directory listing)"),
    Flaw("missing_security_headers", "No CSP, X-Content-Type-Options, X-Frame-Options or Referrer-Policy",
         ("headers.csp-missing", "headers.xcto-missing", "headers.frame-options-missing",
          "headers.referrer-policy-missing"),
         "every response"),
    Flaw("missing_hsts", "No Strict-Transport-Security on https responses", ("headers.hsts-missing",),
         "every https response"),
    Flaw("insecure_session_cookie", "Session cookie without HttpOnly, Secure and SameSite",
         ("headers.cookie-flags",), "Set-Cookie: session_id on GET / (first visit) and POST /login"),
    Flaw("cors_reflect_origin", "CORS reflects any http(s) Origin with credentials",
         ("cors.origin-reflection",),
         "every /api/ route (Access-Control-Allow-Origin echoes Origin, Allow-Credentials: true)"),
    Flaw("cors_null_origin", "CORS allows Origin: null with credentials", ("cors.null-origin",),
         "every /api/ route (allowlist contains 'null')"),
    Flaw("sqli_error", "Error-based SQL injection (DB error text returned)", ("injection.sql",),
         "GET /products?category= (query string; f-string SQL, sqlite3 error message in a 500)"),
    Flaw("sqli_boolean", "Boolean-based blind SQL injection in a nested JSON field", ("injection.sql",),
         "POST /api/invoices/search (JSON filter.status; errors swallowed, empty list)"),
    Flaw("sqli_time", "Time-based blind SQL injection through a request header", ("injection.sql",),
         "GET /api/stats (header X-Tenant; result ignored; sqlite sleep(n) function, capped at 3 s)"),
    Flaw("xss_reflected", "Reflected XSS in the search page", ("injection.xss-reflected",),
         "GET /search?q= (query string echoed unescaped into HTML)"),
    Flaw("xss_upload_filename", "Reflected XSS through an uploaded file's name", ("injection.xss-reflected",),
         "POST /upload (multipart file 'document': its file name is echoed unescaped)"),
    Flaw("xss_stored", "Stored XSS in the guestbook", ("injection.xss-stored",),
         "POST /guestbook (form field message) rendered unescaped on GET /guestbook"),
    Flaw("path_traversal", "Path traversal in file download", ("injection.path-traversal",),
         "GET /files/{name} (path segment; os.path.join without containment check)"),
    Flaw("command_injection", "OS command injection in the network diagnostic", ("injection.command", "fuzz.sink"),
         "POST /tools/ping (form or JSON field host; shell=True)"),
    Flaw("ssti", "Server-side template injection through a cookie", ("injection.ssti",),
         "GET / (cookie display_name rendered with render_template_string)"),
    Flaw("code_injection", "Python code injection in the calculator", ("injection.code",),
         "GET /tools/calc?expr= (query string passed to eval())"),
    Flaw("xxe", "XML external entities resolved on import", ("injection.xxe",),
         "POST /api/import (application/xml body; lxml with resolve_entities=True, load_dtd=True)"),
    Flaw("open_redirect", "Open redirect after login and logout", ("injection.open-redirect",),
         "GET /logout?next= and POST /login (field next) redirect to any URL"),
    Flaw("crlf_injection", "CRLF injection into a response header", ("injection.crlf",),
         "GET /set-language?lang= (value written raw into Set-Cookie by a hand-rolled WSGI header hook)"),
    Flaw("invoice_bola", "Any signed-in user can read any user's invoice (BOLA/IDOR)", ("authz.bola",),
         "GET /api/invoices/{id} (ownership not checked for signed-in users)"),
    Flaw("admin_export_bfla", "Admin user export reachable by every signed-in user (BFLA)",
         ("authz.bfla", "authz.policy-drift"),
         "GET /admin/export (login required instead of the admin role)"),
    # --- authorization: writes, mass assignment, data exposure, stale privileges (bastion/demo/profile.py) ---
    Flaw("profile_mass_assignment", "Profile update copies the role field from the request (mass assignment)",
         ("authz.mass-assignment",),
         "POST /api/profile (JSON field role persisted; read back on GET /api/profile, grants /admin)"),
    Flaw("invoice_write_bola", "Any signed-in user can change or delete any user's invoice (BOLA on writes)",
         ("authz.bola-write", "authz.policy-drift"),
         "PUT /api/invoices/{invoice_id} and DELETE /api/invoices/{invoice_id} (ownership not checked)"),
    Flaw("excessive_data_exposure", "The member directory returns whole user rows (password hashes, emails)",
         ("authz.data-exposure",),
         "GET /api/users (every column of every user, to every signed-in user)"),
    Flaw("stale_privileges", "A session keeps the role it was first used with (demotion needs a re-login)",
         ("authz.stale-privileges",),
         "every signed-in request (role cached per session); role changes via PATCH /api/admin/users/{user_id}"),
    # --- tokens / JWT (bastion/demo/tokens.py) ---
    Flaw("jwt_alg_none", "Unsigned JWTs (alg none) accepted as access tokens", ("jwt.alg-none",),
         "every bearer-authenticated route (verify_access_token: alg none decoded without a signature)"),
    Flaw("jwt_key_confusion", "HS256 tokens verified with the RS256 public key as HMAC secret",
         ("jwt.key-confusion",),
         "every bearer-authenticated route (HMAC keyed with the PEM published at /.well-known/jwks.json)"),
    Flaw("jwt_kid_injection", "JWT kid header joined into a key-file path", ("jwt.kid-injection",),
         "every bearer-authenticated route (kid ../../dev/null gives an empty HMAC key)"),
    Flaw("jwt_signature_unchecked", "Token signature not verified on the profile endpoint",
         ("jwt.signature-unchecked",), "GET /api/me (decodes the bearer token with verify_signature off)"),
    Flaw("jwt_weak_secret", "Refresh tokens signed with a published example secret", ("jwt.weak-secret",),
         "POST /api/auth/token and /api/auth/refresh (HS256 key from the FastAPI tutorial)"),
    Flaw("jwt_no_expiry", "Access tokens issued and accepted without an expiry", ("jwt.expiry",),
         "POST /api/auth/token (no exp claim) and every bearer-authenticated route (exp not required)"),
    Flaw("token_in_query", "Access token accepted in the query string", ("jwt.token-in-url",),
         "every bearer-authenticated route (?access_token=)"),
    Flaw("refresh_token_reuse", "Spent refresh tokens accepted again after rotation", ("jwt.refresh-reuse",),
         "POST /api/auth/refresh (used jti not rejected)"),
    # --- JWT claim tampering (bastion/demo/jwt_claims.py) ---
    Flaw("jwt_role_claim_trusted", "Admin API reads the role claim of a JWT it never verifies",
         ("jwt.claim-escalation",), "GET /api/admin/metrics (role from the payload decoded with verify_signature off)"),
    # --- authentication: login, sign-up, password reset and change (bastion/demo/accounts.py) ---
    Flaw("login_no_lockout", "Unlimited password guesses on the login form", ("ratelimit.login",),
         "POST /login and POST /api/auth/token (no failure counter, no lockout, no Retry-After)"),
    Flaw("login_user_enumeration", "Login failures say whether the username exists", ("authn.user-enumeration",),
         "POST /login ('No account with that username.' vs 'Incorrect password.')"),
    Flaw("reset_user_enumeration", "Password reset says whether the e-mail address is registered",
         ("authn.user-enumeration",), "POST /password-reset (404 'No account is registered...' for unknown addresses)"),
    Flaw("reset_no_rate_limit", "Unlimited password-reset e-mails for one address", ("ratelimit.password-reset",),
         "POST /password-reset (no per-address limit)"),
    Flaw("reset_token_in_response", "Password-reset token returned in the reset response",
         ("authn.reset-token-leak",),
         "POST /password-reset (JSON reset_token / HTML 'development' reset link carrying the token)"),
    Flaw("reset_token_reuse", "Password-reset tokens stay valid after use", ("authn.reset-token-reuse",),
         "POST /password-reset/confirm (used flag neither checked nor set)"),
    Flaw("weak_password_policy", "Any non-empty password accepted", ("authn.weak-password-policy",),
         "POST /signup, POST /account/password, POST /password-reset/confirm (no length or deny-list rule)"),
    Flaw("credentials_in_url", "Login accepts credentials in the query string", ("authn.credentials-in-url",),
         "POST /login?username=...&password=... (request.values instead of request.form)"),
    # --- sessions and the second factor (bastion/demo/mfa.py, login/logout in flask_app.py) ---
    Flaw("session_fixation", "Pre-login session id promoted at login (session fixation)", ("session.fixation",),
         "POST /login and POST /mfa (the visitor's session_id from GET / is reused instead of rotated)"),
    Flaw("logout_not_server_side", "Logout only clears the cookie; the session stays valid",
         ("session.logout",), "GET /logout (the sessions row is not deleted)"),
    Flaw("session_no_expiry", "Sessions never expire (cookie until 2100, no idle or absolute timeout)",
         ("session.expiry", "session.no-idle-timeout", "session.no-absolute-timeout"),
         "Set-Cookie: session_id; Expires=Fri, 01 Jan 2100 and no server-side timeout"),
    Flaw("session_weak_id", "Session ids made of the clock and a counter", ("session.entropy",),
         "every new session_id (unix time + sequential counter)"),
    Flaw("session_cookie_broad_domain", "Session cookie scoped to the parent domain", ("session.cookie-scope",),
         "Set-Cookie: session_id; Domain=<parent of the request host>"),
    Flaw("mfa_step_skippable", "Password-only sessions can use the app without the TOTP step", ("mfa.skip",),
         "every cookie-authenticated route (a session with MFA pending counts as logged in)"),
    Flaw("otp_not_bound", "A one-time code of any enrolled account is accepted", ("mfa.otp-not-bound",),
         "POST /mfa (the code is checked against every account's TOTP seed)"),
    Flaw("otp_reuse", "A one-time code can be used again within its window", ("mfa.otp-reuse",),
         "POST /mfa (spent time steps not rejected)"),
    Flaw("otp_unlimited_guesses", "Unlimited wrong one-time codes", ("mfa.otp-guessing",),
         "POST /mfa (failure counter not enforced)"),
    Flaw("remember_device_forgeable", "Remember-device cookie is unsigned JSON naming the user",
         ("mfa.remember-device",), "Set-Cookie: mfa_remember=base64({\"user\": ...}) after POST /mfa remember=1; "
         "POST /login skips the TOTP step for any account named in it"),
    # --- fuzzing (bastion/demo/reports.py) ---
    Flaw("fuzz_crash", "Basket report divides by zero on an empty list (found only by fuzzing)", ("fuzz.crash",),
         "POST /api/reports/basket (JSON quantities: [] -> ZeroDivisionError, 500)"),
    Flaw("fuzz_contract", "Basket report answers discount: null where its OpenAPI document promises a number",
         ("fuzz.contract",), "POST /api/reports/basket (baskets under 10 items; schema in GET /openapi.json)"),
    # --- runtime injection: deserialization, SSRF, XPath, LDAP, blind SQL/command (bastion/demo/integrations.py) ---
    Flaw("pickle_import", "Preferences import unpickles the client's blob", ("deserialization.untrusted-data",),
         "POST /api/preferences/import (JSON field blob: base64 pickle passed to pickle.loads)"),
    Flaw("yaml_load", "Automation rules imported with yaml.load and the unsafe Loader",
         ("deserialization.untrusted-data",), "POST /api/rules/import (raw body; yaml.Loader builds Python objects)"),
    Flaw("webhook_ssrf", "Webhook test delivery fetches any URL, redirects included", ("ssrf.request-forgery",),
         "POST /api/webhooks/test (JSON field url; loopback, internal and metadata addresses reachable)"),
    Flaw("blind_sqli", "Blind SQL injection in search analytics (no error, no reflection)", ("injection.sql",),
         "GET /api/catalog/search?q= (f-string count query, result discarded, errors swallowed)"),
    Flaw("blind_command_injection", "Command injection in report archiving with no output", ("injection.command",),
         "POST /api/archives (form field name; shell=True, output discarded, not awaited)"),
    Flaw("xpath_injection", "XPath injection in the product catalog lookup", ("injection.xpath",),
         "GET /api/catalog/lookup?sku= (f-string XPath predicate evaluated by lxml)"),
    Flaw("ldap_injection", "LDAP filter injection in the staff directory", ("injection.ldap",),
         "GET /api/directory?name= (value spliced into an ldap3 search filter unescaped)"),
    # --- runtime crypto, logs and session trust (bastion/demo/notes.py, db.py, accounts.py, flask_app.login) ---
    Flaw("aes_gcm_static_nonce", "Stored notes encrypted with AES-GCM under one key and a constant nonce",
         ("crypto.cipher-misuse",), "POST /api/notes (notes.seal: nonce = 12 zero bytes for every note)"),
    Flaw("md5_password_hashes", "New and changed passwords hashed with one unsalted MD5 round",
         ("crypto.weak-password-hash",),
         "POST /signup, POST /account/password, POST /password-reset/confirm (db.hash_password)"),
    Flaw("random_reset_tokens", "Password-reset tokens drawn from the random module", ("crypto.insecure-random",),
         "POST /password-reset (accounts.new_reset_token: random.choice, a Mersenne Twister)"),
    Flaw("password_logged_at_login", "Login attempts logged with the password", ("privacy.secrets-in-logs",),
         "POST /login (logger.info of the submitted password, on every attempt)"),
    Flaw("session_trust_boundary", "Display currency stored in the session without validation",
         ("session.trust-boundary",), "GET /preferences?currency= (raw query value written to the Flask session)"),
    # --- resilience and queues (demo/integrations_deps.py; dependencies wired to Bastion's doubles) ---
    Flaw("idp_outage_fail_open", "Partner API trusts unverified tokens while the IdP is unreachable",
         ("resilience.fail-open",), "GET /api/partner/orders (introspection error -> 'degraded mode' decode)"),
    Flaw("idp_error_leak", "Partner API answers an IdP failure with the IdP's address and the client error",
         ("resilience.error-leak",), "GET /api/partner/orders (503 body carries the introspection exception)"),
    Flaw("idp_no_recovery", "A token seen while the IdP was failing stays rejected after the IdP is back",
         ("resilience.no-recovery",), "GET /api/partner/orders (failed introspections remembered for good)"),
    Flaw("idp_retry_storm", "Partner API asks a failing IdP 8 times per call, without back-off",
         ("resilience.retry-storm",), "GET /api/partner/orders (introspection retried in a tight loop)"),
    Flaw("idp_no_timeout", "Partner API waits for a hung IdP without a timeout",
         ("resilience.timeout",), "GET /api/partner/orders (httpx client with timeout=None)"),
    Flaw("service_token_wrong_audience", "Partner API accepts IdP tokens issued for another audience",
         ("queues.service-token",), "GET /api/partner/orders (introspected token's aud never compared)"),
    Flaw("pickle_queue_consumer", "Job worker unpickles messages marked application/python-pickle",
         ("queues.unsafe-deserialization", "drills.poisoned-message-undetected"),
         "POST /api/jobs/drain (pickle.loads of the message body)"),
    Flaw("poison_message_lost", "Job worker acknowledges undecodable messages instead of dead-lettering them",
         ("queues.poison-lost",), "POST /api/jobs/drain (ack + log on a decode error)"),
    Flaw("dlq_without_trace_id", "Job worker retries invalid jobs by re-publishing them without their trace id",
         ("queues.dlq-trace",), "POST /api/jobs/drain (ack + publish of the bare body, then dead-lettered)"),
    Flaw("queue_replay_accepted", "Job worker runs the same signed job again when it is published twice",
         ("queues.replay-accepted",), "POST /api/jobs/drain (no record of processed job digests)"),
    Flaw("queue_unsigned_accepted", "Job worker runs jobs that carry no signature",
         ("queues.unsigned-accepted",), "POST /api/jobs/drain (signature checked only when present)"),
    # --- database and cache outages (demo/resilience_deps.py; a sqlite permissions file, a Redis cache double) ---
    Flaw("permission_db_fail_open", "Ledger permission lookup grants access when the permissions database fails",
         ("resilience.fail-open",), "GET /api/deps/ledger (except Exception: return True around the lookup)"),
    *((Flaw("revocation_cache_fail_open", "Revoked sessions accepted while the revocation cache is down",
            ("resilience.fail-open",), "GET /api/deps/statement (a Redis error counts as 'not revoked'; "
            "needs redis-server, left out without it)"),) if shutil.which("redis-server") else ()),
    # --- TLS and backups (demo/tls.py, demo/backup.py; the model's tls.context and data_stores) ---
    Flaw("weak_tls_config", "TLS 1.0/1.1 and NULL/anonymous cipher suites enabled",
         ("tls.protocol-outdated", "tls.weak-cipher"),
         "tls.context bastion.demo.tls:server_context (SECLEVEL=0, minimum TLS 1.0); `bastion demo serve --tls`"),
    Flaw("weak_tls_certificate", "Leftover self-signed TLS certificate: expired, 1024-bit RSA, wrong host name",
         ("tls.certificate-validity", "tls.certificate-untrusted", "tls.certificate-hostname",
          "tls.certificate-weak", "tls.pin-mismatch"),
         "tls.context bastion.demo.tls:server_context (legacy.democorp.example, 2018-2020; not the pinned key)"),
    Flaw("unencrypted_backup", "Nightly database backup stored unencrypted in the project directory",
         ("backup.unencrypted",), "project/backup/shop-nightly.sqlite3 (plain SQLite copy; served with exposed_files)"),
    Flaw("stale_backup", "Newest database backup is three days old (RPO 24h)", ("backup.stale",),
         "the nightly backup file's modification time (bastion.demo.backup.STALE_AGE_S)"),
    Flaw("truncated_backup", "Newest database backup is cut off half-way and cannot be restored", ("backup.restore",),
         "the nightly backup file holds only its first half"),
    # --- privacy and audit trail (demo/privacy.py; the model's masking, retention and audit sections) ---
    Flaw("pii_in_export", "Payment-methods export carries full card numbers and IBANs", ("privacy.pii-in-export",),
         "GET /api/payment-methods/export (CSV: card and iban columns unmasked)"),
    Flaw("purge_misses_exports", "Retention purge leaves expired payment methods in the export archive",
         ("privacy.retention",), "POST /admin/privacy/purge (deletes payment_methods rows; GET /api/exports keeps "
         "the archived exports holding them)"),
    Flaw("audit_log_editable", "Audit records unsealed; the verification endpoint only counts them",
         ("audit.tamper-evident",), "GET /admin/audit/verify (valid while any record exists; no HMAC chain)"),
    Flaw("audit_log_has_passwords", "Failed-login audit records store the password that was tried",
         ("audit.secrets-in-trail",), "POST /login (audit detail 'username=... password=...' on failure)"),
    # --- response schemas (bastion/demo/openapi_doc.py) ---
    Flaw("undeclared_password_hash_field", "Account summary returns password_hash, which its OpenAPI schema "
         "does not declare", ("authz.undeclared-field",),
         "GET /api/account/summary (declared {id, name, email}; the whole user row is serialised)"),
    # --- privacy: erasure and audited events (demo/privacy_erasure.py, flask_app.login) ---
    Flaw("erasure_misses_search_index", "Erasure job leaves the user's entry in the customer search index",
         ("privacy.erasure-incomplete",), "bastion.demo.privacy_erasure:erase_user (GET /admin/search-index keeps "
         "the erased user's name and e-mail)"),
    Flaw("audit_failed_login_without_actor", "Failed form logins are audited without the account name tried",
         ("audit.events-missing",), "POST /login (audit record 'login.failure' with no username)"),
    Flaw("password_in_welcome_mail", "The welcome mail after sign-up repeats the password in clear",
         ("privacy.pii-in-mail",), "POST /signup (welcome mail via SMTP_HOST/SMTP_PORT: 'Your password, ...')"),
    # --- identity leaks: tokens and reset links in logs and Referers, IdP token expiry (demo/identity_leaks.py) ---
    Flaw("token_logged", "API request logging writes the Authorization header (bearer JWTs)", ("jwt.token-in-logs",),
         "every /api/ request with an Authorization header (identity_leaks._log_api_request, logger.info)"),
    Flaw("reset_token_logged", "Password-reset links logged with their token", ("authn.reset-token-in-logs",),
         "POST /password-reset (identity_leaks.log_reset_issued logs the /password-reset/new?token= link)"),
    Flaw("reset_token_referer", "Reset landing page sends its URL (with the token) as Referer to other sites",
         ("authn.reset-token-referer",),
         "GET /password-reset/new?token= (meta referrer unsafe-url; links to an external help centre)"),
    Flaw("idp_token_expiry_unchecked", "Partner catalog accepts expired and not-yet-valid IdP tokens",
         ("jwt.expired-accepted-idp",), "GET /api/partner/catalog (PyJWT decode with a leeway of two days)"),
    # --- stateful fuzzing (demo/fuzz_state.py) ---
    Flaw("fuzz_state_delete_ineffective", "Deleted bookmarks stay readable by id (soft delete not filtered)",
         ("fuzz.state-delete",), "DELETE /api/bookmarks/{id} answers 204; GET /api/bookmarks/{id} still returns it"),
    Flaw("fuzz_state_update_lost", "Label updates answer 200 but the url is never saved", ("fuzz.state-update",),
         "PUT /api/labels/{id} (echoes the request; GET /api/labels/{id} shows the old url)"),
    Flaw("fuzz_state_crash_after_update", "Reading a draft after an edit crashes (revision stored as text)",
         ("fuzz.stateful",), "PUT /api/drafts/{id} stores revision 'r2'; GET /api/drafts/{id} then raises (500)"),
    Flaw("fuzz_state_foreign_read", "Memos readable by id by any signed-in user", ("fuzz.state-access",),
         "GET /api/memos/{memo_id} (no owner check; the policy says [owner])"),
    # --- breach drills (demo/alerts.py; the model's alerts section) ---
    Flaw("no_alert_credential_stuffing", "Failed logins not counted per client: credential stuffing raises no alert",
         ("drills.credential-stuffing-undetected",),
         "POST /login, POST /api/auth/token (no WARNING on shop.security, no webhook call, however many failures)"),
    # --- team memberships and roles: stale, member-writable, unaudited (demo/teams.py) ---
    Flaw("stale_team_membership", "Team membership cached per session/token: a removed member keeps access",
         ("authz.stale-privileges",),
         "DELETE /api/teams/{team_id}/members/{user_id}; the old session still reads GET /api/teams/{team_id}/runbook"),
    Flaw("team_roles_member_writable", "Any team member may change team roles (site-admin check missing)",
         ("drills.privilege-escalation-undetected",),
         "PUT /api/teams/{team_id}/members/{user_id} {role: admin} as a member (undetected with the unaudited flaw)"),
    Flaw("team_role_change_unaudited", "Team role changes and member removals leave no audit record",
         ("audit.events-missing",), "PUT and DELETE /api/teams/{team_id}/members/{user_id} (no audit() call)"),
    # Cross-site request forgery (demo/csrf_flaws.py).
    Flaw("csrf_signature_update", "Signature form accepts cross-site POSTs (no anti-CSRF token, no Origin check)",
         ("csrf.state-change",), "POST /account/signature (form field signature; session cookie only)"),
    # Self-registration that trusts the body (demo/signup_flaws.py).
    Flaw("signup_role_from_body", "API sign-up stores the role the client sends (role: admin, admin: true)",
         ("authz.signup-mass-assignment",), "POST /api/register {username, email, password, role: admin}"),
    Flaw("password_change_by_path", "Any signed-in user sets any user's password through the path",
         ("authz.bola-credentials",), "PUT /api/users/{username}/password {password} (the path is not the caller)"),
)

FLAWS: dict[str, Flaw] = {f.id: f for f in _TABLE}

# Flaws the FastAPI variant plants; the others are accepted by create_fastapi_app but not planted.
FASTAPI_FLAWS: frozenset[str] = frozenset({
    "version_banner", "missing_security_headers", "missing_hsts", "insecure_session_cookie",
    "cors_reflect_origin", "cors_null_origin", "sqli_error", "xss_reflected", "ssti", "code_injection",
    "open_redirect",
})


def resolve_flaws(spec: str | Iterable[str] | None = "all") -> frozenset[str]:
    """Turn "all", "none", "a,b" or an iterable of ids into a set of flaw ids (ValueError on unknown)."""
    if spec is None:
        return frozenset()
    if isinstance(spec, str):
        text = spec.strip()
        if text == "all":
            return frozenset(FLAWS)
        if text in ("", "none"):
            return frozenset()
        ids = [part.strip() for part in text.split(",") if part.strip()]
    else:
        ids = [str(part).strip() for part in spec]
    unknown = sorted(set(ids) - set(FLAWS))
    if unknown:
        raise ValueError(f"unknown demo flaw id(s): {', '.join(unknown)} (known: {', '.join(sorted(FLAWS))})")
    return frozenset(ids)
