//! Clients built on first use, one per key (a region, a vault address…),
//! shared by every entry that needs the same one.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// A map from a key to a client built at most once.
///
/// Concurrent callers for the same key wait for one build. A build that
/// fails, or whose future is dropped (a deadline), leaves the slot empty,
/// so the next caller builds again.
pub struct ClientCache<K, V> {
    cells: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for ClientCache<K, V> {
    fn default() -> Self {
        ClientCache {
            cells: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> ClientCache<K, V> {
    /// The client for `key`, built with `build` if there is none yet.
    pub async fn get_or_try_build<E, F, Fut>(&self, key: &K, build: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let cell = {
            // A poisoned map is still a valid map: nothing panics while
            // holding the lock, and the worst case is a rebuilt client.
            let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(cells.entry(key.clone()).or_default())
        };
        cell.get_or_try_init(build).await.cloned()
    }

    /// How many keys were asked for so far.
    pub fn len(&self) -> usize {
        self.cells.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when no client was asked for yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn builds_once_per_key_and_retries_after_failure() {
        let cache: ClientCache<&str, usize> = ClientCache::default();
        let builds = AtomicUsize::new(0);
        let build = || async { Ok::<_, ()>(builds.fetch_add(1, Ordering::SeqCst)) };
        assert_eq!(cache.get_or_try_build(&"a", build).await, Ok(0));
        assert_eq!(cache.get_or_try_build(&"a", build).await, Ok(0));
        assert_eq!(cache.get_or_try_build(&"b", build).await, Ok(1));
        let failed = cache
            .get_or_try_build(&"c", || async { Err::<usize, _>("down") })
            .await;
        assert_eq!(failed, Err("down"));
        assert_eq!(cache.get_or_try_build(&"c", build).await, Ok(2));
        assert_eq!(cache.len(), 3);
    }
}
