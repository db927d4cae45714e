//! The Redis key layout of one *family* (a service-level channel and its
//! resource channels).
//!
//! Every key and the pub/sub channel of a family carry the hash tag
//! `{service:workspace}`, so they live in one Redis Cluster slot and one
//! script may touch all of them:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:{s:w}:meta` | hash | `epoch` (hex), `seq` (last sequence number) |
//! | `P:{s:w}:chans` | hash | `floor` (service-level), `floor:R`, `last:R` per resource `R` |
//! | `P:{s:w}:h` | list | service-level history, oldest first |
//! | `P:{s:w}:h:R` | list | history of resource `R`, oldest first |
//! | `P:{s:w}:feed` | pub/sub channel | every published batch of the family |
//! | `P:{s:w}:idem:K` | string | `epoch first fingerprint` of the request with `Idempotency-Key` `K` |
//!
//! `P` is `--redis-key-prefix`. Every key expires after the history TTL
//! without publishes; an idempotency record after `--idempotency-ttl-secs`.

use logs_sse_protocol::Channel;

/// The names of one family's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyKeys {
    pub meta: String,
    pub chans: String,
    pub root: String,
    pub feed: String,
}

impl FamilyKeys {
    /// Keys of the family of `channel` (resource or service-level).
    pub fn new(prefix: &str, channel: &Channel) -> Self {
        let base = format!("{prefix}:{}", tag(channel));
        FamilyKeys {
            meta: format!("{base}:meta"),
            chans: format!("{base}:chans"),
            root: format!("{base}:h"),
            feed: format!("{base}:feed"),
        }
    }

    /// The history list of resource `id`.
    pub fn resource(&self, id: &str) -> String {
        format!("{}:{id}", self.root)
    }

    /// The record of a request with `Idempotency-Key` `key`.
    pub fn idempotency(&self, key: &str) -> String {
        let base = self.meta.strip_suffix(":meta").unwrap_or(&self.meta);
        format!("{base}:idem:{key}")
    }
}

/// `{service:workspace}`.
fn tag(channel: &Channel) -> String {
    format!("{{{}:{}}}", channel.service(), channel.workspace())
}

/// The service-level channel whose feed is the pub/sub channel `name`.
pub fn family_of_feed(prefix: &str, name: &str) -> Option<Channel> {
    let tagged = name.strip_prefix(prefix)?.strip_prefix(":{")?;
    let inner = tagged.strip_suffix("}:feed")?;
    let (service, workspace) = inner.split_once(':')?;
    format!("logs:{service}:{workspace}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_a_resource_and_its_service_level_channel_share_one_hash_tag() {
        let resource: Channel = "logs:etl:ws1:wf9".parse().unwrap();
        let keys = FamilyKeys::new("p", &resource);
        assert_eq!(keys, FamilyKeys::new("p", &resource.service_level()));
        assert_eq!(keys.meta, "p:{etl:ws1}:meta");
        assert_eq!(keys.resource("wf9"), "p:{etl:ws1}:h:wf9");
        assert_eq!(keys.idempotency("k-1"), "p:{etl:ws1}:idem:k-1");
        assert_eq!(
            family_of_feed("p", &keys.feed),
            Some(resource.service_level())
        );
        assert_eq!(family_of_feed("q", &keys.feed), None);
        assert_eq!(family_of_feed("p", "p:{etl}:feed"), None);
    }
}
