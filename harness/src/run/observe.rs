//! Watching one message through its delivery attempts: inject, wait for
//! the MTA's status line, gather the wire and the relay's record, classify.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::classify::{Attempt, Wire, classify};
use super::head_start::Ticket;
use super::rig::Rig;
use crate::lab::Lab;
use crate::lab::protocol::RigState;
use crate::middlebox::ConnectionRecord;
use crate::mta::log::LogEvent;
use crate::mta::{DeliveryEvent, MtaError};
use crate::scenario::Seconds;

/// What to send and how often to try.
pub(crate) struct Delivery {
    pub recipient: String,
    pub subject: String,
    pub attempts: usize,
    pub retry_after: Option<Seconds>,
}

/// What one message went through.
pub(crate) struct Observation {
    pub attempts: Vec<Attempt>,
    pub queue_id: Option<String>,
    /// The MTA's log lines about the message, in log order.
    pub log: Vec<String>,
    /// The wire transcript of every connection, in order.
    pub transcript: String,
    pub duration_ms: u64,
}

/// Injects the message and follows it until it leaves the queue or the
/// attempts are used up. `seen` is what the fakes had seen before (a case
/// run again: its earlier connections and copies are not this message's).
pub(crate) async fn observe(
    plan: &Delivery,
    rig: &Rig,
    lab: &Lab,
    rx: &mut mpsc::UnboundedReceiver<DeliveryEvent>,
    attempt_timeout: Duration,
    mut seen: RigState,
    mut head_start: Option<Ticket>,
) -> Observation {
    let started = Instant::now();
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut queue_id: Option<String> = None;
    let mut log: Vec<(usize, String)> = Vec::new();
    let mut injected_at = tokio::time::Instant::now();
    let instance = &lab.mta;
    // What the fakes saw, as of the last question asked, and whether that
    // answer is the whole story: asked after the last attempt's status,
    // with every connection closed.
    let mut complete = false;
    let earlier = seen.ended();
    // Per attempt, how many connections had ended on each path when it began.
    let mut befores: Vec<Vec<usize>> = Vec::new();
    for n in 0..plan.attempts {
        if n > 0
            && let Some(after) = plan.retry_after
        {
            // The scenario's deliberate wait: the message must be this old
            // for Postfix to treat the next attempt as a retry after
            // backoff. Postfix compares whole seconds (queue arrival vs
            // active arrival), hence one second more.
            let age = Duration::from_secs(after.0 + 1);
            tokio::time::sleep_until(injected_at + age).await;
        }
        let first_line = instance.line_count();
        complete = false;
        if n > 0 {
            match lab.state(rig.id, None).await {
                Ok(s) => seen = s,
                Err(e) => {
                    attempts.push(Attempt::failed(e.to_string(), Wire::default()));
                    break;
                }
            }
        }
        let connections_before = seen.ended();
        befores.push(connections_before.clone());
        let received_before = received_copies(&seen, rig).len();
        let kick = async {
            match &queue_id {
                None => {
                    let id = lab
                        .inject(&plan.recipient, &plan.subject, &rig.message_id)
                        .await?;
                    if instance.mta().driver().queues_on_receipt() {
                        instance.flush(&id).await?;
                    }
                    Ok(Some(id))
                }
                Some(id) => instance.flush(id).await.map(|()| None),
            }
        };
        let kicked = tokio::select! {
            k = kick => k,
            _ = instance.stopped() => Err(MtaError::Exec(
                "the MTA stopped during the run: its mail log ended".into(),
            )),
        };
        let kicked = kicked.map(|id| {
            if let Some(id) = id {
                // Postfix timestamps the message once it has it.
                injected_at = tokio::time::Instant::now();
                queue_id = Some(id);
            }
        });
        if let Err(e) = kicked {
            attempts.push(Attempt::failed(e.to_string(), Wire::default()));
            break;
        }
        if let (Some(ticket), Some(id)) = (head_start.take(), &queue_id) {
            // The run's other messages wait for this one to be taken up.
            let patience = tokio::time::Instant::now() + Duration::from_secs(10);
            instance.activated(id, first_line, patience).await;
            drop(ticket);
        }
        let deadline = tokio::time::Instant::now() + attempt_timeout;
        let event = tokio::select! {
            e = tokio::time::timeout_at(deadline, rx.recv()) => e,
            _ = instance.stopped() => {
                attempts.push(Attempt::failed(
                    "the MTA stopped during the run: its mail log ended".into(),
                    Wire::default(),
                ));
                break;
            }
        };
        let Ok(Some(event)) = event else {
            attempts.push(Attempt::failed(
                format!(
                    "the MTA logged no delivery status for attempt {} within {}s",
                    n + 1,
                    attempt_timeout.as_secs()
                ),
                Wire::default(),
            ));
            break;
        };
        // The MTA logs the status before it says QUIT; the wire record of
        // the attempt is complete once its connections have closed. The
        // agent answers after everything it saw before the question: all
        // that the MTA's status line could be about.
        match lab.state(rig.id, Some(deadline)).await {
            Ok(s) => seen = s,
            Err(e) => {
                attempts.push(Attempt::failed(e.to_string(), Wire::default()));
                break;
            }
        }
        complete = seen.open == 0;
        let wire =
            Wire::from_records(&seen.records_since(&connections_before)).with_open(seen.open);
        let mut lines = instance.lines_about(
            Some(event.pid),
            queue_id.as_deref(),
            first_line..event.index + 1,
        );
        // An smtp process delivers one message at a time: its lines after
        // its previous status line are about this delivery.
        let previous = lines
            .iter()
            .filter(|(i, l)| {
                *i < event.index && l.pid == event.pid && matches!(l.event, LogEvent::Delivery(_))
            })
            .map(|(i, _)| *i)
            .next_back();
        if let Some(previous) = previous {
            lines.retain(|(i, l)| {
                *i > previous || (l.pid != event.pid && l.queue_id() == queue_id.as_deref())
            });
        }
        // The session with the address that delivered (or failed last):
        // with several paths a session on another address is not this one.
        let port = rig.port;
        let relay_addr = event
            .delivery
            .relay
            .split_once('[')
            .and_then(|(_, rest)| rest.split_once(']'))
            .map(|(addr, _)| addr.to_owned());
        // Exim logs the session on the status line; Postfix on a line of
        // its own, before it.
        let tls = event.delivery.tls.clone().or_else(|| {
            lines
                .iter()
                .filter(|(_, l)| l.pid == event.pid)
                .filter_map(|(_, l)| match &l.event {
                    LogEvent::Tls(t)
                        if t.port == port && relay_addr.as_deref().is_none_or(|a| a == t.addr) =>
                    {
                        Some(t.clone())
                    }
                    _ => None,
                })
                .next_back()
        });
        // The client's own note that it gave up TLS with a host and
        // delivered in clear on a new connection (Exim, within one attempt).
        let retried_in_clear = lines.iter().find_map(|(_, l)| match &l.event {
            LogEvent::RetriedInClear(host) => Some(host.clone()),
            _ => None,
        });
        let status_line = lines
            .iter()
            .find(|(i, _)| *i == event.index)
            .map(|(_, l)| l.raw.clone())
            .unwrap_or_default();
        let attempt_log: Vec<String> = lines.iter().map(|(_, l)| l.raw.clone()).collect();
        log.extend(lines.into_iter().map(|(i, l)| (i, l.raw)));
        // Whatever the MTA logged: a relay that has the message although
        // the MTA deferred it is a disagreement, not a detail.
        let received = received_copies(&seen, rig).into_iter().nth(received_before);
        let mut attempt = classify(
            &event.delivery,
            &status_line,
            tls,
            wire,
            received,
            retried_in_clear,
        );
        attempt.log = attempt_log;
        let done = attempt.outcome.is_none_or(|o| o.is_final());
        attempts.push(attempt);
        if done {
            break;
        }
    }
    log.sort();
    log.dedup();
    // One more question only when the story may have gone on (every
    // question is a round trip through the agent's attach stream).
    if !complete && let Ok(s) = lab.state(rig.id, None).await {
        seen = s;
    }
    // The ladders read each attempt's connections from this last record,
    // which also holds those that closed after the attempt's status line
    // (an attempt that timed out has no other); the classification above
    // keeps what it saw at the time.
    for (n, attempt) in attempts.iter_mut().enumerate() {
        let Some(before) = befores.get(n) else { break };
        attempt.connections = records_between(&seen, before, befores.get(n + 1));
    }
    let transcript = seen
        .records_since(&earlier)
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let to = r.local.map(|a| format!(" to {a}")).unwrap_or_default();
            format!("connection {}{to}:\n{}", i + 1, r.transcript)
        })
        .collect::<Vec<_>>()
        .join("\n");
    let transcript = if seen.dns.is_empty() {
        transcript
    } else {
        let dns: Vec<String> = seen.dns.iter().map(|e| format!("  {e}")).collect();
        format!("DNS path:\n{}\n{transcript}", dns.join("\n"))
    };
    Observation {
        attempts,
        queue_id,
        log: log.into_iter().map(|(_, l)| l).collect(),
        transcript,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// The connections that ended after `since` and before `until` (both
/// from [`RigState::ended`]; `None`: up to now), every path together, in
/// the order they began.
fn records_between(
    seen: &RigState,
    since: &[usize],
    until: Option<&Vec<usize>>,
) -> Vec<ConnectionRecord> {
    let mut all: Vec<ConnectionRecord> = seen
        .paths
        .iter()
        .enumerate()
        .flat_map(|(p, records)| {
            let from = since.get(p).copied().unwrap_or(0).min(records.len());
            let to = until
                .and_then(|u| u.get(p).copied())
                .unwrap_or(records.len())
                .clamp(from, records.len());
            records[from..to].iter().cloned()
        })
        .collect();
    all.sort_by_key(|r| r.started_ms);
    all
}

/// The relay's records of the case's message, in the order it received them.
fn received_copies(seen: &RigState, rig: &Rig) -> Vec<crate::upstream::Received> {
    seen.received
        .iter()
        .filter(|r| r.message_id.as_deref() == Some(rig.message_id.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(ms: u64) -> ConnectionRecord {
        ConnectionRecord {
            started_ms: ms,
            ..Default::default()
        }
    }

    #[test]
    fn each_attempt_gets_the_connections_that_ended_before_the_next_began() {
        let seen = RigState {
            paths: vec![
                vec![started(1), started(5), started(9)],
                vec![started(2), started(6)],
            ],
            open: 0,
            received: Vec::new(),
            dns: Vec::new(),
        };
        let times = |records: Vec<ConnectionRecord>| -> Vec<u64> {
            records.iter().map(|r| r.started_ms).collect()
        };
        let first = vec![0, 0];
        let second = vec![1, 1];
        let third = vec![2, 2];
        assert_eq!(times(records_between(&seen, &first, Some(&second))), [1, 2]);
        assert_eq!(times(records_between(&seen, &second, Some(&third))), [5, 6]);
        assert_eq!(times(records_between(&seen, &third, None)), [9]);
        // Counts from a record taken before a path had any connection.
        assert_eq!(times(records_between(&seen, &[], None)), [1, 2, 5, 6, 9]);
    }
}
