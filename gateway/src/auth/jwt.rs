//! Subscriber tokens: JWTs verified with configured keys.
//!
//! Keys come from an HS256 secret, a PEM public key (RSA → RS256, EC P-256 →
//! ES256, Ed25519 → EdDSA) or a JWKS file. Each key accepts only its own
//! algorithm family, so a token cannot pick its verification algorithm: an
//! `alg: none` token, or an HS256 token "signed" with an RSA public key, is
//! refused before any signature check. `exp` is required; `nbf`, and `iss`
//! and `aud` when configured, are checked with a small leeway.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::grants::{Grants, Pattern, MAX_PATTERNS};

/// One verification key and the algorithms it accepts.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// Which claims carry what.
#[derive(Debug, Clone)]
pub struct ClaimNames {
    /// List of channel patterns, e.g. `["logs:etl:ws123:*"]`.
    pub channels: String,
    /// List of workspace ids; each grants `logs:*:{workspace}:*`.
    pub workspaces: String,
    /// The user id, for per-user limits and logs.
    pub user: String,
}

/// Verifies subscriber JWTs.
#[derive(Clone)]
pub struct JwtVerifier {
    keys: Vec<Key>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway_secs: u64,
    claims: ClaimNames,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("keys", &self.keys.len())
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused; every variant is answered with 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm {0:?} is not accepted by this gateway's key")]
    UnsupportedAlgorithm(String),
    #[error("no configured key has the token's key id {0:?}")]
    UnknownKey(String),
    #[error("the token's signature is invalid")]
    InvalidSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token's issuer is not accepted")]
    InvalidIssuer,
    #[error("the token's audience is not accepted")]
    InvalidAudience,
    #[error("the token's claims are invalid: {0}")]
    InvalidClaims(String),
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed => "invalid_token",
            TokenError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            TokenError::UnknownKey(_) => "unknown_key",
            TokenError::InvalidSignature => "invalid_signature",
            TokenError::Expired => "expired_token",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::InvalidIssuer => "invalid_issuer",
            TokenError::InvalidAudience => "invalid_audience",
            TokenError::InvalidClaims(_) => "invalid_claims",
        }
    }
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub user: Option<String>,
    /// The first second (since the Unix epoch) at which this token is
    /// refused: `exp` plus the leeway, plus one because a token is still
    /// valid during its `exp` second.
    pub expires_at: u64,
    pub grants: Grants,
}

/// Where the verification keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    Hs256Secret(Vec<u8>),
    PublicKeyPem(Vec<u8>),
    Jwks(String),
}

impl JwtVerifier {
    pub fn new(
        source: &KeySource,
        issuers: Vec<String>,
        audiences: Vec<String>,
        leeway_secs: u64,
        claims: ClaimNames,
    ) -> Result<Self, String> {
        let keys = match source {
            KeySource::Hs256Secret(secret) => {
                if secret.len() < 32 {
                    return Err("the JWT secret must be at least 32 bytes".into());
                }
                vec![Key {
                    kid: None,
                    key: DecodingKey::from_secret(secret).map_err(|e| e.to_string())?,
                    algorithms: vec![Algorithm::HS256],
                }]
            }
            KeySource::PublicKeyPem(pem) => vec![key_from_pem(pem)?],
            KeySource::Jwks(json) => keys_from_jwks(json)?,
        };
        Ok(JwtVerifier {
            keys,
            issuers,
            audiences,
            leeway_secs,
            claims,
        })
    }

