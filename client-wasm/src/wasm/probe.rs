//! The probe request: `EventSource` hides HTTP status codes, so after a
//! stream fails to open the same URL is fetched once to learn the status
//! and the gateway's JSON error. A 2xx answer is aborted as soon as its
//! headers arrive; an error body is read (bounded) and then aborted.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, RequestCredentials, RequestInit, Response};

use crate::core::status::ProbeResult;

/// Longest error body looked at.
const MAX_BODY: usize = 4096;

fn message_of(error: &JsValue) -> String {
    if let Some(e) = error.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    error.as_string().unwrap_or_else(|| "request failed".into())
}

/// Fetches `url` the way the `EventSource` did.
pub async fn probe(url: &str, with_credentials: bool) -> ProbeResult {
    let Some(window) = web_sys::window() else {
        return ProbeResult::Unreachable {
            message: "no window".into(),
        };
    };
    let controller = AbortController::new().ok();
    let init = RequestInit::new();
    init.set_method("GET");
    init.set_credentials(if with_credentials {
        RequestCredentials::Include
    } else {
        RequestCredentials::SameOrigin
    });
    let headers = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&headers, &"Accept".into(), &"text/event-stream".into());
    init.set_headers(&headers);
    if let Some(c) = &controller {
        init.set_signal(Some(&c.signal()));
    }
    let abort = || {
        if let Some(c) = &controller {
            c.abort();
        }
    };
    let response = match JsFuture::from(window.fetch_with_str_and_init(url, &init)).await {
        Ok(r) => r.unchecked_into::<Response>(),
        Err(e) => {
            return ProbeResult::Unreachable {
                message: message_of(&e),
            }
        }
    };
    let status = response.status();
    if (200..300).contains(&status) {
        abort();
        return ProbeResult::Http {
            status,
            code: None,
            message: None,
        };
    }
    let body = match response.text() {
        Ok(p) => JsFuture::from(p)
            .await
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    abort();
    let end = body
        .char_indices()
        .map(|(i, _)| i)
        .find(|i| *i >= MAX_BODY)
        .unwrap_or(body.len());
    ProbeResult::from_http(status, &body[..end])
}
