//! A connection's ladder: what the middlebox did to each line, where TLS
//! began or was intercepted, and what crossed in plaintext.

use serde::Serialize;

use crate::middlebox::{
    CLOSED, CONTENT, ConnectionRecord, Dir, Entry, INTERCEPTED, NAMES, TLS_BEGAN, TLS_ENDED,
};

/// One line of a ladder: an arrow, or a note across the lanes. Keys are
/// short because there are thousands of these in a suite's report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(super) struct Step {
    /// Milliseconds since the connection was accepted.
    t: u64,
    /// The kind of arrow, see [`Kind`].
    k: Kind,
    /// The line as it crossed (printable).
    x: String,
    /// The behaviours that acted on it, space-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    b: Option<String>,
    /// How the middlebox changed it, see [`Change`].
    #[serde(skip_serializing_if = "Option::is_none")]
    d: Option<Change>,
    /// The middlebox's note on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    w: Option<String>,
    /// What it exposed, see [`Exposure`].
    #[serde(skip_serializing_if = "Option::is_none")]
    f: Option<Exposure>,
    /// Which rewritten reply (1, 2, ...) it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    g: Option<u32>,
    /// The state of the path when it crossed, see [`Phase`].
    #[serde(skip_serializing_if = "Phase::is_plain")]
    p: Phase,
}

/// Where an arrow goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(super) enum Kind {
    /// Postfix to the relay, through the middlebox unchanged.
    #[serde(rename = "c")]
    Client,
    /// Postfix to the middlebox, which kept it from the relay.
    #[serde(rename = "ch")]
    ClientHeld,
    /// The relay to Postfix, unchanged.
    #[serde(rename = "s")]
    Server,
    /// The relay to the middlebox, which kept it (or changed it) from Postfix.
    #[serde(rename = "sh")]
    ServerHeld,
    /// The middlebox to Postfix.
    #[serde(rename = "mc")]
    ToClient,
    /// The middlebox to the relay.
    #[serde(rename = "ms")]
    ToServer,
    /// A note across the lanes.
    #[serde(rename = "n")]
    Note,
    /// TLS began end to end.
    #[serde(rename = "tls")]
    TlsBegan,
    /// The end of the end-to-end TLS, with its byte counts.
    #[serde(rename = "tlsend")]
    TlsEnded,
    /// The middlebox terminated TLS: two sessions from here.
    #[serde(rename = "icpt")]
    Intercepted,
    /// The connection closed.
    #[serde(rename = "end")]
    End,
}

/// How the middlebox changed a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum Change {
    /// The relay sent it; Postfix never got it.
    Removed,
    /// One side got it; the other never sent it (rewritten or injected).
    Added,
    /// Part of a rewritten reply that Postfix got as the relay sent it.
    Kept,
    /// Postfix sent it; the relay never got it.
    Held,
}

/// What crossing the path exposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(super) enum Exposure {
    /// DATA sent in plaintext: the message follows unencrypted.
    #[serde(rename = "pd")]
    PlaintextData,
    /// A line of the message in plaintext.
    #[serde(rename = "pc")]
    PlaintextContent,
    /// AUTH in plaintext: credentials.
    #[serde(rename = "pa")]
    PlaintextAuth,
    /// DATA inside TLS the middlebox terminated: it reads the message.
    #[serde(rename = "rd")]
    ReadData,
    /// A line of the message the intercepting middlebox read.
    #[serde(rename = "rc")]
    ReadContent,
}

/// The state of the path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(super) enum Phase {
    #[default]
    #[serde(rename = "")]
    Plain,
    /// TLS end to end: the middlebox sees ciphertext.
    #[serde(rename = "tls")]
    Tls,
    /// Intercepted, TLS on both sides of the middlebox.
    #[serde(rename = "icpt-tls")]
    InterceptedTls,
    /// Intercepted, plaintext between the middlebox and the relay.
    #[serde(rename = "icpt-plain")]
    InterceptedPlain,
}

impl Phase {
    fn is_plain(&self) -> bool {
        *self == Phase::Plain
    }

    fn intercepted(self) -> bool {
        matches!(self, Phase::InterceptedTls | Phase::InterceptedPlain)
    }
}

/// The behaviours a note names: `strip-starttls: removed ...; inject: ...`
/// names strip-starttls and inject.
fn behaviours_of(note: &str) -> Option<String> {
    let mut names: Vec<&str> = Vec::new();
    for part in note.split("; ") {
        let head = part.split(':').next().unwrap_or("").trim();
        if let Some(name) = NAMES.iter().find(|n| **n == head)
            && !names.contains(name)
        {
            names.push(name);
        }
    }
    (!names.is_empty()).then(|| names.join(" "))
}

