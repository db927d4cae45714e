//! Publish bodies from arbitrary bytes: never panic, and every accepted log
//! is single-line JSON on a valid channel.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logs_sse_protocol::publish::{parse_body, BodyFormat, ParseLimits};

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else { return };
    let format = if first & 1 == 0 { BodyFormat::Json } else { BodyFormat::NdJson };
    let limits = ParseLimits { max_items: 100, max_log_bytes: 4096 };
    let Ok(items) = parse_body(body, format, limits) else { return };
    assert!(!items.is_empty() && items.len() <= 100);
    for log in items.into_iter().flatten() {
        assert!(!log.log_data.contains(['\n', '\r']));
        assert!(log.log_data.len() <= 4096);
        serde_json_check(&log.log_data);
        assert!(log.channel.resource().is_some());
    }
});

fn serde_json_check(text: &str) {
    // The payload stays valid JSON after line breaks are removed.
    assert!(logs_sse_protocol::publish::is_valid_json(text), "{text:?}");
}
