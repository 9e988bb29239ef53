//! How long a remote unwrap may wait, from the attempt's [`Deadline`].
//!
//! A backend's HTTP client has no timeouts of its own (clients are cached across
//! entries whose deadlines differ), so nothing in this source gives up
//! before the deadline: `--key-timeout 30s` gives a slow server 30 s. The
//! orchestrator cuts the attempt at the deadline and reports it as a
//! timeout; the bound here is only a backstop for callers that do not cut
//! (an embedding program), and the only bound without a deadline.

use std::future::Future;
use std::time::Duration;

use rsops_keysource::Deadline;

/// How long after the deadline the source stops waiting by itself. The
/// caller's own timer, started with the deadline, fires first, so the
/// user sees the caller's timeout rather than this source's.
pub const GRACE: Duration = Duration::from_millis(250);

/// Runs `work` until the deadline (plus [`GRACE`]), or for `fallback`
/// without one. `Err` holds the time the attempt was given, for the
/// message.
pub async fn within<F: Future>(
    deadline: Deadline,
    fallback: Duration,
    work: F,
) -> Result<F::Output, Duration> {
    let (bound, given) = match deadline.remaining() {
        Some(left) => (left.saturating_add(GRACE), whole_millis(left)),
        None => (fallback, fallback),
    };
    match tokio::time::timeout(bound, work).await {
        Ok(output) => Ok(output),
        Err(_) => {
            // A caller cutting at the deadline whose task was not polled
            // until after this bound too (a stalled machine) polls this
            // future first: yielding once lets its own, due timer report
            // the timeout.
            tokio::task::yield_now().await;
            Err(given)
        }
    }
}

/// `left` rounded up to whole milliseconds: the deadline as given
/// (`2s`), not as measured an instant later (`1.999987s`).
fn whole_millis(left: Duration) -> Duration {
    let millis = left.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_shown_as_given() {
        assert_eq!(
            whole_millis(Duration::from_micros(1_999_987)),
            Duration::from_secs(2)
        );
        assert_eq!(whole_millis(Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test]
    async fn only_the_deadline_bounds_the_work_when_there_is_one() {
        // A fallback far shorter than the work does not apply with a deadline.
        let slow = tokio::time::sleep(Duration::from_millis(50));
        let done = within(
            Deadline::after(Duration::from_secs(5)),
            Duration::from_millis(1),
            slow,
        )
        .await;
        assert_eq!(done, Ok(()));
        let never = std::future::pending::<()>();
        let given = within(Deadline::NONE, Duration::from_millis(20), never).await;
        assert_eq!(given, Err(Duration::from_millis(20)));
    }
}
