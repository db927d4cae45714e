//! Channel names and stream queries from arbitrary text: never panic, and
//! whatever parses formats back to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logs_sse_protocol::{Channel, ResumeFrom, StreamQuery};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(channel) = text.parse::<Channel>() {
        assert_eq!(channel.as_str(), text);
        let again: Channel = channel.as_str().parse().expect("canonical names parse");
        assert_eq!(again, channel);
        assert!(channel.service_level().covers(&channel));
    }
    let _ = text.parse::<ResumeFrom>();
    let (channels, since) = text.split_once('&').map_or((text, None), |(c, s)| (c, Some(s)));
    if let Ok(query) = StreamQuery::parse(channels, since, 64) {
        let rendered = query.to_query_string();
        let rendered = rendered.strip_prefix("channels=").expect("prefix");
        let (c, s) = rendered.split_once("&since=").map_or((rendered, None), |(c, s)| (c, Some(s)));
        assert_eq!(StreamQuery::parse(c, s, 64).expect("rendered queries parse"), query);
    }
});