/// A reply line without its code and separator (`250-8BITMIME` and
/// `250 8BITMIME` say the same), to compare what the relay sent with what
/// Postfix got.
fn payload(line: &str) -> &str {
    let b = line.as_bytes();
    if b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && matches!(b[3], b' ' | b'-') {
        &line[4..]
    } else {
        line
    }
}

/// Which lines of `a` and of `b` are in their longest common subsequence.
fn common(a: &[&str], b: &[&str]) -> (Vec<bool>, Vec<bool>) {
    let (n, m) = (a.len(), b.len());
    let mut len = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            len[i][j] = if a[i] == b[j] {
                len[i + 1][j + 1] + 1
            } else {
                len[i + 1][j].max(len[i][j + 1])
            };
        }
    }
    let (mut in_a, mut in_b) = (vec![false; n], vec![false; m]);
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if a[i] == b[j] {
            in_a[i] = true;
            in_b[j] = true;
            i += 1;
            j += 1;
        } else if len[i + 1][j] >= len[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    (in_a, in_b)
}

fn step(e: &Entry, k: Kind, p: Phase) -> Step {
    Step {
        t: e.at_ms,
        k,
        x: e.text.clone(),
        b: None,
        d: None,
        w: e.note.clone(),
        f: None,
        g: None,
        p,
    }
}

fn is_reply_to_data(text: &str) -> bool {
    text.starts_with("354")
}

/// The ladder of one connection: one step per transcript line, with what
/// the middlebox changed (and which behaviour), where TLS began or was
/// intercepted, and what crossed in plaintext.
pub(super) fn ladder(record: &ConnectionRecord) -> Vec<Step> {
    let entries = &record.transcript.entries;
    let mut ladder = Ladder {
        steps: Vec::with_capacity(entries.len()),
        ..Ladder::default()
    };
    let mut i = 0;
    while i < entries.len() {
        let e = &entries[i];
        match e.dir {
            Dir::ServerHeld => {
                i = ladder.rewritten_reply(entries, i);
                continue;
            }
            Dir::Client => ladder.client(e),
            Dir::Server | Dir::ToClient => ladder.reply(e),
            Dir::ClientHeld | Dir::ToServer => ladder.toward_relay(e),
            Dir::Note => ladder.note(e, record.intercept_relay_tls),
        }
        i += 1;
    }
    ladder.steps
}

/// A ladder being drawn: its steps so far, and the state of the path
/// they leave for the next line.
#[derive(Default)]
struct Ladder {
    steps: Vec<Step>,
    phase: Phase,
    /// DATA sent and its 354 not yet seen.
    data_sent: bool,
    /// Within the message itself, up to its dot.
    in_content: bool,
    /// Rewritten replies so far; each step of one carries its number.
    groups: u32,
}

impl Ladder {
    /// What a line of the message exposes in the current phase.
    fn content(&self) -> Exposure {
        if self.phase.intercepted() {
            Exposure::ReadContent
        } else {
            Exposure::PlaintextContent
        }
    }

    /// A reply the middlebox rewrote, from `entries[i]`: the relay's
    /// lines, then what Postfix got instead (the lines with one note).
    /// Returns the index after it.
    fn rewritten_reply(&mut self, entries: &[Entry], i: usize) -> usize {
        let sent_end = i + entries[i..]
            .iter()
            .take_while(|e| e.dir == Dir::ServerHeld)
            .count();
        let first_got = entries.get(sent_end).filter(|e| e.dir == Dir::ToClient);
        let got_end = sent_end
            + first_got.map_or(0, |first| {
                entries[sent_end..]
                    .iter()
                    .take_while(|e| e.dir == Dir::ToClient && e.note == first.note)
                    .count()
            });
        let by = first_got
            .and_then(|e| e.note.as_deref())
            .and_then(behaviours_of);
        let sent: Vec<&str> = entries[i..sent_end]
            .iter()
            .map(|e| payload(&e.text))
            .collect();
        let got: Vec<&str> = entries[sent_end..got_end]
            .iter()
            .map(|e| payload(&e.text))
            .collect();
        let (kept_sent, kept_got) = common(&sent, &got);
        self.groups += 1;
        for (n, e) in entries[i..got_end].iter().enumerate() {
            let (kind, kept) = if n < sent.len() {
                (Kind::ServerHeld, kept_sent[n])
            } else {
                (Kind::ToClient, kept_got[n - sent.len()])
            };
            let mut s = step(e, kind, self.phase);
            s.b = by.clone();
            s.g = Some(self.groups);
            s.d = Some(match (kind, kept) {
                (_, true) => Change::Kept,
                (Kind::ServerHeld, false) => Change::Removed,
                _ => Change::Added,
            });
            self.steps.push(s);
        }
        if entries[sent_end..got_end]
            .iter()
            .any(|e| is_reply_to_data(&e.text))
            && self.data_sent
        {
            self.in_content = true;
        }
        self.data_sent = false;
        got_end
    }

