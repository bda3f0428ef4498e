//! Google OAuth 2.0 for the Google connectors: the refresh-token flow (Google Ads,
//! acting as the agency user who consented) and the service-account JWT bearer flow
//! (RFC 7523; Drive). Both cache the access token until shortly before it expires,
//! refresh one caller at a time, and call the token endpoint through a
//! [`PlatformHttp`] so its timeouts and retries apply.

use std::{
    fmt,
    future::Future,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{StatusCode, header::HeaderMap};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{
    calls::CallCounter,
    error::{ErrorKind, PlatformError},
    http::{Call, Dialect, HttpSettings, PlatformHttp, Verdict, default_classify},
};

pub const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub const ADS_SCOPE: &str = "https://www.googleapis.com/auth/adwords";
pub const DRIVE_SCOPE: &str = "https://www.googleapis.com/auth/drive";
/// Refresh this long before expiry so no call starts with a token about to die.
const REFRESH_EARLY: Duration = Duration::from_secs(60);
/// Google rejects assertions that live longer than an hour.
const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// Token calls are rare (one an hour per source); this only stops a refresh storm.
const TOKEN_RATE_PER_SECOND: f64 = 5.0;

/// A Google protobuf `Duration` in JSON (`"8962s"`, `"0.5s"`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// `Some(trimmed)` unless unset or blank (an env var set to "" counts as unset).
pub(crate) fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// [`non_empty`] for a secret setting.
pub(crate) fn non_empty_secret(value: &Option<super::SecretString>) -> Option<&str> {
    super::expose(value).map(str::trim).filter(|v| !v.is_empty())
}

/// The token endpoint's own policy: the connector's retries and timeouts, a small rate.
fn token_http(platform: &'static str, connector: &HttpSettings, secrets: Vec<String>) -> PlatformHttp {
    let settings = HttpSettings {
        rate_per_second: TOKEN_RATE_PER_SECOND,
        burst: 5,
        account_rate_per_second: None,
        ..connector.clone()
    };
    PlatformHttp::new(platform, settings, Arc::new(OAuthDialect), secrets)
}

/// The token endpoint speaks RFC 6749 errors (`{"error":"invalid_grant",...}`), not the API's.
struct OAuthDialect;

#[derive(Deserialize)]
struct OAuthError {
    error: serde_json::Value,
    #[serde(default)]
    error_description: Option<String>,
}

impl Dialect for OAuthDialect {
    fn classify(&self, platform: &'static str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        if status.is_success() {
            return Verdict::Success;
        }
        let parsed = serde_json::from_slice::<OAuthError>(body).ok();
        let code = parsed.as_ref().and_then(|e| e.error.as_str().map(str::to_string));
        let Some(code) = code else {
            // Not an OAuth body: throttling and 5xx retry, any other refusal is about the credentials.
            return match default_classify(platform, status, headers, body) {
                Verdict::Fail(e) => Verdict::Fail(PlatformError { kind: ErrorKind::Auth, ..e }),
                other => other,
            };
        };
        let description = parsed.and_then(|e| e.error_description).unwrap_or_default();
        let message = format!("token request refused: {code}: {description}");
        let error =
            |kind| PlatformError::new(platform, kind, message.clone()).status(status.as_u16()).code(code.clone());
        match code.as_str() {
            "temporarily_unavailable" | "server_error" => Verdict::Retry(error(ErrorKind::Unavailable)),
            "slow_down" => Verdict::Retry(error(ErrorKind::Throttled).retry_after(super::http::retry_after(headers))),
            // invalid_grant, invalid_client, unauthorized_client, invalid_scope, ...: new credentials needed.
            _ => Verdict::Fail(error(ErrorKind::Auth)),
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// Posts a token request; returns the token and how long it lives.
async fn exchange(http: &PlatformHttp, url: &str, form: &[(&str, &str)]) -> Result<(String, Duration), PlatformError> {
    let reply = http.send(Call::new("oauth_token"), |c| c.post(url).form(form)).await?;
    let body: TokenResponse = reply.json()?;
    if body.access_token.trim().is_empty() {
        return Err(PlatformError::malformed(http.platform(), "token response without access_token"));
    }
    let secs = match &body.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    // Google always sends expires_in; when absent assume its usual hour.
    let lifetime =
        secs.filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64).unwrap_or(Duration::from_secs(3600));
    Ok((body.access_token, lifetime))
}

struct Cached {
    token: String,
    fresh_until: Instant,
}

/// One access token, refreshed by one caller at a time (the others wait for it).
#[derive(Default)]
struct TokenCache(Mutex<Option<Cached>>);

impl TokenCache {
    /// The cached token, or a new one from `fetch`; the flag says whether it was fetched now.
    async fn get<F, Fut>(&self, fetch: F) -> Result<(String, bool), PlatformError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(String, Duration), PlatformError>>,
    {
        let mut slot = self.0.lock().await;
        if let Some(cached) = slot.as_ref()
            && cached.fresh_until > Instant::now()
        {
            return Ok((cached.token.clone(), false));
        }
        let (token, lifetime) = fetch().await?;
        // Short-lived tokens (rare) are kept for half their life rather than not at all.
        let keep = lifetime.saturating_sub(REFRESH_EARLY).max(lifetime / 2);
        *slot = Some(Cached { token: token.clone(), fresh_until: Instant::now() + keep });
        Ok((token, true))
    }

    /// Drops `token` if it is still the cached one (another caller may have refreshed it already).
    async fn invalidate(&self, token: &str) {
        let mut slot = self.0.lock().await;
        if slot.as_ref().is_some_and(|c| c.token == token) {
            *slot = None;
        }
    }
}

/// The refresh-token flow: a user's long-lived consent traded for hour-long access tokens.
pub struct RefreshTokenSource {
    http: PlatformHttp,
    client_id: String,
    client_secret: String,
    refresh_token: String,
    token_url: String,
    cache: TokenCache,
}

impl RefreshTokenSource {
    /// Counts token calls with the connector's calls (see [`PlatformHttp::count_into`]).
    pub fn count_into(&mut self, calls: &Arc<CallCounter>) {
        self.http.count_into(calls);
    }

    /// `connector` supplies timeouts and retries; `platform` names the errors.
    pub fn new(
        platform: &'static str,
        connector: &HttpSettings,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
        token_url: &str,
    ) -> Self {
        Self {
            http: token_http(platform, connector, vec![client_secret.to_string(), refresh_token.to_string()]),
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            refresh_token: refresh_token.to_string(),
            token_url: token_url.to_string(),
            cache: TokenCache::default(),
        }
    }

    /// A valid access token, and whether it was fetched by this call.
    pub async fn token(&self) -> Result<(String, bool), PlatformError> {
        self.cache
            .get(|| async {
                let form = [
                    ("grant_type", "refresh_token"),
                    ("client_id", self.client_id.as_str()),
                    ("client_secret", self.client_secret.as_str()),
                    ("refresh_token", self.refresh_token.as_str()),
                ];
                exchange(&self.http, &self.token_url, &form).await
            })
            .await
    }

    /// Forgets `token` after the API refused it (expired or revoked early).
    pub async fn invalidate(&self, token: &str) {
        self.cache.invalidate(token).await
    }
}

/// The fields of a service-account key file this code uses.
#[derive(Clone, Deserialize)]
pub struct ServiceAccountKey {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub client_email: String,
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
}

fn default_token_uri() -> String {
    TOKEN_URL.to_string()
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountKey {
    /// Parses a key file's JSON; the error never quotes the text (it holds the private key).
    pub fn from_json(text: &str) -> Result<Self, String> {
        let key: Self = serde_json::from_str(text).map_err(|e| {
            format!("not a service-account key JSON (line {}, column {}: {:?})", e.line(), e.column(), e.classify())
        })?;
        match key.kind.as_deref() {
            None | Some("service_account") => Ok(key),
            Some(other) => Err(format!("key JSON has type `{other}`, expected `service_account`")),
        }
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
}

/// The JWT bearer flow: a signed assertion traded for an access token.
pub struct ServiceAccountSource {
    http: PlatformHttp,
    key: EncodingKey,
    key_id: Option<String>,
    client_email: String,
    scope: String,
    subject: Option<String>,
    audience: String,
    token_url: String,
    cache: TokenCache,
}

impl ServiceAccountSource {
    /// Counts token calls with the connector's calls (see [`PlatformHttp::count_into`]).
    pub fn count_into(&mut self, calls: &Arc<CallCounter>) {
        self.http.count_into(calls);
    }

    /// `subject` impersonates a Workspace user (domain-wide delegation); `token_url`
    /// overrides where the assertion is posted (the audience stays the key's `token_uri`).
    pub fn new(
        platform: &'static str,
        connector: &HttpSettings,
        key: &ServiceAccountKey,
        scopes: &[&str],
        subject: Option<&str>,
        token_url: Option<&str>,
    ) -> Result<Self, PlatformError> {
        let encoding = EncodingKey::from_rsa_pem(key.private_key.as_bytes()).map_err(|e| {
            PlatformError::new(
                platform,
                ErrorKind::NotConfigured,
                format!("service-account private_key is not an RSA PEM key: {e}"),
            )
        })?;
        Ok(Self {
            http: token_http(platform, connector, vec![]),
            key: encoding,
            key_id: key.private_key_id.clone(),
            client_email: key.client_email.clone(),
            scope: scopes.join(" "),
            subject: subject.map(str::to_string),
            audience: key.token_uri.clone(),
            token_url: token_url.unwrap_or(&key.token_uri).to_string(),
            cache: TokenCache::default(),
        })
    }

    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// The signed assertion for `now` (seconds since the epoch).
    pub fn assertion(&self, now: u64) -> Result<String, PlatformError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.key_id.clone();
        let claims = Claims {
            iss: &self.client_email,
            scope: &self.scope,
            aud: &self.audience,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
            sub: self.subject.as_deref(),
        };
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| {
            PlatformError::new(
                self.http.platform(),
                ErrorKind::NotConfigured,
                format!("cannot sign the service-account assertion: {e}"),
            )
        })
    }

    pub async fn token(&self) -> Result<(String, bool), PlatformError> {
        self.cache
            .get(|| async {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
                let assertion = self.assertion(now)?;
                let form = [("grant_type", JWT_BEARER_GRANT), ("assertion", assertion.as_str())];
                exchange(&self.http, &self.token_url, &form).await
            })
            .await
    }

    pub async fn invalidate(&self, token: &str) {
        self.cache.invalidate(token).await
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;
    use crate::sim::google_drive::SANDBOX_SERVICE_ACCOUNT_JSON;

    /// Public half of the sandbox's test-only key (see `sim::google_drive`).
    const SANDBOX_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA7NVq8IoPbJgZCibft86r
ufjcl3foR0l4Zvx15ttEqvTZP1IMmBk7fMkT5QBAWgmZqJrKzzFeISTO+Zl2uu0O
GqPjUdDkmTuBs1LDUe1Ofr7WWLMKSMvCu8wTvRkB03OoVm8nAT0zr2HqirW9W1xq
aiCmAIeYEm1qOgKdMT7g8qiJDIyrNz7O7j5LXcToBqK6XLDJqVOEbHEhsYhnU0SA
hMLosV3+vXkQx8wbFe2SIqEpZM3tr9nbZsIVDWxKhSA8T+wBOp3J2eUwCLFkW4MJ
pSCXdTb8oDRdJhkaWq87whRzzvmFqTJ87smAHLNxU/s380CefTBLogZ5/KDZD+3D
YQIDAQAB
-----END PUBLIC KEY-----
";

    fn source(subject: Option<&str>) -> ServiceAccountSource {
        let key = ServiceAccountKey::from_json(SANDBOX_SERVICE_ACCOUNT_JSON).unwrap();
        ServiceAccountSource::new("test", &HttpSettings::new(10.0, 10), &key, &[DRIVE_SCOPE], subject, None).unwrap()
    }

    #[derive(Deserialize)]
    struct Decoded {
        iss: String,
        scope: String,
        aud: String,
        iat: u64,
        exp: u64,
        sub: Option<String>,
    }

    #[test]
    fn assertion_is_rs256_signed_with_the_documented_claims() {
        let jwt = source(Some("ops@agency.example")).assertion(1_751_371_200).unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some("sandbox-test-only-key"));
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.set_audience(&[TOKEN_URL]);
        let key = DecodingKey::from_rsa_pem(SANDBOX_PUBLIC_KEY.as_bytes()).unwrap();
        let claims = jsonwebtoken::decode::<Decoded>(&jwt, &key, &validation).unwrap().claims;
        assert_eq!(claims.iss, "sandbox-test-only@switchboard-sandbox.iam.gserviceaccount.com");
        assert_eq!(claims.scope, DRIVE_SCOPE);
        assert_eq!(claims.aud, TOKEN_URL);
        assert_eq!(claims.iat, 1_751_371_200);
        assert!(claims.exp > claims.iat && claims.exp - claims.iat <= 3600);
        assert_eq!(claims.sub.as_deref(), Some("ops@agency.example"));
    }

    #[test]
    fn assertion_without_subject_has_no_sub_claim() {
        let jwt = source(None).assertion(1_751_371_200).unwrap();
        let payload = jwt.split('.').nth(1).unwrap();
        use base64::Engine;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert!(value.get("sub").is_none(), "{value}");
    }

    #[test]
    fn bad_keys_are_refused_without_quoting_them() {
        let err = ServiceAccountKey::from_json(r#"{"client_email":"x","private_key":"SECRET-PEM""#).unwrap_err();
        assert!(!err.contains("SECRET-PEM"), "{err}");
        let err = ServiceAccountKey::from_json(r#"{"type":"authorized_user","client_email":"x","private_key":"y"}"#)
            .unwrap_err();
        assert!(err.contains("authorized_user"), "{err}");
        let key = ServiceAccountKey::from_json(r#"{"client_email":"x","private_key":"not a pem"}"#).unwrap();
        assert_eq!(key.token_uri, TOKEN_URL);
        let err = ServiceAccountSource::new("test", &HttpSettings::new(1.0, 1), &key, &[DRIVE_SCOPE], None, None)
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::NotConfigured);
        assert!(!format!("{key:?}").contains("not a pem"));
    }

    #[test]
    fn google_settings_load_from_prefixed_variables() {
        let vars: Vec<(String, String)> = [
            ("GOOGLE_ADS_DEVELOPER_TOKEN", "dev"),
            ("GOOGLE_ADS_LOGIN_CUSTOMER_ID", "999-888-7777"),
            ("GOOGLE_ADS_API_VERSION", "v26"),
            ("GOOGLE_ADS_ACCOUNT_RATE_PER_SECOND", "0.5"),
            ("GOOGLE_ADS_MAX_WAIT_SECS", "30"),
            ("GOOGLE_DRIVE_SERVICE_ACCOUNT_FILE", "/etc/sa.json"),
            ("GOOGLE_DRIVE_SHARED_DRIVE_ID", "0Adrive"),
            ("GOOGLE_DRIVE_RETRY_BASE_MS", "250"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let s = crate::platforms::PlatformSettings::from_vars(&vars).unwrap();
        assert_eq!((s.google_ads.api_version.as_str(), s.google_ads.account_rate_per_second), ("v26", Some(0.5)));
        assert_eq!(s.google_ads.base_url, "https://googleads.googleapis.com");
        assert_eq!(
            s.google_ads.missing(),
            ["GOOGLE_ADS_CLIENT_ID", "GOOGLE_ADS_CLIENT_SECRET", "GOOGLE_ADS_REFRESH_TOKEN"]
        );
        assert!(s.google_drive.missing().is_empty());
        assert_eq!((s.google_drive.parent_folder_id.as_str(), s.google_drive.retry_base_ms), ("root", Some(250)));
        assert_eq!(s.google_drive.shared_drive_id.as_deref(), Some("0Adrive"));
    }

    #[test]
    fn durations_parse_like_protobuf_json() {
        assert_eq!(parse_duration("8962s"), Some(Duration::from_secs(8962)));
        assert_eq!(parse_duration("0.01s"), Some(Duration::from_millis(10)));
        assert_eq!(parse_duration("8962"), None);
        assert_eq!(parse_duration("-1s"), None);
    }

    #[test]
    fn oauth_errors_are_auth_failures_and_outages_retry() {
        let classify = |status: u16, body: &str| {
            OAuthDialect.classify("t", StatusCode::from_u16(status).unwrap(), &HeaderMap::new(), body.as_bytes())
        };
        match classify(400, r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#) {
            Verdict::Fail(e) => {
                assert_eq!(e.kind, ErrorKind::Auth);
                assert_eq!(e.code.as_deref(), Some("invalid_grant"));
                assert!(e.message.contains("expired or revoked"));
            }
            _ => panic!("invalid_grant must fail"),
        }
        assert!(
            matches!(classify(401, r#"{"error":"invalid_client"}"#), Verdict::Fail(e) if e.kind == ErrorKind::Auth)
        );
        assert!(matches!(classify(403, "<html>"), Verdict::Fail(e) if e.kind == ErrorKind::Auth));
        assert!(matches!(classify(503, r#"{"error":"temporarily_unavailable"}"#), Verdict::Retry(_)));
        assert!(matches!(classify(500, "oops"), Verdict::Retry(_)));
        assert!(matches!(classify(429, ""), Verdict::Retry(e) if e.kind == ErrorKind::Throttled));
    }

    #[tokio::test]
    async fn cache_refreshes_once_for_concurrent_callers_and_early_before_expiry() {
        let cache = Arc::new(TokenCache::default());
        let fetches = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let calls = (0..8).map(|_| {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tokio::spawn(async move {
                cache
                    .get(|| async {
                        fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(("tok".to_string(), Duration::from_secs(3599)))
                    })
                    .await
                    .unwrap()
            })
        });
        for call in calls {
            assert_eq!(call.await.unwrap().0, "tok");
        }
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A token that lives 60 s or less is not reused past half its life.
        let short = TokenCache::default();
        short.get(|| async { Ok(("a".to_string(), Duration::from_millis(40))) }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let (token, fresh) = short.get(|| async { Ok(("b".to_string(), Duration::from_secs(3599))) }).await.unwrap();
        assert_eq!((token.as_str(), fresh), ("b", true));
        short.invalidate("other").await;
        assert!(!short.get(|| async { Ok(("c".to_string(), Duration::ZERO)) }).await.unwrap().1);
        short.invalidate("b").await;
        assert_eq!(short.get(|| async { Ok(("c".to_string(), Duration::ZERO)) }).await.unwrap().0, "c");
    }
}
