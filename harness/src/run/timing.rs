//! Timing preconditions: what a case's expectation assumes of the MTA's
//! clock, checked against what the MTA logged.
//!
//! Postfix at `may` retries a failed TLS handshake in plaintext once the
//! message waited `minimal_backoff_time` before the attempt began (its
//! `delays=` first field). A scenario that expects a fresh message to be
//! deferred assumes the first attempt comes sooner than that; on a busy
//! machine it may not, and Postfix then rightly falls back at once. That
//! is neither the MTA failing the expectation nor a pass: the assumption
//! did not hold, and the case says so.

use std::time::Duration;

use super::classify::Attempt;
use crate::scenario::Seconds;

/// Why the timing the scenario assumed did not hold for `attempts`, if it
/// did not. `fallback_age` is the age from which the MTA falls back to
/// plaintext; the first attempt, and any the scenario retries without a
/// wait, assume a younger message, and one after `retry_after` an older
/// one. Only attempts that began a TLS handshake are judged: the fallback
/// follows a handshake that failed, so age decides nothing elsewhere.
pub(crate) fn unmet(
    fallback_age: Duration,
    retry_after: Option<Seconds>,
    attempts: &[Attempt],
) -> Option<String> {
    let age_ms = fallback_age.as_millis() as u64;
    for (n, a) in attempts.iter().enumerate() {
        let Some(waited) = a.waited_ms else { continue };
        if !(a.wire.tls_started || a.wire.tls_broken) {
            continue;
        }
        let resolution = log_resolution_ms(waited);
        let assumed_old = n > 0 && retry_after.is_some();
        let shown = format_secs(waited);
        if assumed_old {
            // Surely younger than the age: the fallback cannot have applied.
            if waited + resolution < age_ms {
                return Some(format!(
                    "attempt {}: the message had waited {shown} when the MTA began the attempt; the scenario's retry needs it at least {}s old (its fallback age)",
                    n + 1,
                    fallback_age.as_secs()
                ));
            }
        } else if waited + resolution + 1000 > age_ms {
            // Postfix compares whole seconds (its active and arrival times'
            // tv_sec), a second more at worst than what it logs.
            return Some(format!(
                "attempt {}: the message had waited {shown} in the queue before the MTA began the attempt; the scenario needs under {}s (the fallback age {}s, less the MTA's whole-second rounding), as a fresh message",
                n + 1,
                (age_ms.saturating_sub(1000 + resolution)) as f64 / 1000.0,
                fallback_age.as_secs()
            ));
        }
    }
    None
}

/// How coarsely Postfix logs a delay of `ms`: two significant digits, and
/// whole seconds from ten on (log_adhoc.c, `format_tv(..., SIG_DIGS = 2)`).
fn log_resolution_ms(ms: u64) -> u64 {
    match ms {
        0..1_000 => 10,
        1_000..10_000 => 100,
        10_000..100_000 => 1_000,
        _ => 10_000,
    }
}

fn format_secs(ms: u64) -> String {
    if ms >= 10_000 {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::classify::Wire;

    fn attempt(waited_ms: u64, handshake: bool) -> Attempt {
        let mut a = Attempt::failed(
            String::new(),
            Wire {
                tls_broken: handshake,
                ..Wire::default()
            },
        );
        a.waited_ms = Some(waited_ms);
        a
    }

    const TEN: Duration = Duration::from_secs(10);

    #[test]
    fn a_fresh_message_that_waited_past_the_backoff_is_unmet_timing() {
        // The log line: delays=11/4.6/3.3/0 with a 10s backoff.
        let why = unmet(TEN, Some(Seconds(10)), &[attempt(11_000, true)]).unwrap();
        assert!(why.contains("waited 11s"), "{why}");
        assert!(why.contains("under 8s"), "{why}");
    }

    #[test]
    fn a_quick_first_attempt_and_an_old_retry_meet_it() {
        let attempts = [attempt(30, true), attempt(11_200, true)];
        assert_eq!(unmet(TEN, Some(Seconds(10)), &attempts), None);
    }

    #[test]
    fn within_a_second_of_the_backoff_postfix_may_have_rounded_either_way() {
        assert!(unmet(TEN, Some(Seconds(10)), &[attempt(9_200, true)]).is_some());
        assert!(unmet(TEN, Some(Seconds(10)), &[attempt(8_800, true)]).is_none());
    }

    #[test]
    fn a_retry_younger_than_the_backoff_is_unmet_timing() {
        let attempts = [attempt(30, true), attempt(4_000, true)];
        let why = unmet(TEN, Some(Seconds(10)), &attempts).unwrap();
        assert!(why.starts_with("attempt 2:"), "{why}");
    }

    #[test]
    fn retries_without_a_wait_assume_a_young_message_too() {
        let attempts = [attempt(30, true), attempt(400, true)];
        assert_eq!(unmet(Duration::from_secs(300), None, &attempts), None);
        let attempts = [attempt(30, true), attempt(301_000, true)];
        assert!(unmet(Duration::from_secs(300), None, &attempts).is_some());
    }

    #[test]
    fn age_decides_nothing_without_a_handshake() {
        assert_eq!(unmet(TEN, None, &[attempt(60_000, false)]), None);
    }
}