    /// A line Postfix sent that reached the relay unchanged.
    fn client(&mut self, e: &Entry) {
        let mut s = step(e, Kind::Client, self.phase);
        if self.in_content {
            s.f = Some(self.content());
            if e.text == "." {
                self.in_content = false;
            }
        } else {
            let verb = e.text.split_whitespace().next().unwrap_or("");
            if verb.eq_ignore_ascii_case("DATA") {
                self.data_sent = true;
                s.f = Some(if self.phase.intercepted() {
                    Exposure::ReadData
                } else {
                    Exposure::PlaintextData
                });
            } else if verb.eq_ignore_ascii_case("AUTH") && self.phase == Phase::Plain {
                s.f = Some(Exposure::PlaintextAuth);
            }
        }
        self.steps.push(s);
    }

    /// A line Postfix got: the relay's unchanged, or the middlebox's own.
    fn reply(&mut self, e: &Entry) {
        let kind = if e.dir == Dir::Server {
            Kind::Server
        } else {
            Kind::ToClient
        };
        let mut s = step(e, kind, self.phase);
        if kind == Kind::ToClient {
            s.b = e.note.as_deref().and_then(behaviours_of);
            s.d = Some(Change::Added);
        }
        if self.data_sent && is_reply_to_data(&e.text) {
            self.in_content = true;
        }
        self.data_sent = false;
        self.steps.push(s);
    }

    /// A line Postfix sent that the middlebox kept, or one the middlebox
    /// sent the relay itself.
    fn toward_relay(&mut self, e: &Entry) {
        let (kind, change) = if e.dir == Dir::ClientHeld {
            (Kind::ClientHeld, Change::Held)
        } else {
            (Kind::ToServer, Change::Added)
        };
        let mut s = step(e, kind, self.phase);
        s.b = e.note.as_deref().and_then(behaviours_of);
        s.d = Some(change);
        self.steps.push(s);
    }

    /// The middlebox's note: TLS beginning, ending or intercepted (which
    /// changes the phase), the connection closing, or anything else.
    fn note(&mut self, e: &Entry, intercept_relay_tls: bool) {
        let text = e.text.as_str();
        let kind = if text.starts_with(TLS_BEGAN) {
            self.phase = Phase::Tls;
            Kind::TlsBegan
        } else if text.starts_with(TLS_ENDED) {
            Kind::TlsEnded
        } else if text.starts_with(INTERCEPTED) {
            self.phase = if intercept_relay_tls {
                Phase::InterceptedTls
            } else {
                Phase::InterceptedPlain
            };
            Kind::Intercepted
        } else if text.starts_with(CLOSED) {
            Kind::End
        } else {
            Kind::Note
        };
        let mut s = step(e, kind, self.phase);
        s.b = behaviours_of(text);
        if text.starts_with(CONTENT) {
            s.f = Some(self.content());
        }
        self.steps.push(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::html::fixtures::{incident, record};

    fn find<'a>(steps: &'a [Step], text: &str) -> Vec<&'a Step> {
        steps.iter().filter(|s| s.x == text).collect()
    }

    #[test]
    fn a_stripped_starttls_is_removed_by_its_behaviour_and_data_is_plaintext() {
        let steps = ladder(&incident());
        let starttls = find(&steps, "250 STARTTLS");
        assert_eq!(starttls.len(), 1);
        let s = starttls[0];
        assert_eq!(
            (s.k, s.d, s.b.as_deref(), s.g),
            (
                Kind::ServerHeld,
                Some(Change::Removed),
                Some("strip-starttls"),
                Some(1)
            )
        );
        // Both versions of the rewritten reply, the unchanged lines kept
        // (a moved continuation mark is no change).
        let kinds: Vec<(Kind, Option<Change>)> = steps
            .iter()
            .filter(|s| s.g == Some(1))
            .map(|s| (s.k, s.d))
            .collect();
        assert_eq!(
            kinds,
            [
                (Kind::ServerHeld, Some(Change::Kept)),
                (Kind::ServerHeld, Some(Change::Kept)),
                (Kind::ServerHeld, Some(Change::Removed)),
                (Kind::ToClient, Some(Change::Kept)),
                (Kind::ToClient, Some(Change::Kept)),
            ]
        );
        assert_eq!(find(&steps, "DATA")[0].f, Some(Exposure::PlaintextData));
        assert_eq!(
            find(&steps, "Subject: x")[0].f,
            Some(Exposure::PlaintextContent)
        );
        assert_eq!(find(&steps, ".")[0].f, Some(Exposure::PlaintextContent));
        // The message ends at its dot.
        assert_eq!(find(&steps, "250 2.0.0 Ok")[0].f, None);
        assert_eq!(find(&steps, "QUIT")[0].f, None);
        assert!(steps.iter().all(|s| s.p == Phase::Plain));
    }

