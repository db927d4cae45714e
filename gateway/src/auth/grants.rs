//! What a subscriber may see, decided per channel.
//!
//! A token grants channel *patterns*: `logs:{service}:{workspace}[:{resource}]`
//! where any segment may be `*`. A pattern without a resource, or with `*`
//! as resource, grants every resource of its services and workspaces.
//!
//! Access is decided by what a channel can carry: a resource channel needs a
//! pattern that grants that resource; a service-level channel carries every
//! resource of its workspace, so it needs a pattern that grants them all.
//! Granting `logs:etl:ws1:wf1` therefore never opens `logs:etl:ws1`, and no
//! log of an ungranted resource can reach a stream through its
//! service-level channel.

use std::fmt;

use logs_sse_protocol::channel::{Segment, SegmentKind};
use logs_sse_protocol::Channel;

/// Most patterns taken from one token; the rest are ignored.
pub const MAX_PATTERNS: usize = 256;

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Any,
    Exact(String),
}

impl Part {
    fn parse(kind: SegmentKind, text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(Part::Any);
        }
        Segment::parse(kind, text).map_err(|e| e.to_string())?;
        Ok(Part::Exact(text.to_owned()))
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Part::Any => true,
            Part::Exact(exact) => exact == value,
        }
    }
}

/// A channel pattern from a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    service: Part,
    workspace: Part,
    resource: Part,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix("logs:")
            .ok_or_else(|| format!("pattern {text:?} must start with \"logs:\""))?;
        let parts: Vec<&str> = rest.split(':').collect();
        let (service, workspace, resource) = match parts.as_slice() {
            [s, w] => (*s, *w, "*"),
            [s, w, r] => (*s, *w, *r),
            _ => {
                return Err(format!(
                    "pattern {text:?} must have 2 or 3 segments after \"logs:\""
                ))
            }
        };
        Ok(Pattern {
            service: Part::parse(SegmentKind::Service, service)?,
            workspace: Part::parse(SegmentKind::Workspace, workspace)?,
            resource: Part::parse(SegmentKind::Resource, resource)?,
        })
    }

    /// Every resource channel of a workspace (all services).
    pub fn workspace(workspace: &str) -> Result<Self, String> {
        Ok(Pattern {
            service: Part::Any,
            workspace: Part::parse(SegmentKind::Workspace, workspace)?,
            resource: Part::Any,
        })
    }

    fn grants(&self, channel: &Channel) -> bool {
        self.service.matches(channel.service())
            && self.workspace.matches(channel.workspace())
            && match channel.resource() {
                Some(resource) => self.resource.matches(resource),
                // The service-level channel carries every resource.
                None => self.resource == Part::Any,
            }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = |p: &Part| match p {
            Part::Any => "*".to_owned(),
            Part::Exact(s) => s.clone(),
        };
        write!(
            f,
            "logs:{}:{}:{}",
            part(&self.service),
            part(&self.workspace),
            part(&self.resource)
        )
    }
}

/// The channels a subscriber may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grants {
    /// Anonymous access was allowed explicitly: every channel.
    Everything,
    Patterns(Vec<Pattern>),
}

impl Grants {
    /// Why the channel is denied, or `None` when it is allowed.
    pub fn denial(&self, channel: &Channel) -> Option<String> {
        let patterns = match self {
            Grants::Everything => return None,
            Grants::Patterns(patterns) => patterns,
        };
        if patterns.iter().any(|p| p.grants(channel)) {
            return None;
        }
        Some(if channel.is_service_level() {
            format!(
                "forbidden: {channel} carries every {} resource of workspace {}, and your token does not grant them all",
                channel.service(),
                channel.workspace()
            )
        } else {
            format!("forbidden: your token does not grant {channel}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn grants(patterns: &[&str]) -> Grants {
        Grants::Patterns(
            patterns
                .iter()
                .map(|p| Pattern::parse(p).unwrap())
                .collect(),
        )
    }

    fn allowed(g: &Grants, channel: &str) -> bool {
        g.denial(&channel.parse().unwrap()).is_none()
    }

    #[test]
    fn resource_patterns_do_not_open_the_service_level_channel() {
        let g = grants(&["logs:etl:ws1:wf1"]);
        assert!(allowed(&g, "logs:etl:ws1:wf1"));
        assert!(!allowed(&g, "logs:etl:ws1:wf2"));
        assert!(!allowed(&g, "logs:etl:ws1"));
        assert!(g
            .denial(&"logs:etl:ws1".parse().unwrap())
            .unwrap()
            .contains("does not grant them all"));
    }

    #[test]
    fn wildcards_grant_what_they_cover() {
        let g = grants(&["logs:etl:ws123:*", "logs:*:ws9"]);
        assert!(allowed(&g, "logs:etl:ws123"));
        assert!(allowed(&g, "logs:etl:ws123:anything"));
        assert!(!allowed(&g, "logs:faas:ws123:x"));
        assert!(allowed(&g, "logs:faas:ws9"));
        assert!(allowed(&g, "logs:function:ws9:fn1"));
        assert!(!allowed(&g, "logs:etl:ws99:x"));
        let ws = Grants::Patterns(vec![Pattern::workspace("ws7").unwrap()]);
        assert!(
            allowed(&ws, "logs:etl:ws7")
                && allowed(&ws, "logs:faas:ws7:a")
                && !allowed(&ws, "logs:etl:ws8")
        );
        assert!(allowed(&Grants::Everything, "logs:any:thing"));
        assert!(!allowed(&Grants::Patterns(vec![]), "logs:a:b"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "etl:ws:*",
            "logs:etl",
            "logs:a:b:c:d",
            "logs:e tl:ws",
            "logs:etl:w*s",
            "logs:**:ws",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Pattern::parse("logs:etl:ws").unwrap().to_string(),
            "logs:etl:ws:*"
        );
    }

    fn part() -> impl Strategy<Value = String> {
        prop_oneof![Just("*".to_owned()), "[ab]{1}"]
    }

    proptest! {
        /// A stream gets a log of resource R through channel C only if C is
        /// allowed; then R itself must be allowed. No leak through the
        /// service-level channel, whatever the patterns.
        #[test]
        fn an_allowed_channel_never_carries_an_ungranted_resource(
            patterns in proptest::collection::vec((part(), part(), part()), 0..4),
            service in "[ab]", workspace in "[ab]", resource in "[ab]"
        ) {
            let g = Grants::Patterns(patterns.iter().map(|(s, w, r)| Pattern::parse(&format!("logs:{s}:{w}:{r}")).unwrap()).collect());
            let published = Channel::new(&service, &workspace, Some(&resource)).unwrap();
            for channel in [published.clone(), published.service_level()] {
                if g.denial(&channel).is_none() {
                    prop_assert!(g.denial(&published).is_none(), "{channel} allowed but {published} is not");
                }
            }
        }
    }
}
