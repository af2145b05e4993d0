//! Short-lived copies of what every send, webhook and dispatcher pass reads and almost
//! nothing writes: channels (by id, token and phone number id), the account, the template,
//! the default group, an account's webhook endpoints.
//!
//! A send used to read these four with five statements before its transaction. Here each is
//! kept for [`TTL`] and dropped as soon as this process writes any of them (every store
//! write to accounts, channels, groups or templates calls [`Lookups::changed`]). A change
//! made elsewhere (`plantilla admin` from another process on the same SQLite file, another
//! instance on PostgreSQL) is seen within [`TTL`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Account, Channel, Group, StoreResult, Template};

/// How long a copy is used when nothing in this process changed it.
pub const TTL: Duration = Duration::from_secs(1);

/// Copies kept per kind at most (unknown tokens are kept too, so a flood of them is bounded).
const MAX_ENTRIES: usize = 10_000;

pub struct Table<V> {
    map: Mutex<HashMap<String, (u64, Instant, V)>>,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> Table<V> {
    /// The copy under `key` if it is fresh, else what `load` reads (then kept).
    pub async fn get_or(
        &self,
        lookups: &Lookups,
        key: &str,
        load: impl Future<Output = StoreResult<V>>,
    ) -> StoreResult<V> {
        // The version is taken before reading: a write that commits meanwhile bumps it, so
        // what was read cannot be kept as current.
        let version = lookups.version.load(Ordering::SeqCst);
        if let Some((v, at, value)) = self.map.lock().expect("lookups lock").get(key)
            && *v == version
            && at.elapsed() < TTL
        {
            return Ok(value.clone());
        }
        let value = load.await?;
        let mut map = self.map.lock().expect("lookups lock");
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key.to_string(), (version, Instant::now(), value.clone()));
        Ok(value)
    }
}

#[derive(Default)]
pub struct Lookups {
    version: AtomicU64,
    pub channel_by_token: Table<Option<Channel>>,
    pub channel: Table<Option<Channel>>,
    /// Where a webhook for a phone number id goes.
    pub channel_by_phone_number_id: Table<Option<Channel>>,
    pub account: Table<Option<Account>>,
    /// Keyed by account id and template id.
    pub account_template: Table<Option<Template>>,
    pub default_group: Table<Option<Group>>,
    /// An account's webhook endpoints as (id, url, event types), read by every status that
    /// queues an event. Outbox rows for a copied endpoint are inserted only if it still exists.
    pub endpoints: Table<Vec<(String, String, String)>>,
    /// Bumped by every write that queues an outbox row, before its commit: the callback
    /// worker skips the pass a status event would cause when nothing was queued since its
    /// last one (a wasted write transaction on SQLite's one connection otherwise).
    outbox_queued: AtomicU64,
}

impl Lookups {
    /// Called by a write that queues outbox rows, before it commits (a rolled-back one
    /// costs a pass that finds nothing).
    pub fn outbox_queued(&self) {
        self.outbox_queued.fetch_add(1, Ordering::SeqCst);
    }

    /// How many writes have queued outbox rows since the store opened.
    pub fn outbox_writes(&self) -> u64 {
        self.outbox_queued.load(Ordering::SeqCst)
    }

    /// Called after every write to accounts, channels, groups, templates or webhook
    /// endpoints: no copy read before it is used again.
    pub fn changed(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// For a write method: calls [`Lookups::changed`] when dropped, after the method's
    /// transaction, however it returns.
    pub fn writing(&self) -> Writing<'_> {
        Writing(self)
    }
}

pub struct Writing<'a>(&'a Lookups);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.changed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    async fn load(reads: &AtomicUsize, value: i64) -> StoreResult<Option<i64>> {
        reads.fetch_add(1, Ordering::SeqCst);
        Ok(Some(value))
    }

    #[tokio::test]
    async fn a_copy_is_used_until_a_write_then_read_again() {
        let lookups = Lookups::default();
        let table: Table<Option<i64>> = Table::default();
        let reads = AtomicUsize::new(0);
        assert_eq!(
            table.get_or(&lookups, "k", load(&reads, 1)).await.unwrap(),
            Some(1)
        );
        assert_eq!(
            table.get_or(&lookups, "k", load(&reads, 2)).await.unwrap(),
            Some(1)
        );
        assert_eq!(
            reads.load(Ordering::SeqCst),
            1,
            "the second lookup read nothing"
        );
        lookups.changed();
        assert_eq!(
            table.get_or(&lookups, "k", load(&reads, 3)).await.unwrap(),
            Some(3)
        );
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        // Another key is its own copy.
        assert_eq!(
            table.get_or(&lookups, "j", load(&reads, 4)).await.unwrap(),
            Some(4)
        );
    }

    #[tokio::test]
    async fn what_was_read_during_a_write_is_not_kept() {
        let lookups = Lookups::default();
        let table: Table<Option<i64>> = Table::default();
        let reads = AtomicUsize::new(0);
        // The write commits while the read is in flight.
        let read = async {
            lookups.changed();
            load(&reads, 1).await
        };
        table.get_or(&lookups, "k", read).await.unwrap();
        assert_eq!(
            table.get_or(&lookups, "k", load(&reads, 2)).await.unwrap(),
            Some(2)
        );
    }
}
