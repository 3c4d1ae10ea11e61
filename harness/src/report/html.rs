//! The HTML report: one self-contained page (inline style and script,
//! nothing fetched; a Content-Security-Policy says so to the browser) with
//! the matrix, or check's verdict table, and a ladder diagram of every
//! attempt of every case.
//!
//! The page carries its data as one JSON blob and its script draws a
//! ladder when its case is opened (a cell clicked, or the address's
//! `#scenario/level`): drawn in advance, the ladders of the built-in suite
//! would be several times the size of the data they are drawn from. What a
//! ladder shows is decided here, in [`ladder`]; the script only lays it out.

use std::io;
use std::path::Path;

use serde::Serialize;

use super::matrix::{attempt_cell, attempt_summary};
use crate::check::{CheckReport, Comparison, Row, compare_sides, parameter_diff};
use crate::middlebox::{
    CLOSED, CONTENT, ConnectionRecord, Dir, Entry, INTERCEPTED, NAMES, TLS_BEGAN, TLS_ENDED,
};
use crate::outcome::{Outcome, Trust};
use crate::run::{Attempt, CaseResult, RunReport, findings};

const STYLE: &str = include_str!("html/page.css");
const SCRIPT: &str = include_str!("html/page.js");

/// What the page's script renders.
#[derive(Serialize)]
struct Page {
    /// `run` or `check`.
    kind: &'static str,
    title: String,
    /// Facts about the run, one line each.
    facts: Vec<String>,
    /// `run`: one matrix per image (and repetition).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tables: Vec<Table>,
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<CheckPage>,
    cases: Vec<CaseView>,
}

/// Scenarios down, levels across.
#[derive(Serialize)]
struct Table {
    title: String,
    levels: Vec<String>,
    /// Per scenario: its id, its name and, per level, the case's index in
    /// `cases`.
    rows: Vec<(String, String, Vec<Option<usize>>)>,
}

/// One case (run) or one side of one path (check).
#[derive(Serialize)]
struct CaseView {
    /// The address fragment that opens it.
    key: String,
    title: String,
    scenario: String,
    name: String,
    level: String,
    /// The MTA's name (`Postfix`, `Exim`), for the ladder's lane and labels.
    mta: &'static str,
    image: String,
    version: String,
    /// The outcome class the cell is coloured by.
    cat: &'static str,
    /// A middlebox read the message inside TLS it terminated.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    intercepted: bool,
    cell: String,
    dsn: String,
    /// `pass`, `fail` (an expectation failed), `error` (no verdict) or
    /// `none` (check: nothing was expected of the user's configuration).
    mark: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
    expected: Vec<String>,
    relay: String,
    behaviours: Vec<String>,
    findings: Vec<&'static str>,
    attempts: Vec<AttemptView>,
    /// The case's MTA log, when no attempt has its own lines.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    log: Vec<String>,
}

#[derive(Serialize)]
struct AttemptView {
    cat: &'static str,
    cell: String,
    summary: String,
    log: Vec<String>,
    conns: Vec<ConnView>,
}

