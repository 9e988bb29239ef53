//! Running the independent parts of one job on the machine's cores, with
//! scoped threads: results come back in order, and a panic in any part is
//! resumed on the calling thread.

/// How many threads a job split over the cores uses (at most 8). Asked
/// once: the standard library reads the process's cgroup files each time.
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
}

/// Runs `f` on every part, the first on the calling thread and each other
/// on a thread of its own, and returns the results in the parts' order.
pub fn map<T: Send, R: Send>(parts: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    if parts.len() < 2 {
        return parts.into_iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|scope| {
        let mut parts = parts.into_iter();
        let first = parts.next();
        let handles: Vec<_> = parts.map(|part| scope.spawn(move || f(part))).collect();
        let mut results = Vec::with_capacity(handles.len() + 1);
        results.extend(first.map(f));
        for handle in handles {
            match handle.join() {
                Ok(result) => results.push(result),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    })
}

/// Runs `work` on parts `0..parts`, which every core takes in turn, and
/// hands each result to `consume` on the calling thread in the parts'
/// order, as soon as it and every one before it are done: the calling
/// thread works on parts too while it waits. A panic in any part is
/// resumed on the calling thread.
pub fn in_order<R: Send>(
    parts: usize,
    work: impl Fn(usize) -> R + Sync,
    mut consume: impl FnMut(R),
) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Mutex, PoisonError};
    let others = threads() - 1;
    if parts < 2 || others == 0 {
        (0..parts).map(work).for_each(consume);
        return;
    }
    let done: Vec<Mutex<Option<R>>> = (0..parts).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let panicked = AtomicBool::new(false);
    // Works on the next part nobody has, if any.
    let take = || {
        let k = next.fetch_add(1, Ordering::Relaxed);
        if k >= parts {
            return false;
        }
        let _flag = FlagOnPanic(&panicked);
        let result = work(k);
        *done[k].lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
        true
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (0..others)
            .map(|_| scope.spawn(|| while take() {}))
            .collect();
        'parts: for slot in &done {
            loop {
                let ready = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some(result) = ready {
                    consume(result);
                    break;
                }
                if !take() {
                    if panicked.load(Ordering::Relaxed) {
                        break 'parts;
                    }
                    std::thread::yield_now();
                }
            }
        }
        // Joined here, so that a helper's panic is resumed as it was (the
        // scope would raise one of its own instead).
        for helper in helpers {
            if let Err(panic) = helper.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

/// Raises its flag if dropped while its thread panics, so threads waiting
/// for that thread's work stop waiting.
struct FlagOnPanic<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for FlagOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Where to cut `len` bytes into about `parts` parts: for each ideal
/// position (and past the cut before), the cut `find` gives at or after
/// it, if any.
pub fn cuts_near(
    len: usize,
    parts: usize,
    mut find: impl FnMut(usize) -> Option<usize>,
) -> Vec<usize> {
    let mut cuts = Vec::with_capacity(parts.saturating_sub(1));
    let mut from = 0;
    for k in 1..parts {
        let ideal = (len * k / parts).max(from);
        if let Some(at) = find(ideal) {
            cuts.push(at);
            from = at + 1;
        }
    }
    cuts
}

/// Drops `value` on a thread of its own: for a large buffer whose wiping
/// and unmapping need not hold up the caller (dropped on the calling
/// thread if no thread can be started). The process may end first; its
/// memory then goes back to the system, which zero-fills it before reuse.
pub fn drop_in_background<T: Send + 'static>(value: T) {
    // On failure the closure, and `value` with it, is dropped here.
    let _ = std::thread::Builder::new().spawn(move || drop(value));
}

#[cfg(test)]
mod tests {
    #[test]
    fn map_keeps_order() {
        let squares = super::map((0..10).collect(), |n: u32| n * n);
        assert_eq!(squares, (0..10).map(|n| n * n).collect::<Vec<_>>());
        assert_eq!(super::map(Vec::<u32>::new(), |n| n), Vec::<u32>::new());
    }

    #[test]
    fn in_order_hands_results_over_in_order() {
        for parts in [0, 1, 2, 100] {
            let mut seen = Vec::new();
            super::in_order(parts, |n| n * n, |square| seen.push(square));
            assert_eq!(seen, (0..parts).map(|n| n * n).collect::<Vec<_>>());
        }
    }

    #[test]
    #[should_panic(expected = "part 7")]
    fn in_order_resumes_a_panic() {
        super::in_order(50, |n| assert!(n != 7, "part 7"), |()| {});
    }

    /// A part that panics on another thread than the caller's reaches the
    /// caller with its own message (the scope would raise its own).
    #[test]
    fn in_order_resumes_a_helpers_panic() {
        if super::threads() < 2 {
            return;
        }
        let caller = std::thread::current().id();
        let work = |_| {
            if std::thread::current().id() == caller {
                std::thread::sleep(std::time::Duration::from_millis(2));
            } else {
                panic!("on a helper");
            }
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            super::in_order(50, work, |()| {});
        }));
        let panic = outcome.expect_err("a part panicked");
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"on a helper"));
    }
}
