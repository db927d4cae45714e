//! This node's open streams, by connection id: what a control call needs to
//! find a stream, check who may change it, and change it one call at a time.
//!
//! A [`StreamHandle`] is registered when a stream opens and removed by the
//! stream's guard when it ends ([`StreamHandle::end`] hands back the
//! channels the stream carries *then*, which the guard leaves). A control
//! call holds the handle's [`StreamHandle::serial`] lock for its whole run,
//! so two changes of one stream never interleave; a change that completes
//! after the stream ended finds the handle ended and undoes itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use logs_sse_protocol::{Channel, ChannelStatus};

use crate::auth::grants::Grants;
use crate::auth::subscriber::Principal;
use crate::auth::SecretDigest;
use crate::subscriber::Subscriber;

/// Who opened a stream; a control call must be made by the same one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Opened without a token (`--allow-anonymous`): controlled without one.
    Anonymous,
    /// A token with a subject: any valid token of that subject.
    Subject(String),
    /// A token without a subject: a token granting exactly the same.
    Unnamed(Grants),
}

impl Identity {
    pub fn of(principal: &Principal) -> Self {
        match (&principal.user, principal.expires_at) {
            (_, None) => Identity::Anonymous,
            (Some(user), Some(_)) => Identity::Subject(user.clone()),
            (None, Some(_)) => Identity::Unnamed(principal.grants.clone()),
        }
    }
}

/// One open stream, as control calls see it.
#[derive(Debug)]
pub struct StreamHandle {
    pub connection_id: String,
    pub secret: SecretDigest,
    pub identity: Identity,
    pub subscriber: Arc<Subscriber>,
    /// Held by a control call for its whole run.
    pub serial: tokio::sync::Mutex<()>,
    carried: Mutex<Carried>,
}

/// The channels a stream carries, each with the status it was given.
#[derive(Debug, Default)]
pub struct Carried {
    pub ended: bool,
    pub channels: Vec<ChannelStatus>,
}

impl Carried {
    pub fn status_of(&self, channel: &Channel) -> Option<&ChannelStatus> {
        self.channels.iter().find(|s| s.channel == *channel)
    }
}

impl StreamHandle {
    pub fn new(
        connection_id: String,
        secret: SecretDigest,
        identity: Identity,
        subscriber: Arc<Subscriber>,
        channels: Vec<ChannelStatus>,
    ) -> Self {
        StreamHandle {
            connection_id,
            secret,
            identity,
            subscriber,
            serial: tokio::sync::Mutex::new(()),
            carried: Mutex::new(Carried {
                ended: false,
                channels,
            }),
        }
    }

    pub fn carried(&self) -> MutexGuard<'_, Carried> {
        // Every mutation is a single push/retain/flag: consistent after a panic.
        self.carried.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the stream ended and hands back the channels it carries.
    pub fn end(&self) -> Vec<Channel> {
        let mut carried = self.carried();
        carried.ended = true;
        std::mem::take(&mut carried.channels)
            .into_iter()
            .map(|s| s.channel)
            .collect()
    }
}

/// The registry; see the module docs.
#[derive(Debug, Default)]
pub struct Registry {
    streams: Mutex<HashMap<String, Arc<StreamHandle>>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<StreamHandle>>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, handle: Arc<StreamHandle>) {
        self.lock().insert(handle.connection_id.clone(), handle);
    }

    pub fn get(&self, connection_id: &str) -> Option<Arc<StreamHandle>> {
        self.lock().get(connection_id).cloned()
    }

    pub fn remove(&self, connection_id: &str) {
        self.lock().remove(connection_id);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
