//! Subscriber credentials from arbitrary bytes, through every place a token
//! can come from (header, cookie, query) and the channel patterns of its
//! claims: never panic, and never authenticate without the right key.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use logs_sse_gateway::auth::grants::Pattern;
use logs_sse_gateway::auth::jwt::{ClaimNames, JwtVerifier, KeySource};
use logs_sse_gateway::auth::subscriber::SubscriberAuth;
use http::{header, HeaderMap, HeaderValue};

fn auth() -> &'static SubscriberAuth {
    static AUTH: OnceLock<SubscriberAuth> = OnceLock::new();
    AUTH.get_or_init(|| {
        let claims = ClaimNames {
            channels: "logs_channels".into(),
            workspaces: "workspaces".into(),
            user: "sub".into(),
        };
        let verifier = JwtVerifier::new(
            &KeySource::Hs256Secret(b"fuzzing-secret-that-is-32-bytes-long".to_vec()),
            vec![],
            vec![],
            30,
            claims,
        )
        .expect("valid key");
        SubscriberAuth {
            verifier: Some(verifier),
            allow_anonymous: false,
            cookie: "logs_sse_token".into(),
            allow_query_token: true,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let _ = Pattern::parse(&text);
    let mut headers = HeaderMap::new();
    let query = match selector % 3 {
        0 => {
            let Ok(value) = HeaderValue::from_bytes(rest) else { return };
            headers.insert(header::AUTHORIZATION, value);
            None
        }
        1 => {
            let Ok(value) = HeaderValue::from_bytes(rest) else { return };
            headers.insert(header::COOKIE, value);
            None
        }
        _ => Some(text.as_ref()),
    };
    // Random bytes cannot carry a valid HS256 signature for the secret.
    assert!(auth().authenticate(&headers, query).is_err());
});