/// One connection through the middlebox.
#[derive(Serialize)]
struct ConnView {
    /// `peer -> middlebox address`.
    label: String,
    /// When it began, in milliseconds after the attempt's first connection.
    at: u64,
    end: String,
    steps: Vec<Step>,
    /// Transcript entries not kept (a transcript has a limit).
    #[serde(skip_serializing_if = "is_zero")]
    dropped: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One line of a ladder: an arrow, or a note across the lanes. Keys are
/// short because there are thousands of these in a suite's report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
struct Step {
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
enum Kind {
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
enum Change {
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
enum Exposure {
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
enum Phase {
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
fn ladder(record: &ConnectionRecord) -> Vec<Step> {
    let entries = &record.transcript.entries;
    let mut steps = Vec::with_capacity(entries.len());
    let mut phase = Phase::Plain;
    // DATA sent and its 354 not yet seen; then the message itself.
    let (mut data_sent, mut in_content) = (false, false);
    let mut groups = 0u32;
    let mut i = 0;
    while i < entries.len() {
        let e = &entries[i];
        match e.dir {
            Dir::ServerHeld => {
                // A reply the middlebox rewrote: the relay's lines, then
                // what Postfix got instead (the lines with one note).
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
                groups += 1;
                for (n, e) in entries[i..got_end].iter().enumerate() {
                    let (kind, kept) = if n < sent.len() {
                        (Kind::ServerHeld, kept_sent[n])
                    } else {
                        (Kind::ToClient, kept_got[n - sent.len()])
                    };
                    let mut s = step(e, kind, phase);
                    s.b = by.clone();
                    s.g = Some(groups);
                    s.d = Some(match (kind, kept) {
                        (_, true) => Change::Kept,
                        (Kind::ServerHeld, false) => Change::Removed,
                        _ => Change::Added,
                    });
                    steps.push(s);
                }
                if entries[sent_end..got_end]
                    .iter()
                    .any(|e| is_reply_to_data(&e.text))
                    && data_sent
                {
                    in_content = true;
                }
                data_sent = false;
                i = got_end;
                continue;
            }
            Dir::Client => {
                let mut s = step(e, Kind::Client, phase);
                if in_content {
                    s.f = Some(if phase.intercepted() {
                        Exposure::ReadContent
                    } else {
                        Exposure::PlaintextContent
                    });
                    if e.text == "." {
                        in_content = false;
                    }
                } else {
                    let verb = e.text.split_whitespace().next().unwrap_or("");
                    if verb.eq_ignore_ascii_case("DATA") {
                        data_sent = true;
                        s.f = Some(if phase.intercepted() {
                            Exposure::ReadData
                        } else {
                            Exposure::PlaintextData
                        });
                    } else if verb.eq_ignore_ascii_case("AUTH") && phase == Phase::Plain {
                        s.f = Some(Exposure::PlaintextAuth);
                    }
                }
                steps.push(s);
            }
            Dir::Server | Dir::ToClient => {
                let kind = if e.dir == Dir::Server {
                    Kind::Server
                } else {
                    Kind::ToClient
                };
                let mut s = step(e, kind, phase);
                if kind == Kind::ToClient {
                    s.b = e.note.as_deref().and_then(behaviours_of);
                    s.d = Some(Change::Added);
                }
                if data_sent && is_reply_to_data(&e.text) {
                    in_content = true;
                }
                data_sent = false;
                steps.push(s);
            }
            Dir::ClientHeld | Dir::ToServer => {
                let (kind, change) = if e.dir == Dir::ClientHeld {
                    (Kind::ClientHeld, Change::Held)
                } else {
                    (Kind::ToServer, Change::Added)
                };
                let mut s = step(e, kind, phase);
                s.b = e.note.as_deref().and_then(behaviours_of);
                s.d = Some(change);
                steps.push(s);
            }
            Dir::Note => {
                let text = e.text.as_str();
                let kind = if text.starts_with(TLS_BEGAN) {
                    phase = Phase::Tls;
                    Kind::TlsBegan
                } else if text.starts_with(TLS_ENDED) {
                    Kind::TlsEnded
                } else if text.starts_with(INTERCEPTED) {
                    phase = if record.intercept_relay_tls {
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
                let mut s = step(e, kind, phase);
                s.b = behaviours_of(text);
                if text.starts_with(CONTENT) {
                    s.f = Some(if phase.intercepted() {
                        Exposure::ReadContent
                    } else {
                        Exposure::PlaintextContent
                    });
                }
                steps.push(s);
            }
        }
        i += 1;
    }
    steps
}

fn conn_view(r: &ConnectionRecord, first_ms: u64) -> ConnView {
    let show = |a: Option<std::net::SocketAddr>| a.map_or("?".to_owned(), |a| a.to_string());
    ConnView {
        label: format!("{} -> {}", show(r.peer), show(r.local)),
        at: r.started_ms.saturating_sub(first_ms),
        end: r.end.clone(),
        steps: ladder(r),
        dropped: r.transcript.dropped,
    }
}

/// The outcome class a cell is coloured by (the page's script has a
/// legend entry for each; a test checks).
fn category(a: Option<&Attempt>) -> &'static str {
    let Some(a) = a else { return "error" };
    match a.outcome {
        Some(Outcome::DeliveredTls) => match a.tls.as_ref().map(|t| t.trust) {
            Some(Trust::Verified) => "tls-verified",
            Some(Trust::Trusted) => "tls-trusted",
            _ => "tls-untrusted",
        },
        Some(Outcome::DeliveredPlaintext) if a.wire.plaintext_auth => "plaintext-credentials",
        Some(Outcome::DeliveredPlaintext) => "plaintext",
        Some(Outcome::Deferred) => "deferred",
        Some(Outcome::Bounced) => "bounced",
        None => "error",
    }
}

fn attempt_view(a: &Attempt) -> AttemptView {
    let first_ms = a
        .connections
        .iter()
        .map(|r| r.started_ms)
        .min()
        .unwrap_or(0);
    AttemptView {
        cat: category(Some(a)),
        cell: attempt_cell(a),
        summary: attempt_summary(a),
        log: a.log.clone(),
        conns: a
            .connections
            .iter()
            .map(|r| conn_view(r, first_ms))
            .collect(),
    }
}

/// The attempts' views, and the case's log when no attempt has its own
/// lines (an attempt that timed out, say).
fn attempt_views(attempts: &[Attempt], log: &[String]) -> (Vec<AttemptView>, Vec<String>) {
    let views: Vec<AttemptView> = attempts.iter().map(attempt_view).collect();
    let own = views.iter().any(|a| !a.log.is_empty());
    (views, if own { Vec::new() } else { log.to_vec() })
}

fn case_view(c: &CaseResult, key: String) -> CaseView {
    let (attempts, log) = attempt_views(&c.attempts, &c.log);
    let cat = if c.is_error() {
        "error"
    } else {
        category(c.attempts.last())
    };
    let cells: Vec<String> = c.attempts.iter().map(attempt_cell).collect();
    CaseView {
        title: format!("{}/{}", c.scenario, c.level),
        scenario: c.scenario.clone(),
        name: c.name.clone(),
        level: c.level.as_str().to_owned(),
        mta: c.mta.title(),
        image: c.image.clone(),
        version: c.postfix_version.clone(),
        cat,
        intercepted: c.attempts.iter().any(|a| a.wire.intercepted),
        cell: if cells.is_empty() {
            "error".into()
        } else {
            cells.join(" → ")
        },
        dsn: c.attempts.last().map_or(String::new(), |a| a.dsn.clone()),
        mark: if c.is_error() {
            "error"
        } else if c.is_inconclusive() {
            "inconclusive"
        } else if c.passed {
            "pass"
        } else {
            "fail"
        },
        failure: c.inconclusive.clone().or_else(|| c.failure.clone()),
        expected: c.expected.attempts.iter().map(|a| a.to_string()).collect(),
        relay: c.relay.clone(),
        behaviours: c.behaviours.clone(),
        findings: findings(&c.attempts)
            .into_iter()
            .map(|f| f.describe())
            .collect(),
        attempts,
        log,
        key,
    }
}

/// The fragment that opens a case: `scenario/level`, then `@image` when
/// the run has several, then `~K` for repetition K of several.
fn case_key(c: &CaseResult, several_images: bool, repetition: Option<usize>) -> String {
    let mut key = format!("{}/{}", c.scenario, c.level);
    if several_images {
        key.push('@');
        key.push_str(&c.image);
    }
    if let Some(k) = repetition {
        key.push_str(&format!("~{k}"));
    }
    key
}

fn run_page(reports: &[RunReport]) -> Page {
    let several = reports.len() > 1;
    let mut tables = Vec::new();
    let mut cases = Vec::new();
    let mut facts = Vec::new();
    for (k, report) in reports.iter().enumerate() {
        let repetition = several.then_some(k + 1);
        let mut images: Vec<&str> = Vec::new();
        for c in &report.cases {
            if !images.contains(&c.image.as_str()) {
                images.push(&c.image);
            }
        }
        for image in &images {
            let of_image: Vec<&CaseResult> =
                report.cases.iter().filter(|c| c.image == *image).collect();
            let mut levels: Vec<crate::policy::Policy> = of_image.iter().map(|c| c.level).collect();
            levels.sort();
            levels.dedup();
            let mut rows: Vec<(String, String, Vec<Option<usize>>)> = Vec::new();
            for c in &of_image {
                if !rows.iter().any(|(s, _, _)| *s == c.scenario) {
                    rows.push((c.scenario.clone(), c.name.clone(), vec![None; levels.len()]));
                }
                let row = rows
                    .iter_mut()
                    .find(|(s, _, _)| *s == c.scenario)
                    .expect("row pushed");
                let col = levels
                    .iter()
                    .position(|l| *l == c.level)
                    .expect("level listed");
                row.2[col] = Some(cases.len());
                cases.push(case_view(c, case_key(c, images.len() > 1, repetition)));
            }
            let version = of_image.first().map_or("", |c| c.postfix_version.as_str());
            let mut title = format!("{} {version} ({image})", report.mta.title());
            if let Some(k) = repetition {
                title = format!("repetition {k}: {title}");
            }
            tables.push(Table {
                title,
                levels: levels.iter().map(|l| l.as_str().to_owned()).collect(),
                rows,
            });
        }
        let failed = report.cases.iter().filter(|c| c.is_failure()).count();
        let passed = report.cases.iter().filter(|c| c.passed).count();
        let mut fact = format!(
            "run {}: {} cases, {} passed, {} failed, {} without a verdict, {} inconclusive; {} ready in {:.1}s, run took {:.1}s",
            report.run_id,
            report.cases.len(),
            passed,
            failed,
            report.errors(),
            report.inconclusive(),
            report.mta.title(),
            report.startup_ms as f64 / 1000.0,
            report.total_ms as f64 / 1000.0,
        );
        if let Some(k) = repetition {
            fact = format!("repetition {k}: {fact}");
        }
        facts.push(fact);
    }
    let passed = reports.iter().all(RunReport::passed);
    Page {
        kind: "run",
        title: format!(
            "tlsharness run: {}",
            if passed {
                "every case as expected"
            } else {
                "some cases not as expected"
            }
        ),
        facts,
        tables,
        check: None,
        cases,
    }
}

/// check's part of the page.
#[derive(Serialize)]
struct CheckPage {
    /// Per side, the configuration and what Postfix makes of it.
    sources: Vec<(String, String)>,
    /// What the candidate changes, one line each.
    diff: Vec<String>,
    /// What the harness changed to run each side, per side.
    changes: Vec<(String, Vec<String>)>,
    with_candidate: bool,
    images: Vec<CheckTable>,
}

#[derive(Serialize)]
struct CheckTable {
    image: String,
    version: String,
    rows: Vec<CheckRow>,
}

#[derive(Serialize)]
struct CheckRow {
    /// The fragment that opens both sides' ladders.
    key: String,
    scenario: String,
    current: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidate: Option<usize>,
    /// As the terminal report writes it (`DOWNGRADE`, `same`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<String>,
    /// The verdict as a class name (`downgrade`, `same`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    vclass: Option<String>,
    /// It fails the gate unless allowed.
    gates: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<String>,
}

fn row_view(r: &Row, key: String) -> CaseView {
    let a = &r.attempt;
    let (attempts, log) = attempt_views(std::slice::from_ref(a), &r.log);
    let mut cell = match r.not_modelled {
        Some(_) => format!("not modelled (port {})", r.port),
        None => attempt_cell(a),
    };
    if r.findings
        .contains(&crate::run::Finding::PlaintextCredentials)
        && !cell.contains("CREDENTIALS")
    {
        cell.push_str(" +CREDENTIALS");
    }
    let level = r
        .tls_policy
        .as_ref()
        .map_or(r.level.clone(), |p| p.level.clone());
    CaseView {
        title: format!("{} ({}, TLS level {})", r.name(), r.side, level),
        scenario: r.name(),
        name: r.side.clone(),
        level,
        // `check` compares Postfix configurations.
        mta: crate::policy::Mta::Postfix.title(),
        image: r.image.clone(),
        version: r.postfix_version.clone(),
        cat: if r.not_modelled.is_some() {
            "not-modelled"
        } else {
            category(Some(a))
        },
        intercepted: a.wire.intercepted,
        cell,
        dsn: a.dsn.clone(),
        mark: if a.outcome.is_none() && r.not_modelled.is_none() {
            "error"
        } else {
            "none"
        },
        failure: r.not_modelled.clone(),
        expected: r.expected.iter().map(|e| e.to_string()).collect(),
        relay: a.relay.clone(),
        behaviours: r.behaviours.clone(),
        findings: r.findings.iter().map(|f| f.describe()).collect(),
        attempts,
        log,
        key,
    }
}

fn check_page(report: &CheckReport, sources: &[(String, String)]) -> Page {
    let comparisons = compare_sides(report);
    let mut images: Vec<&str> = Vec::new();
    for c in &comparisons {
        if !images.contains(&c.image.as_str()) {
            images.push(&c.image);
        }
    }
    let several = images.len() > 1;
    let mut cases = Vec::new();
    let mut tables = Vec::new();
    for image in &images {
        let of_image: Vec<&Comparison> = comparisons.iter().filter(|c| c.image == *image).collect();
        let mut rows = Vec::new();
        for c in of_image.iter() {
            let key = if several {
                format!("{}@{}", c.current.name(), c.image)
            } else {
                c.current.name()
            };
            let current = cases.len();
            cases.push(row_view(&c.current, format!("current/{key}")));
            let candidate = c.candidate.as_ref().map(|r| {
                cases.push(row_view(r, format!("candidate/{key}")));
                cases.len() - 1
            });
            rows.push(CheckRow {
                key,
                scenario: c.current.name(),
                current,
                candidate,
                verdict: c.verdict.map(|v| v.to_string()),
                vclass: c.verdict.map(|v| {
                    serde_json::to_value(v)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                }),
                gates: c.verdict.is_some_and(|v| v.gates()),
                why: c.why.clone(),
            });
        }
        tables.push(CheckTable {
            image: image.to_string(),
            version: of_image
                .first()
                .map_or(String::new(), |c| c.current.postfix_version.clone()),
            rows,
        });
    }
    let diff = match report.parameters.as_slice() {
        [(_, current), (_, candidate)] => parameter_diff(current, candidate)
            .into_iter()
            .chain(report.file_changes.iter().cloned())
            .collect(),
        _ => Vec::new(),
    };
    let with_candidate = comparisons.iter().any(|c| c.candidate.is_some());
    let gating = comparisons
        .iter()
        .filter(|c| c.verdict.is_some_and(|v| v.gates()))
        .count();
    let mut facts = vec![format!(
        "check {}: {} path(s) on {} image(s), {} not modelled",
        report.run_id,
        comparisons.len(),
        images.len(),
        comparisons
            .iter()
            .filter(|c| c.verdict == Some(crate::check::Verdict::NotModelled))
            .count()
    )];
    facts.extend(
        report
            .warnings
            .iter()
            .map(|w| format!("{} on {}: Postfix warns: {}", w.side, w.image, w.words)),
    );
    Page {
        kind: "check",
        title: if Comparison::none_changed(&comparisons) {
            format!("tlsharness check: {}", Comparison::NO_PATH_CHANGES)
        } else if with_candidate {
            format!(
                "tlsharness check: {gating} path(s) downgraded, bounced or stopped by the candidate"
            )
        } else {
            "tlsharness check".to_owned()
        },
        facts,
        tables: Vec::new(),
        check: Some(CheckPage {
            sources: sources.to_vec(),
            diff,
            changes: report.changes.clone(),
            with_candidate,
            images: tables,
        }),
        cases,
    }
}

/// The page around its data. `<` is escaped inside the JSON so that no
/// string in it can end the script element.
fn page(data: &Page) -> String {
    let json = serde_json::to_string(data)
        .expect("the report's data serialises")
        .replace('<', "\\u003c");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>tlsharness report</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <noscript>This report draws its matrix and ladders with its inline script; the JSON report (--json) holds the same results.</noscript>\n\
         <div id=\"errors\" hidden></div>\n<div id=\"app\"></div>\n\
         <script type=\"application/json\" id=\"data\">{json}</script>\n\
         <script>\n{SCRIPT}</script>\n</body>\n</html>\n"
    )
}

/// One run's HTML report.
pub fn html(report: &RunReport) -> String {
    html_runs(std::slice::from_ref(report))
}

/// The HTML report of every run of `run --repeat`: one matrix per run.
pub fn html_runs(reports: &[RunReport]) -> String {
    page(&run_page(reports))
}

/// check's HTML report: the verdict table, and both sides' ladders of
/// every path. `sources` names each side's configuration, as the terminal
/// report does.
pub fn check_html(report: &CheckReport, sources: &[(String, String)]) -> String {
    page(&check_page(report, sources))
}

/// Writes one run's HTML report.
pub fn write_html(report: &RunReport, path: &Path) -> io::Result<()> {
    write_html_runs(std::slice::from_ref(report), path)
}

/// Writes the HTML report of every run of `run --repeat`.
pub fn write_html_runs(reports: &[RunReport], path: &Path) -> io::Result<()> {
    if reports.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no run to report",
        ));
    }
    std::fs::write(path, html_runs(reports))
}

/// Writes check's HTML report.
pub fn write_check_html(
    report: &CheckReport,
    sources: &[(String, String)],
    path: &Path,
) -> io::Result<()> {
    std::fs::write(path, check_html(report, sources))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middlebox::Transcript;
    use crate::run::Wire;

    /// A connection whose transcript is `lines`: (direction, text, note).
    fn record(lines: &[(Dir, &str, Option<&str>)]) -> ConnectionRecord {
        let mut transcript = Transcript::new();
        for (dir, text, note) in lines {
            transcript.push(*dir, text.as_bytes(), note.map(str::to_owned));
        }
        ConnectionRecord {
            transcript,
            ..Default::default()
        }
    }

    const STRIPPED: &str = "strip-starttls: removed STARTTLS from the EHLO reply";

    /// The incident: the relay's STARTTLS removed, the message in plaintext.
    fn incident() -> ConnectionRecord {
        use Dir::*;
        record(&[
            (
                Note,
                "connection from a to b; behaviours: strip-starttls",
                None,
            ),
            (Server, "220 smtp.sendgrid.net ESMTP", None),
            (Client, "EHLO postfix.tlsharness.test", None),
            (
                ServerHeld,
                "250-server offers extensions:",
                Some("as the relay sent it"),
            ),
            (ServerHeld, "250-8BITMIME", Some("as the relay sent it")),
            (ServerHeld, "250 STARTTLS", Some("as the relay sent it")),
            (ToClient, "250-server offers extensions:", Some(STRIPPED)),
            (ToClient, "250 8BITMIME", Some(STRIPPED)),
            (Client, "MAIL FROM:<a@b>", None),
            (Server, "250 OK", None),
            (Client, "DATA", None),
            (Server, "354 go ahead", None),
            (Client, "Subject: x", None),
            (Client, ".", None),
            (Server, "250 2.0.0 Ok", None),
            (Client, "QUIT", None),
        ])
    }

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

    /// Every outcome class a cell can have.
    const CATEGORIES: [&str; 8] = [
        "tls-verified",
        "tls-trusted",
        "tls-untrusted",
        "plaintext",
        "plaintext-credentials",
        "deferred",
        "bounced",
        "error",
    ];

    #[test]
    fn every_outcome_class_is_in_the_legend() {
        let mut a = attempt(None, Vec::new());
        let mut seen = vec![category(None), category(Some(&a))];
        for outcome in Outcome::ALL {
            a.outcome = Some(outcome);
            seen.push(category(Some(&a)));
            a.wire.plaintext_auth = true;
            seen.push(category(Some(&a)));
            a.wire.plaintext_auth = false;
            for trust in Trust::ALL {
                a.tls = Some(crate::mta::log::TlsSession {
                    trust,
                    host: String::new(),
                    addr: String::new(),
                    port: 0,
                    protocol: String::new(),
                    cipher: String::new(),
                });
                seen.push(category(Some(&a)));
            }
            a.tls = None;
        }
        seen.sort_unstable();
        seen.dedup();
        let mut all = CATEGORIES.to_vec();
        all.sort_unstable();
        assert_eq!(seen, all);
        for c in CATEGORIES {
            assert!(
                SCRIPT.contains(&format!("['{c}', ")),
                "{c} has no legend entry"
            );
        }
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

    fn attempt(outcome: Option<Outcome>, connections: Vec<ConnectionRecord>) -> Attempt {
        let mut a = Attempt::failed(String::new(), Wire::default());
        a.outcome = outcome;
        a.error = None;
        a.dsn = "2.0.0".into();
        a.connections = connections;
        a.log = vec!["postfix/smtp[1]: ABC: to=<x>, status=sent (250 ok)".into()];
        a
    }

    fn row(side: &str, attempt: Attempt) -> Row {
        Row {
            mail: None,
            route: "smtp:[smtp.sendgrid.net]:587".to_owned(),
            scenario: "incident-587-strip".to_owned(),
            side: side.to_owned(),
            image: "tlsharness/postfix:bookworm".to_owned(),
            postfix_version: "3.7.11".to_owned(),
            level: "may".to_owned(),
            tls_policy: None,
            dropped_settings: Vec::new(),
            refused: None,
            port: 587,
            not_modelled: None,
            findings: Vec::new(),
            attempt,
            expected: None,
            log: Vec::new(),
            transcript: String::new(),
            behaviours: vec!["strip-starttls".to_owned()],
        }
    }

    #[test]
    fn check_pages_pair_both_sides_of_each_path_with_their_verdict() {
        let mut deferred = attempt(Some(Outcome::Deferred), vec![incident()]);
        deferred.dsn = "4.7.4".into();
        let report = CheckReport {
            run_id: "r".to_owned(),
            rows: vec![
                row("current", deferred),
                row(
                    "candidate",
                    attempt(Some(Outcome::DeliveredPlaintext), vec![incident()]),
                ),
            ],
            changes: Vec::new(),
            parameters: Vec::new(),
            file_changes: Vec::new(),
            warnings: Vec::new(),
        };
        let page = serde_json::to_value(check_page(&report, &[])).unwrap();
        let r = &page["check"]["images"][0]["rows"][0];
        assert_eq!(r["key"], "incident-587-strip");
        assert_eq!(r["vclass"], "downgrade");
        assert_eq!(r["verdict"], "DOWNGRADE");
        assert_eq!(r["gates"], true);
        let side = |i: &serde_json::Value| &page["cases"][i.as_u64().unwrap() as usize];
        assert_eq!(side(&r["current"])["key"], "current/incident-587-strip");
        assert_eq!(side(&r["current"])["cat"], "deferred");
        let candidate = side(&r["candidate"]);
        assert_eq!(candidate["key"], "candidate/incident-587-strip");
        assert_eq!(candidate["cat"], "plaintext");
        let steps = &candidate["attempts"][0]["conns"][0]["steps"];
        assert!(
            steps
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["x"] == "250 STARTTLS"
                    && s["d"] == "removed"
                    && s["b"] == "strip-starttls"),
            "{steps}"
        );
        assert_eq!(candidate["attempts"][0]["log"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_candidate_that_changes_no_path_says_so_in_the_title_with_postfix_s_warnings() {
        let delivered = || attempt(Some(Outcome::DeliveredTls), vec![]);
        let mut report = CheckReport {
            run_id: "r".to_owned(),
            rows: vec![row("current", delivered()), row("candidate", delivered())],
            changes: Vec::new(),
            parameters: Vec::new(),
            file_changes: Vec::new(),
            warnings: vec![crate::check::PostfixWarning {
                side: "candidate".into(),
                image: "tlsharness/postfix:trixie".into(),
                words: "/etc/postfix/main.cf: support for parameter \"smtp_enforce_tls\" will be removed; instead, specify \"smtp_tls_security_level\"".into(),
            }],
        };
        let page = serde_json::to_value(check_page(&report, &[])).unwrap();
        assert_eq!(
            page["title"],
            "tlsharness check: no path changes: the candidate gives the same outcome as the current configuration on every path and image."
        );
        assert_eq!(
            page["facts"][1],
            "candidate on tlsharness/postfix:trixie: Postfix warns: /etc/postfix/main.cf: support for parameter \"smtp_enforce_tls\" will be removed; instead, specify \"smtp_tls_security_level\""
        );
        // Without a candidate there is nothing to have changed.
        report.rows.pop();
        let page = serde_json::to_value(check_page(&report, &[])).unwrap();
        assert_eq!(page["title"], "tlsharness check");
    }

    #[test]
    fn a_path_not_modelled_on_one_side_is_grey_and_does_not_gate() {
        let mut unstated = row(
            "candidate",
            Attempt::failed("not modelled".into(), Wire::default()),
        );
        unstated.port = 465;
        unstated.not_modelled = Some("the scenario does not say what happens on port 465".into());
        let report = CheckReport {
            run_id: "r".to_owned(),
            rows: vec![
                row("current", attempt(Some(Outcome::DeliveredTls), vec![])),
                unstated,
            ],
            changes: Vec::new(),
            parameters: Vec::new(),
            file_changes: Vec::new(),
            warnings: Vec::new(),
        };
        let page = serde_json::to_value(check_page(&report, &[])).unwrap();
        let r = &page["check"]["images"][0]["rows"][0];
        assert_eq!(r["vclass"], "not-modelled");
        assert_eq!(r["verdict"], "not-modelled");
        assert_eq!(r["gates"], false);
        let candidate = &page["cases"][r["candidate"].as_u64().unwrap() as usize];
        assert_eq!(candidate["cat"], "not-modelled");
        assert_eq!(candidate["cell"], "not modelled (port 465)");
        assert_eq!(candidate["mark"], "none");
        assert!(
            page["facts"][0]
                .as_str()
                .unwrap()
                .ends_with(", 1 not modelled"),
            "{}",
            page["facts"]
        );
        // The legend knows the class.
        assert!(SCRIPT.contains("['not-modelled',"));
    }

    #[test]
    fn the_page_fetches_nothing_and_its_data_cannot_end_its_script() {
        let mut a = attempt(Some(Outcome::DeliveredPlaintext), vec![incident()]);
        a.log = vec!["</script><script>alert(1)</script>".into()];
        let report = CheckReport {
            run_id: "r".to_owned(),
            rows: vec![row("current", a)],
            changes: Vec::new(),
            parameters: Vec::new(),
            file_changes: Vec::new(),
            warnings: Vec::new(),
        };
        let html = check_html(&report, &[]);
        assert_eq!(html.matches("</script>").count(), 2, "{html}");
        assert!(html.contains("\\u003c/script>\\u003cscript>alert(1)"));
        // Nothing in the page's own style or script names anything to load;
        // its policy would refuse it anyway.
        for needle in ["url(", "@import", "http:", "https:", "//"] {
            assert!(!STYLE.contains(needle), "style has {needle}");
        }
        for needle in [
            "http:",
            "https:",
            "fetch(",
            "XMLHttpRequest",
            "import(",
            "src",
        ] {
            assert!(!SCRIPT.contains(needle), "script has {needle}");
        }
        assert!(html.contains("default-src 'none'"));
    }
}
