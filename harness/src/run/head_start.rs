//! A head start for the cases whose expectation depends on how soon the
//! MTA takes a fresh message up (see [`super::timing`]): the run's other
//! messages are injected only once theirs have begun their first attempt,
//! so that the run's own flood of mail does not age them in the queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The longest the other cases wait for the timed ones to begin: past
/// it, the timing check still tells what happened.
const PATIENCE: Duration = Duration::from_secs(10);

/// How many timed cases have yet to begin, and the signal that all have.
pub(crate) struct HeadStart {
    left: AtomicUsize,
    released: CancellationToken,
}

impl HeadStart {
    pub fn new(timed: usize) -> Arc<HeadStart> {
        let released = CancellationToken::new();
        if timed == 0 {
            released.cancel();
        }
        Arc::new(HeadStart {
            left: AtomicUsize::new(timed),
            released,
        })
    }

    /// One timed case's ticket: dropping it says the case has begun (or
    /// will not: every way out of a case drops it).
    pub fn ticket(self: &Arc<Self>) -> Ticket {
        Ticket(self.clone())
    }

    /// Waits until every timed case has begun, or the patience runs out.
    pub async fn wait(&self) {
        let _ = tokio::time::timeout(PATIENCE, self.released.cancelled()).await;
    }
}

pub(crate) struct Ticket(Arc<HeadStart>);

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.0.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.released.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_others_go_once_every_ticket_is_dropped() {
        let head = HeadStart::new(2);
        let (a, b) = (head.ticket(), head.ticket());
        drop(a);
        assert!(!head.released.is_cancelled());
        drop(b);
        assert!(head.released.is_cancelled());
        head.wait().await;
        let none = HeadStart::new(0);
        assert!(none.released.is_cancelled());
    }
}