    pub fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let (alg, kid) = peek_header(token)?;
        let key = self.select_key(&alg, kid.as_deref())?;
        let algorithm = key
            .algorithms
            .iter()
            .copied()
            .find(|a| format!("{a:?}") == alg)
            .ok_or_else(|| TokenError::UnsupportedAlgorithm(alg.clone()))?;
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        if self.issuers.is_empty() {
            validation.iss = None;
        } else {
            validation.set_issuer(&self.issuers);
        }
        if self.audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.audiences);
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidSignature => TokenError::InvalidSignature,
                ErrorKind::InvalidIssuer => TokenError::InvalidIssuer,
                ErrorKind::InvalidAudience => TokenError::InvalidAudience,
                ErrorKind::InvalidAlgorithm => TokenError::UnsupportedAlgorithm(alg.clone()),
                ErrorKind::MissingRequiredClaim(claim) => {
                    TokenError::InvalidClaims(format!("{claim} is required"))
                }
                _ => TokenError::Malformed,
            })?;
        self.read_claims(&data.claims)
    }

    fn select_key(&self, alg: &str, kid: Option<&str>) -> Result<&Key, TokenError> {
        match kid {
            Some(kid) if self.keys.iter().any(|k| k.kid.is_some()) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or_else(|| TokenError::UnknownKey(kid.to_owned())),
            _ => self
                .keys
                .iter()
                .find(|k| k.algorithms.iter().any(|a| format!("{a:?}") == alg))
                .ok_or_else(|| TokenError::UnsupportedAlgorithm(alg.to_owned())),
        }
    }

    fn read_claims(&self, claims: &Map<String, Value>) -> Result<VerifiedToken, TokenError> {
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or_else(|| TokenError::InvalidClaims("exp must be a number of seconds".into()))?;
        let user = match claims.get(&self.claims.user) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let mut patterns = Vec::new();
        for (claim, to_pattern) in [
            (
                &self.claims.channels,
                Pattern::parse as fn(&str) -> Result<Pattern, String>,
            ),
            (&self.claims.workspaces, Pattern::workspace),
        ] {
            match claims.get(claim.as_str()) {
                None => {}
                Some(Value::Array(items)) => {
                    for item in items.iter().take(MAX_PATTERNS) {
                        let text = item.as_str().ok_or_else(|| {
                            TokenError::InvalidClaims(format!("{claim} must be a list of strings"))
                        })?;
                        // A malformed entry grants nothing; it does not void the rest.
                        match to_pattern(text) {
                            Ok(pattern) => patterns.push(pattern),
                            Err(reason) => {
                                tracing::debug!(%reason, "ignoring a pattern of a token")
                            }
                        }
                    }
                }
                Some(_) => {
                    return Err(TokenError::InvalidClaims(format!(
                        "{claim} must be a list of strings"
                    )))
                }
            }
        }
        Ok(VerifiedToken {
            user,
            expires_at: expires_at
                .saturating_add(self.leeway_secs)
                .saturating_add(1),
            grants: Grants::Patterns(patterns),
        })
    }
}

/// Reads `alg` and `kid` from the header without trusting anything else.
fn peek_header(token: &str) -> Result<(String, Option<String>), TokenError> {
    let header = token.split('.').next().ok_or(TokenError::Malformed)?;
    if token.split('.').count() != 3 || header.len() > 2048 {
        return Err(TokenError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    let header: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(TokenError::Malformed)?;
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok((alg.to_owned(), kid))
}

fn key_from_pem(pem: &[u8]) -> Result<Key, String> {
    let (key, algorithm) = if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        (key, Algorithm::RS256)
    } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        (key, Algorithm::ES256)
    } else if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        (key, Algorithm::EdDSA)
    } else {
        return Err("the public key is not an RSA, EC (P-256) or Ed25519 key in PEM format".into());
    };
    Ok(Key {
        kid: None,
        key,
        algorithms: vec![algorithm],
    })
}

fn keys_from_jwks(json: &str) -> Result<Vec<Key>, String> {
    let set: JwkSet =
        serde_json::from_str(json).map_err(|e| format!("the JWKS is not valid: {e}"))?;
    if set.keys.is_empty() {
        return Err("the JWKS holds no keys".into());
    }
    set.keys
        .iter()
        .map(|jwk| {
            let by_type = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                AlgorithmParameters::OctetKey(_) => Algorithm::HS256,
                _ => return Err("the JWKS holds a key of an unsupported type".to_owned()),
            };
            let declared = jwk
                .common
                .key_algorithm
                .and_then(|a| format!("{a:?}").parse::<Algorithm>().ok());
            let algorithm = declared.unwrap_or(by_type);
            if algorithm.family() != by_type.family() {
                return Err(format!(
                    "a JWKS key declares {algorithm:?} but is a {by_type:?} key"
                ));
            }
            Ok(Key {
                kid: jwk.common.key_id.clone(),
                key: DecodingKey::from_jwk(jwk)
                    .map_err(|e| format!("a JWKS key is invalid: {e}"))?,
                algorithms: vec![algorithm],
            })
        })
        .collect()
}
