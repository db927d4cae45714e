//! What the CLI needs from HTTP: one client, the bearer token, and turning
//! an error answer (`{"error":{"code","message"}}`) into a [`Failure`].

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;

use crate::exit::Failure;

/// Connection attempts give up after this long (then the caller retries).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub fn client() -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("logs-sse/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::Usage(format!("cannot create the HTTP client: {e}")))
}

/// The gateway's base URL without a trailing slash; only `http://` is
/// supported (terminate TLS in front, or run next to the gateway).
pub fn base_url(gateway: &str) -> Result<String, Failure> {
    let base = gateway.trim_end_matches('/');
    if base.starts_with("http://") {
        Ok(base.to_owned())
    } else if base.starts_with("https://") {
        Err(Failure::Usage(format!(
            "{base}: this build speaks plain http only; point --gateway at a node or an http listener of the proxy"
        )))
    } else {
        Err(Failure::Usage(format!(
            "--gateway must be an http:// URL, got {gateway:?}"
        )))
    }
}

pub fn with_token(request: RequestBuilder, token: Option<&str>) -> RequestBuilder {
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// `code: message` of a JSON error body, or the status and raw text.
pub fn describe(status: StatusCode, body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => format!("{} {}: {}", status.as_u16(), error.code, error.message),
        Err(_) => {
            let text: String = body.trim().chars().take(200).collect();
            format!("{status} {text}")
        }
    }
}

/// What to do with an unsuccessful answer.
#[derive(Debug)]
pub enum Verdict {
    /// Temporary: try again after the given delay, if the server named one.
    Retry(String, Option<Duration>),
    /// Permanent.
    Fail(Failure),
}

/// Classifies an error answer; reads its body.
pub async fn verdict(response: Response) -> Verdict {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.text().await.unwrap_or_default();
    let message = describe(status, &body);
    match status {
        StatusCode::UNAUTHORIZED => Verdict::Fail(Failure::Unauthorized(message)),
        StatusCode::FORBIDDEN => Verdict::Fail(Failure::Forbidden(message)),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => {
            Verdict::Retry(message, retry_after)
        }
        s if s.is_server_error() => Verdict::Retry(message, retry_after),
        _ => Verdict::Fail(Failure::Usage(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_json_errors_and_plain_bodies() {
        let json = r#"{"error":{"code":"invalid_token","message":"token expired"}}"#;
        assert_eq!(
            describe(StatusCode::UNAUTHORIZED, json),
            "401 invalid_token: token expired"
        );
        assert_eq!(
            describe(StatusCode::BAD_GATEWAY, "upstream down\n"),
            "502 Bad Gateway upstream down"
        );
    }

    #[test]
    fn accepts_only_http_urls() {
        assert_eq!(base_url("http://h:1/").unwrap(), "http://h:1");
        assert!(matches!(base_url("https://h"), Err(Failure::Usage(_))));
        assert!(matches!(base_url("h:1"), Err(Failure::Usage(_))));
    }
}
