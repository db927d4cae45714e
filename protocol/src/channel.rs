//! Channel names: `logs:{service}:{workspace_id}[:{resource_id}]`.
//!
//! A channel with three segments is a *resource channel* (one ETL workflow,
//! one FAAS workflow, one function). A channel with two segments is the
//! *service-level channel* of a workspace: it receives every log published
//! to any resource channel beneath it.
//!
//! Segments are short ASCII identifiers (`[A-Za-z0-9_.-]`, 1 to
//! [`MAX_SEGMENT_LEN`] bytes). The restriction keeps names safe to embed in a
//! URL query, in an SSE `data:` line, in a Redis key and in a storage key
//! without any escaping.

use std::fmt;
use std::str::FromStr;

/// The fixed first segment of every channel name.
pub const PREFIX: &str = "logs";
/// Maximum length of one segment, in bytes.
pub const MAX_SEGMENT_LEN: usize = 64;
/// Maximum length of a whole channel name, in bytes.
pub const MAX_CHANNEL_LEN: usize = PREFIX.len() + 3 * (1 + MAX_SEGMENT_LEN);

/// Which part of a channel name a [`ChannelError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    Service,
    Workspace,
    Resource,
}

impl SegmentKind {
    /// The field name used by the publish API for this segment.
    pub fn field_name(self) -> &'static str {
        match self {
            SegmentKind::Service => "service",
            SegmentKind::Workspace => "workspace_id",
            SegmentKind::Resource => "resource_id",
        }
    }
}

impl fmt::Display for SegmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field_name())
    }
}

/// Why a channel name or segment was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("channel must start with \"logs:\"")]
    MissingPrefix,
    #[error("channel must be logs:{{service}}:{{workspace_id}} or logs:{{service}}:{{workspace_id}}:{{resource_id}}, found {found} segment(s) after \"logs\"")]
    SegmentCount { found: usize },
    #[error("{kind} is empty")]
    EmptySegment { kind: SegmentKind },
    #[error("{kind} is {len} bytes long; the limit is {MAX_SEGMENT_LEN}")]
    SegmentTooLong { kind: SegmentKind, len: usize },
    // `escape_default` rather than `{found:?}`: char's Debug links Unicode
    // tables that would weigh on the wasm client.
    #[error("{kind} contains '{}' at byte {position}; only A-Z, a-z, 0-9, '_', '.' and '-' are allowed", found.escape_default())]
    InvalidCharacter {
        kind: SegmentKind,
        found: char,
        position: usize,
    },
    #[error("channel name is longer than {MAX_CHANNEL_LEN} bytes")]
    TooLong,
}

/// One validated segment of a channel name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Segment(String);

impl Segment {
    /// Validates `value` as the `kind` segment of a channel.
    pub fn parse(kind: SegmentKind, value: &str) -> Result<Self, ChannelError> {
        validate_segment(kind, value)?;
        Ok(Segment(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn validate_segment(kind: SegmentKind, value: &str) -> Result<(), ChannelError> {
    if value.is_empty() {
        return Err(ChannelError::EmptySegment { kind });
    }
    if let Some((position, found)) = value
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(ChannelError::InvalidCharacter {
            kind,
            found,
            position,
        });
    }
    if value.len() > MAX_SEGMENT_LEN {
        return Err(ChannelError::SegmentTooLong {
            kind,
            len: value.len(),
        });
    }
    Ok(())
}

/// A validated channel name.
///
/// The canonical text form is kept alongside the parts so that formatting is
/// free and the name can be used as a map key without re-rendering it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel {
    name: String,
    /// Byte offset of the ':' before the workspace segment.
    workspace_at: usize,
    /// Byte offset of the ':' before the resource segment, if any.
    resource_at: Option<usize>,
}

impl Channel {
    /// Builds a channel from its parts, validating each.
    pub fn new(
        service: &str,
        workspace: &str,
        resource: Option<&str>,
    ) -> Result<Self, ChannelError> {
        validate_segment(SegmentKind::Service, service)?;
        validate_segment(SegmentKind::Workspace, workspace)?;
        if let Some(resource) = resource {
            validate_segment(SegmentKind::Resource, resource)?;
        }
        Ok(Self::from_valid_parts(service, workspace, resource))
    }

    fn from_valid_parts(service: &str, workspace: &str, resource: Option<&str>) -> Self {
        let mut name = String::with_capacity(
            PREFIX.len() + 3 + service.len() + workspace.len() + resource.map_or(0, str::len),
        );
        name.push_str(PREFIX);
        name.push(':');
        name.push_str(service);
        let workspace_at = name.len();
        name.push(':');
        name.push_str(workspace);
        let resource_at = resource.map(|resource| {
            let at = name.len();
            name.push(':');
            name.push_str(resource);
            at
        });
        Channel {
            name,
            workspace_at,
            resource_at,
        }
    }

    /// The canonical name, e.g. `logs:etl:ws123:wf456`.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    pub fn service(&self) -> &str {
        &self.name[PREFIX.len() + 1..self.workspace_at]
    }

    pub fn workspace(&self) -> &str {
        let end = self.resource_at.unwrap_or(self.name.len());
        &self.name[self.workspace_at + 1..end]
    }

    pub fn resource(&self) -> Option<&str> {
        self.resource_at.map(|at| &self.name[at + 1..])
    }

    /// True for `logs:{service}:{workspace}` channels.
    pub fn is_service_level(&self) -> bool {
        self.resource_at.is_none()
    }

    /// The service-level channel this channel belongs to (itself if it is one).
    pub fn service_level(&self) -> Channel {
        match self.resource_at {
            None => self.clone(),
            Some(at) => Channel {
                name: self.name[..at].to_owned(),
                workspace_at: self.workspace_at,
                resource_at: None,
            },
        }
    }

    /// True when a subscriber of `self` receives logs published to `published`:
    /// the same channel, or `self` is the service-level channel above it.
    pub fn covers(&self, published: &Channel) -> bool {
        self == published
            || (self.is_service_level()
                && published.name.len() > self.name.len()
                && published.name.starts_with(&self.name)
                && published.name.as_bytes()[self.name.len()] == b':')
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl FromStr for Channel {
    type Err = ChannelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_CHANNEL_LEN {
            return Err(ChannelError::TooLong);
        }
        let rest = s
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.strip_prefix(':'))
            .ok_or(ChannelError::MissingPrefix)?;
        let mut parts = rest.split(':');
        let service = parts.next().unwrap_or_default();
        let workspace = parts.next();
        let resource = parts.next();
        let extra = parts.count();
        let Some(workspace) = workspace else {
            return Err(ChannelError::SegmentCount { found: 1 });
        };
        if extra > 0 {
            return Err(ChannelError::SegmentCount { found: 3 + extra });
        }
        Channel::new(service, workspace, resource)
    }
}

impl serde::Serialize for Channel {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name)
    }
}

