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
use crate::mta::log::{LogEvent, LogLine, TlsSession};
use crate::mta::{DeliveryEvent, MtaError};
use crate::scenario::Seconds;
use crate::upstream::Received;

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
    seen: RigState,
    mut head_start: Option<Ticket>,
) -> Observation {
    let mut watch = Watch::new(plan, rig, lab, attempt_timeout, seen);
    let mut attempts: Vec<Attempt> = Vec::new();
    for n in 0..plan.attempts {
        match watch.attempt(n, rx, &mut head_start).await {
            Ok(attempt) => {
                let done = attempt.outcome.is_none_or(|o| o.is_final());
                attempts.push(attempt);
                if done {
                    break;
                }
            }
            Err(why) => {
                attempts.push(Attempt::failed(why, Wire::default()));
                break;
            }
        }
    }
    watch.finish(attempts).await
}

/// The MTA's log ended under the message.
const STOPPED: &str = "the MTA stopped during the run: its mail log ended";

/// One message on its way through its attempts, and what the fakes and
/// the MTA's log said of it so far.
struct Watch<'a> {
    plan: &'a Delivery,
    rig: &'a Rig,
    lab: &'a Lab,
    attempt_timeout: Duration,
    started: Instant,
    /// What the fakes saw, as of the last question asked.
    seen: RigState,
    /// Whether that answer is the whole story: asked after the last
    /// attempt's status, with every connection closed.
    complete: bool,
    /// How many connections had ended on each path before the message.
    earlier: Vec<usize>,
    /// Per attempt, how many connections had ended on each path when it began.
    befores: Vec<Vec<usize>>,
    queue_id: Option<String>,
    injected_at: tokio::time::Instant,
    log: Vec<(usize, String)>,
}

impl<'a> Watch<'a> {
    fn new(
        plan: &'a Delivery,
        rig: &'a Rig,
        lab: &'a Lab,
        attempt_timeout: Duration,
        seen: RigState,
    ) -> Watch<'a> {
        Watch {
            plan,
            rig,
            lab,
            attempt_timeout,
            started: Instant::now(),
            complete: false,
            earlier: seen.ended(),
            seen,
            befores: Vec::new(),
            queue_id: None,
            injected_at: tokio::time::Instant::now(),
            log: Vec::new(),
        }
    }

    /// Attempt `n`, from its start to its classification; an error is why
    /// it could not be classified (and the message is followed no further).
    async fn attempt(
        &mut self,
        n: usize,
        rx: &mut mpsc::UnboundedReceiver<DeliveryEvent>,
        head_start: &mut Option<Ticket>,
    ) -> Result<Attempt, String> {
        if n > 0 {
            self.wait_for_retry().await;
        }
        let first_line = self.lab.mta.line_count();
        self.complete = false;
        if n > 0 {
            self.seen = self.ask(None).await?;
        }
        let connections_before = self.seen.ended();
        self.befores.push(connections_before.clone());
        let received_before = received_copies(&self.seen, self.rig).len();
        self.kick().await.map_err(|e| e.to_string())?;
        if let (Some(ticket), Some(id)) = (head_start.take(), &self.queue_id) {
            // The run's other messages wait for this one to be taken up.
            let patience = tokio::time::Instant::now() + Duration::from_secs(10);
            self.lab.mta.activated(id, first_line, patience).await;
            drop(ticket);
        }
        let (event, deadline) = self.status(n, rx).await?;
        // The MTA logs the status before it says QUIT; the wire record of
        // the attempt is complete once its connections have closed. The
        // agent answers after everything it saw before the question: all
        // that the MTA's status line could be about.
        self.seen = self.ask(Some(deadline)).await?;
        self.complete = self.seen.open == 0;
        let wire = Wire::from_records(&self.seen.records_since(&connections_before))
            .with_open(self.seen.open);
        let lines = self.lines_of(&event, first_line);
        // Whatever the MTA logged: a relay that has the message although
        // the MTA deferred it is a disagreement, not a detail.
        let received = received_copies(&self.seen, self.rig)
            .into_iter()
            .nth(received_before);
        let attempt = judge(&event, &lines, self.rig.port, wire, received);
        self.log.extend(lines.into_iter().map(|(i, l)| (i, l.raw)));
        Ok(attempt)
    }

    /// The scenario's deliberate wait: the message must be this old for
    /// Postfix to treat the next attempt as a retry after backoff.
    async fn wait_for_retry(&self) {
        if let Some(after) = self.plan.retry_after {
            // Postfix compares whole seconds (queue arrival vs active
            // arrival), hence one second more.
            let age = Duration::from_secs(after.0 + 1);
            tokio::time::sleep_until(self.injected_at + age).await;
        }
    }

    /// What the fakes have seen; with `idle_by`, once the rig's
    /// connections are idle (or at that instant).
    async fn ask(&self, idle_by: Option<tokio::time::Instant>) -> Result<RigState, String> {
        self.lab
            .state(self.rig.id, idle_by)
            .await
            .map_err(|e| e.to_string())
    }

    /// Hands the message to the MTA (its first attempt) or has the MTA try
    /// it again.
    async fn kick(&mut self) -> Result<(), MtaError> {
        let (lab, plan, rig) = (self.lab, self.plan, self.rig);
        let instance = &lab.mta;
        let kick = async {
            match &self.queue_id {
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
            _ = instance.stopped() => Err(MtaError::Exec(STOPPED.into())),
        };
        if let Some(id) = kicked? {
            // Postfix timestamps the message once it has it.
            self.injected_at = tokio::time::Instant::now();
            self.queue_id = Some(id);
        }
        Ok(())
    }

    /// The MTA's status line of attempt `n`, and the deadline it was
    /// awaited by.
    async fn status(
        &self,
        n: usize,
        rx: &mut mpsc::UnboundedReceiver<DeliveryEvent>,
    ) -> Result<(DeliveryEvent, tokio::time::Instant), String> {
        let deadline = tokio::time::Instant::now() + self.attempt_timeout;
        let event = tokio::select! {
            e = tokio::time::timeout_at(deadline, rx.recv()) => e,
            _ = self.lab.mta.stopped() => return Err(STOPPED.into()),
        };
        let Ok(Some(event)) = event else {
            return Err(format!(
                "the MTA logged no delivery status for attempt {} within {}s",
                n + 1,
                self.attempt_timeout.as_secs()
            ));
        };
        Ok((event, deadline))
    }

    /// The MTA's lines about the attempt whose status is `event`, from
    /// `first_line` on, with their indexes.
    fn lines_of(&self, event: &DeliveryEvent, first_line: usize) -> Vec<(usize, LogLine)> {
        let queue_id = self.queue_id.as_deref();
        let mut lines =
            self.lab
                .mta
                .lines_about(Some(event.pid), queue_id, first_line..event.index + 1);
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
            lines
                .retain(|(i, l)| *i > previous || (l.pid != event.pid && l.queue_id() == queue_id));
        }
        lines
    }

    /// The message's story: each attempt with its connections, the log and
    /// the wire transcript.
    async fn finish(mut self, mut attempts: Vec<Attempt>) -> Observation {
        self.log.sort();
        self.log.dedup();
        // One more question only when the story may have gone on (every
        // question is a round trip through the agent's attach stream).
        if !self.complete
            && let Ok(s) = self.ask(None).await
        {
            self.seen = s;
        }
        // The ladders read each attempt's connections from this last record,
        // which also holds those that closed after the attempt's status line
        // (an attempt that timed out has no other); the classification above
        // keeps what it saw at the time.
        for (n, attempt) in attempts.iter_mut().enumerate() {
            let Some(before) = self.befores.get(n) else {
                break;
            };
            attempt.connections = records_between(&self.seen, before, self.befores.get(n + 1));
        }
        Observation {
            attempts,
            transcript: transcript(&self.seen, &self.earlier),
            queue_id: self.queue_id,
            log: self.log.into_iter().map(|(_, l)| l).collect(),
            duration_ms: self.started.elapsed().as_millis() as u64,
        }
    }
}