    #[test]
    fn a_masked_line_is_removed_and_its_replacement_added() {
        use Dir::*;
        let masked = "mask-starttls: masked STARTTLS";
        let steps = ladder(&record(&[
            (ServerHeld, "250-x", None),
            (ServerHeld, "250 STARTTLS", None),
            (ToClient, "250-x", Some(masked)),
            (ToClient, "250 XXXXXXXA", Some(masked)),
        ]));
        let changes: Vec<Option<Change>> = steps.iter().map(|s| s.d).collect();
        assert_eq!(
            changes,
            [
                Some(Change::Kept),
                Some(Change::Removed),
                Some(Change::Kept),
                Some(Change::Added)
            ]
        );
        assert!(
            steps
                .iter()
                .all(|s| s.b.as_deref() == Some("mask-starttls"))
        );
    }

    #[test]
    fn held_and_injected_lines_name_their_behaviour() {
        use Dir::*;
        let steps = ladder(&record(&[
            (
                ClientHeld,
                "STARTTLS",
                Some("reject-starttls: not forwarded, answered by the middlebox"),
            ),
            (
                ToClient,
                "454 4.7.0 TLS not available",
                Some("reject-starttls: answer"),
            ),
            (
                ToServer,
                "MAIL FROM:<injected@x>",
                Some("inject: sent in the same packet"),
            ),
        ]));
        let got: Vec<(Kind, Option<Change>, Option<&str>)> =
            steps.iter().map(|s| (s.k, s.d, s.b.as_deref())).collect();
        assert_eq!(
            got,
            [
                (
                    Kind::ClientHeld,
                    Some(Change::Held),
                    Some("reject-starttls")
                ),
                (Kind::ToClient, Some(Change::Added), Some("reject-starttls")),
                (Kind::ToServer, Some(Change::Added), Some("inject")),
            ]
        );
    }

    #[test]
    fn tls_and_interception_change_the_phase() {
        use Dir::*;
        let began = format!("{TLS_BEGAN}from here ciphertext");
        let steps = ladder(&record(&[
            (Client, "STARTTLS", None),
            (Server, "220 go", None),
            (Note, &began, None),
        ]));
        assert_eq!(steps[2].k, Kind::TlsBegan);
        assert_eq!(steps[2].p, Phase::Tls);
        assert_eq!(steps[1].p, Phase::Plain);

        let intercepted = format!("{INTERCEPTED}(TLSv1_3), plaintext with the relay; ...");
        let mut r = record(&[
            (Note, &intercepted, None),
            (Client, "AUTH PLAIN x", None),
            (Client, "DATA", None),
            (Server, "354 go", None),
            (Client, "secret", None),
        ]);
        let steps = ladder(&r);
        assert_eq!(steps[0].k, Kind::Intercepted);
        assert_eq!(steps[0].b.as_deref(), Some("intercept-tls"));
        assert!(steps.iter().all(|s| s.p == Phase::InterceptedPlain));
        // AUTH inside TLS is no plaintext credential, but the middlebox
        // reads the message.
        assert_eq!(steps[1].f, None);
        assert_eq!(steps[2].f, Some(Exposure::ReadData));
        assert_eq!(steps[4].f, Some(Exposure::ReadContent));
        r.intercept_relay_tls = true;
        assert!(ladder(&r).iter().all(|s| s.p == Phase::InterceptedTls));
    }

    #[test]
    fn notes_name_behaviours_only_by_their_names() {
        assert_eq!(
            behaviours_of("strip-starttls: removed STARTTLS; inject: sent").as_deref(),
            Some("strip-starttls inject")
        );
        assert_eq!(
            behaviours_of("fail-handshake").as_deref(),
            Some("fail-handshake")
        );
        assert_eq!(behaviours_of("as the relay sent it"), None);
        assert_eq!(behaviours_of("TLS began: from here"), None);
    }
}
