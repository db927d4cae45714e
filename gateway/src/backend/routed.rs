//! A [`Backend`] made of the node-local [`Router`] over a [`Store`]: what
//! the HTTP layer talks to, whatever the store.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use logs_sse_protocol::{Channel, Epoch, ResumeFrom};

use super::router::Router;
use super::{
    families_of, Added, AppendResults, Backend, IdempotencyKey, NewLog, Store, StoreError,
    StoreStats, Subscribed,
};
use crate::metrics::Metrics;
use crate::subscriber::Subscriber;

/// The router over a store; see the module docs.
#[derive(Debug)]
pub struct RoutedBackend<S> {
    router: Arc<Router>,
    store: Arc<S>,
}

impl<S: Store> RoutedBackend<S> {
    /// Connects `store`'s feed to a new router.
    pub fn from_store(store: S, metrics: Arc<Metrics>) -> Self {
        let router = Arc::new(Router::new(metrics));
        store.attach(router.clone());
        RoutedBackend {
            router,
            store: Arc::new(store),
        }
    }

    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }
}

/// Groups channels by family, in order of first appearance; each channel
/// keeps its index in the request.
fn by_family<T: Clone>(
    channels: &[T],
    channel_of: impl Fn(&T) -> &Channel,
) -> Vec<(Channel, Vec<(usize, T)>)> {
    families_of(channels.iter().map(channel_of))
        .into_iter()
        .map(|(family, members)| {
            let items = members.into_iter().map(|i| (i, channels[i].clone()));
            (family, items.collect())
        })
        .collect()
}

impl<S: Store> Backend for RoutedBackend<S> {
    fn name(&self) -> &'static str {
        self.store.name()
    }

    fn epoch(&self) -> Epoch {
        self.store.epoch()
    }

    fn publish(
        &self,
        logs: Vec<NewLog>,
        key: Option<IdempotencyKey>,
    ) -> BoxFuture<'_, Result<AppendResults, StoreError>> {
        self.store.append(logs, key)
    }

    fn subscribe<'a>(
        &'a self,
        subscriber: &'a Arc<Subscriber>,
        channels: &'a [(Channel, ResumeFrom)],
    ) -> BoxFuture<'a, Result<Subscribed, StoreError>> {
        Box::pin(async move {
            let mut statuses = vec![None; channels.len()];
            let mut replay = Vec::new();
            let mut joined: Vec<(Channel, Vec<Channel>)> = Vec::new();
            for (family, members) in by_family(channels, |(c, _)| c) {
                let request: Vec<(Channel, ResumeFrom)> =
                    members.iter().map(|(_, item)| item.clone()).collect();
                match self
                    .router
                    .join(self.store.as_ref(), subscriber, &family, &request, None)
                    .await
                {
                    Ok((family_statuses, entries)) => {
                        for ((index, _), status) in members.iter().zip(family_statuses) {
                            statuses[*index] = Some(status);
                        }
                        replay.extend(entries);
                        joined.push((family, request.into_iter().map(|(c, _)| c).collect()));
                    }
                    Err(error) => {
                        // All or nothing: leave what was joined.
                        for (family, channels) in joined {
                            self.router.leave(
                                self.store.as_ref(),
                                subscriber.id(),
                                &family,
                                &channels,
                            );
                        }
                        return Err(error);
                    }
                }
            }
            // Within a family the replay is in sequence order. Across
            // families, sequence numbers compare only within one epoch (the
            // memory store's single counter): then the replay is merged in
            // publish order; else (one counter per family, as in Redis) it
            // comes family by family in the order requested.
            let one_epoch = replay
                .windows(2)
                .all(|w| w[0].cursor.epoch == w[1].cursor.epoch);
            if one_epoch {
                replay.sort_by_key(|e| e.cursor.seq);
            }
            Ok(Subscribed {
                statuses: statuses.into_iter().flatten().collect(),
                replay: replay.into_iter().map(|e| e.frame).collect(),
            })
        })
    }

    fn add<'a>(
        &'a self,
        subscriber: &'a Arc<Subscriber>,
        channels: &'a [(Channel, ResumeFrom)],
        max_replay_frames: usize,
    ) -> BoxFuture<'a, Added> {
        Box::pin(async move {
            let mut statuses = vec![None; channels.len()];
            for (family, members) in by_family(channels, |(c, _)| c) {
                let request: Vec<(Channel, ResumeFrom)> =
                    members.iter().map(|(_, item)| item.clone()).collect();
                let joined = self
                    .router
                    .join(
                        self.store.as_ref(),
                        subscriber,
                        &family,
                        &request,
                        Some(max_replay_frames),
                    )
                    .await;
                match joined {
                    Ok((family_statuses, _)) => {
                        for ((index, _), status) in members.iter().zip(family_statuses) {
                            statuses[*index] = Some(status);
                        }
                    }
                    // The families joined so far stay joined: their
                    // statuses and replay are already queued.
                    Err(error) => {
                        return Added {
                            statuses,
                            error: Some(error),
                        }
                    }
                }
            }
            Added {
                statuses,
                error: None,
            }
        })
    }

    fn unsubscribe(&self, subscriber_id: u64, channels: &[Channel]) {
        for (family, members) in by_family(channels, |c| c) {
            let channels: Vec<Channel> = members.into_iter().map(|(_, c)| c).collect();
            self.router
                .leave(self.store.as_ref(), subscriber_id, &family, &channels);
        }
    }

    fn stats(&self) -> StoreStats {
        let mut stats = self.store.stats();
        let (subscriptions, queued) = self.router.subscriptions();
        stats.subscriptions = subscriptions;
        stats.queued_bytes = queued;
        stats
    }

    fn maintain(&self, now: tokio::time::Instant) {
        self.store.maintain(now);
        self.router.sweep(self.store.as_ref());
    }

    fn ready(&self) -> bool {
        self.store.ready()
    }
}
