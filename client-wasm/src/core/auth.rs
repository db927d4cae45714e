//! The subscriber token: what the client holds, when it needs a fresh one,
//! and how it rides in the stream URL.
//!
//! A browser `EventSource` cannot set headers, so besides cookies (which
//! need nothing here but `withCredentials`) the only way to send a token
//! is the `access_token` query parameter (the gateway must run with
//! `--allow-query-token`). The token is a secret: it never appears in a
//! status, a diagnostic or the persisted record, and [`Token`]'s `Debug`
//! hides it.
//!
//! [`Auth`] is the engine's token state. The policy it encodes:
//!
//! - With a getter, a token is fetched before the first stream (unless a
//!   static token was given too: that one is used first) and then cached:
//!   network drops and channel changes reuse it.
//! - A fresh token is fetched (the cached one is *stale*) after the gateway
//!   ends a stream with `close` reason `auth_expired`, after a 401
//!   `expired_token` (once; a second refusal is final), and before retrying
//!   from `failed` after a 401 or 403.
//! - At most one fetch is in flight; its answer is matched by request id,
//!   so a late answer to an abandoned fetch is ignored.

/// Longest token accepted from the getter (it becomes part of a URL).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// How long the getter may take before the attempt counts as failed.
pub const TOKEN_TIMEOUT_MS: u64 = 10_000;
/// The status message when the getter did not answer in time.
pub const TOKEN_TIMEOUT_MESSAGE: &str = "the token getter did not answer within 10 s";
/// A stream ended by `auth_expired` after less than this is suspicious (a
/// getter handing out tokens about to expire): the next attempt backs off
/// instead of reconnecting at once, so the client cannot spin.
pub const MIN_EXPIRED_STREAM_MS: u64 = 1_000;
/// The gateway's error code for an expired token (401).
pub const EXPIRED_TOKEN: &str = "expired_token";
/// The status code reported when the getter throws, rejects or hangs.
pub const TOKEN_GETTER_FAILED: &str = "token_getter_failed";

/// A subscriber token; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Checks what a getter (or the `token` option) gave: an empty string
    /// means "no token"; an oversized one is refused.
    pub fn accept(text: String) -> Result<Option<Token>, String> {
        if text.is_empty() {
            return Ok(None);
        }
        if text.len() > MAX_TOKEN_BYTES {
            // A constant text: no number formatting for a rare mistake.
            return Err("the token is longer than 16 KiB".into());
        }
        Ok(Some(Token(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Appends `&access_token=<token>` to a query string,
/// percent-encoding every byte outside RFC 3986's unreserved set (a JWT
/// needs none, but a getter may return anything).
pub fn append_token(url: &mut String, token: &Token) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    url.push_str("&access_token=");
    for &b in token.as_str().as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            url.push(char::from(b));
        } else {
            url.push('%');
            url.push(char::from(HEX[usize::from(b >> 4)]));
            url.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// The engine's token state; see the module docs.
#[derive(Debug, Default)]
pub struct Auth {
    /// A getter is configured (the boundary holds the function).
    pub getter: bool,
    /// The cached token, sent with every stream.
    pub token: Option<Token>,
    /// The cached token must be replaced before the next stream.
    pub stale: bool,
    /// The one immediate retry after a 401 `expired_token` was used; reset
    /// when a stream opens or the client gives up.
    pub expired_retry_used: bool,
    /// Id of the latest fetch.
    pub request: u64,
}

impl Auth {
    /// `getter`: a token getter is configured; `token`: the static token.
    pub fn new(getter: bool, token: Option<Token>) -> Self {
        Auth {
            getter,
            stale: getter && token.is_none(),
            token,
            expired_retry_used: false,
            request: 0,
        }
    }

    /// A fresh token must be fetched before the next stream.
    pub fn must_fetch(&self) -> bool {
        self.getter && self.stale
    }

    /// Starts a fetch; returns its request id.
    pub fn start_fetch(&mut self) -> u64 {
        self.request += 1;
        self.request
    }
}

#[cfg(test)]
#[cfg(not(target_arch = "wasm32"))]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_percent_encoded_and_hidden_from_debug() {
        let token = Token::accept("a.b-c_d~e".into()).unwrap().unwrap();
        let mut url = String::from("channels=x");
        append_token(&mut url, &token);
        assert_eq!(url, "channels=x&access_token=a.b-c_d~e");
        let odd = Token::accept("a b&c=d#é+/".into()).unwrap().unwrap();
        let mut url = String::from("?q");
        append_token(&mut url, &odd);
        assert_eq!(url, "?q&access_token=a%20b%26c%3Dd%23%C3%A9%2B%2F");
        assert_eq!(format!("{odd:?}"), "Token(<redacted>)");
        assert!(!format!("{:?}", Auth::new(true, Some(odd))).contains("a b"));
    }

    #[test]
    fn empty_means_none_and_huge_is_refused() {
        assert_eq!(Token::accept(String::new()), Ok(None));
        let err = Token::accept("x".repeat(MAX_TOKEN_BYTES + 1)).unwrap_err();
        assert!(err.contains("16 KiB"), "{err}");
        assert_eq!(MAX_TOKEN_BYTES, 16 * 1024);
        assert!(TOKEN_TIMEOUT_MESSAGE.contains(&format!("{} s", TOKEN_TIMEOUT_MS / 1000)));
        assert!(Token::accept("x".repeat(MAX_TOKEN_BYTES))
            .unwrap()
            .is_some());
    }

    #[test]
    fn a_getter_without_a_static_token_fetches_first() {
        assert!(Auth::new(true, None).must_fetch());
        let seeded = Auth::new(true, Token::accept("t".into()).unwrap());
        assert!(!seeded.must_fetch());
        assert!(!Auth::new(false, None).must_fetch());
    }
}