impl<'de> serde::Deserialize<'de> for Channel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_resource_and_service_channels() {
        let c: Channel = "logs:etl:ws123:wf456".parse().unwrap();
        assert_eq!(
            (c.service(), c.workspace(), c.resource()),
            ("etl", "ws123", Some("wf456"))
        );
        assert!(!c.is_service_level());
        let s: Channel = "logs:etl:ws123".parse().unwrap();
        assert!(s.is_service_level());
        assert_eq!(s.resource(), None);
        assert_eq!(c.service_level(), s);
    }

    #[test]
    fn service_level_covers_only_its_own_resources() {
        let s: Channel = "logs:etl:ws1".parse().unwrap();
        let inside: Channel = "logs:etl:ws1:wf9".parse().unwrap();
        let other_ws: Channel = "logs:etl:ws10:wf9".parse().unwrap();
        let other_service: Channel = "logs:faas:ws1:wf9".parse().unwrap();
        assert!(s.covers(&inside));
        assert!(s.covers(&s));
        assert!(!s.covers(&other_ws));
        assert!(!s.covers(&other_service));
        assert!(!inside.covers(&s));
    }

    #[test]
    fn rejects_bad_names_with_a_precise_error() {
        let err = |s: &str| s.parse::<Channel>().unwrap_err();
        assert_eq!(err("etl:ws:wf"), ChannelError::MissingPrefix);
        assert_eq!(err("logs:etl"), ChannelError::SegmentCount { found: 1 });
        assert_eq!(err("logs:a:b:c:d"), ChannelError::SegmentCount { found: 4 });
        assert_eq!(
            err("logs::ws"),
            ChannelError::EmptySegment {
                kind: SegmentKind::Service
            }
        );
        assert_eq!(
            err("logs:etl:ws 1"),
            ChannelError::InvalidCharacter {
                kind: SegmentKind::Workspace,
                found: ' ',
                position: 2
            }
        );
        assert_eq!(
            err(&format!("logs:etl:{}", "w".repeat(65))),
            ChannelError::SegmentTooLong {
                kind: SegmentKind::Workspace,
                len: 65
            }
        );
        assert_eq!(err(&"x".repeat(1000)), ChannelError::TooLong);
        assert!(err("logs:etl:ws:wf\n")
            .to_string()
            .contains("resource_id contains '\\n'"));
    }

    fn segment() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_.-]{1,64}"
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(
            service in segment(), workspace in segment(), resource in proptest::option::of(segment())
        ) {
            let channel = Channel::new(&service, &workspace, resource.as_deref()).unwrap();
            let parsed: Channel = channel.as_str().parse().unwrap();
            prop_assert_eq!(&parsed, &channel);
            prop_assert_eq!(parsed.service(), service.as_str());
            prop_assert_eq!(parsed.workspace(), workspace.as_str());
            prop_assert_eq!(parsed.resource(), resource.as_deref());
        }

        #[test]
        fn parser_never_panics_and_accepts_only_canonical_names(input in "\\PC{0,300}") {
            if let Ok(channel) = input.parse::<Channel>() {
                prop_assert_eq!(channel.as_str(), input.as_str());
                prop_assert!(channel.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-:".contains(&b)));
            }
        }
    }
}