/// Classifies one attempt from its status line, its lines in the log, the
/// wire and the relay's copy of the message, if it has one.
fn judge(
    event: &DeliveryEvent,
    lines: &[(usize, LogLine)],
    port: u16,
    wire: Wire,
    received: Option<Received>,
) -> Attempt {
    // Exim logs the session on the status line; Postfix on a line of
    // its own, before it.
    let tls = event
        .delivery
        .tls
        .clone()
        .or_else(|| logged_session(event, lines, port));
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
    let mut attempt = classify(
        &event.delivery,
        &status_line,
        tls,
        wire,
        received,
        retried_in_clear,
    );
    attempt.log = lines.iter().map(|(_, l)| l.raw.clone()).collect();
    attempt
}

/// The TLS session the delivering process logged on its own line, with
/// the fakes' port.
fn logged_session(
    event: &DeliveryEvent,
    lines: &[(usize, LogLine)],
    port: u16,
) -> Option<TlsSession> {
    // The session with the address that delivered (or failed last):
    // with several paths a session on another address is not this one.
    let relay_addr = event
        .delivery
        .relay
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(addr, _)| addr.to_owned());
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
}

/// Every connection that ended after `earlier`, and the DNS path's
/// events when the case has one.
fn transcript(seen: &RigState, earlier: &[usize]) -> String {
    let transcript = seen
        .records_since(earlier)
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let to = r.local.map(|a| format!(" to {a}")).unwrap_or_default();
            format!("connection {}{to}:\n{}", i + 1, r.transcript)
        })
        .collect::<Vec<_>>()
        .join("\n");
    if seen.dns.is_empty() {
        transcript
    } else {
        let dns: Vec<String> = seen.dns.iter().map(|e| format!("  {e}")).collect();
        format!("DNS path:\n{}\n{transcript}", dns.join("\n"))
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
fn received_copies(seen: &RigState, rig: &Rig) -> Vec<Received> {
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
