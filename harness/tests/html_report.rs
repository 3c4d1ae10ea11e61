//! The HTML report in a real browser: Debian's headless Chromium (which
//! ci/test.sh installs) loads the page from disk as a reader would, and
//! the test reads the DOM the page's script built (`--dump-dom`) and
//! what Chromium logged. The command line is enough: the page writes any
//! script error into its own DOM (`data-errors`), Chromium prints every
//! console message on stderr (`CONSOLE`), and a ladder opens from the
//! address (`#scenario/level`), so no DevTools client is needed.
//!
//! The screenshot of the incident's ladder is kept under the target
//! directory; `TLSHARNESS_UPDATE_SCREENSHOT=1` also copies it to
//! docs/incident-ladder.png, the picture the README shows.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{root, tlsharness};
use scraper::{ElementRef, Html, Selector};
use tlsharness::exit;

/// Where this test keeps what it made: the reports, the DOM, the picture.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html_report");
    std::fs::create_dir_all(&dir).expect("the artifact directory can be made");
    dir
}

/// The longest Chromium may take to load and draw one page.
const BROWSER_DEADLINE: Duration = Duration::from_secs(60);

/// Runs headless Chromium on `url` with `args`, in a profile of its own
/// that is thrown away, with everything that would reach the network
/// switched off (this machine has none).
async fn chromium(args: &[String], url: &str) -> Output {
    let profile = tempfile::tempdir().expect("a profile directory");
    let mut cmd = tokio::process::Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .arg(url)
    .kill_on_drop(true);
    let out = match tokio::time::timeout(BROWSER_DEADLINE, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!(
            "failed to run chromium ({e}); install Debian's chromium (ci/test.sh does: apt-get install chromium)"
        ),
        Err(_) => panic!(
            "chromium did not finish {url} within {}s",
            BROWSER_DEADLINE.as_secs()
        ),
    };
    assert!(
        out.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `tlsharness ARGS --html REPORT` and checks its exit code.
fn write_html(args: &[&str], report: &Path, code: i32) {
    let out = tlsharness()
        .args(args)
        .arg("--html")
        .arg(report)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn file_url(path: &Path, fragment: &str) -> String {
    format!("file://{}#{fragment}", path.display())
}

/// The DOM after the page's script ran, with the console's lines; fails
/// on any script error or console message.
async fn rendered(path: &Path, fragment: &str, keep_as: &str) -> Html {
    let out = chromium(
        &[
            "--dump-dom".into(),
            "--enable-logging=stderr".into(),
            "--v=0".into(),
        ],
        &file_url(path, fragment),
    )
    .await;
    let dom = String::from_utf8(out.stdout).expect("the DOM is UTF-8");
    std::fs::write(artifacts().join(keep_as), &dom).expect("the DOM is kept");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "the page wrote to the console:\n{}",
        console.join("\n")
    );
    let html = Html::parse_document(&dom);
    let page = one(&html, "html");
    assert_eq!(
        page.attr("data-ready"),
        Some("1"),
        "the page's script did not finish"
    );
    let errors: Vec<String> = html
        .select(&sel("#errors div"))
        .map(|e| e.text().collect())
        .collect();
    assert_eq!(page.attr("data-errors"), Some("0"), "{errors:#?}");
    html
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).expect("a valid selector")
}

fn one<'a>(html: &'a Html, s: &str) -> ElementRef<'a> {
    let selector = sel(s);
    let mut found = html.select(&selector);
    let first = found
        .next()
        .unwrap_or_else(|| panic!("nothing matches {s}"));
    assert!(found.next().is_none(), "more than one element matches {s}");
    first
}

fn text(e: ElementRef<'_>) -> String {
    e.text().collect()
}

/// The ladder's line whose arrow reads `line`.
fn step<'a>(scope: ElementRef<'a>, line: &str) -> Vec<ElementRef<'a>> {
    scope
        .select(&sel(".step"))
        .filter(|s| s.select(&sel(".x")).next().is_some_and(|x| text(x) == line))
        .collect()
}

/// The incident's stripped STARTTLS and plaintext DATA, in `ladder`.
fn assert_incident_ladder(ladder: ElementRef<'_>) {
    let stripped = step(ladder, "250 STARTTLS");
    assert_eq!(stripped.len(), 1, "one line of the relay offers STARTTLS");
    let s = stripped[0].value();
    assert_eq!(s.attr("data-behaviour"), Some("strip-starttls"));
    assert!(
        s.has_class("d-removed", scraper::CaseSensitivity::CaseSensitive),
        "the relay's STARTTLS is marked removed: {:?}",
        s.attr("class")
    );
    assert!(text(stripped[0]).contains("STARTTLS STRIPPED"));
    // Postfix got the reply without it: no STARTTLS reaches Postfix.
    let got: Vec<String> = ladder
        .select(&sel(".step.k-mc[data-behaviour=strip-starttls] .x"))
        .map(text)
        .collect();
    assert!(!got.is_empty(), "what Postfix got instead is drawn");
    assert!(got.iter().all(|l| !l.contains("STARTTLS")), "{got:?}");
    let data = step(ladder, "DATA");
    assert_eq!(data.len(), 1);
    assert!(
        data[0]
            .value()
            .has_class("f-pd", scraper::CaseSensitivity::CaseSensitive)
    );
    assert!(text(data[0]).contains("DATA IN PLAINTEXT"));
}

#[tokio::test]
async fn the_incidents_ladder_marks_the_stripped_starttls_and_plaintext_data_in_chromium() {
    let dir = artifacts();
    let report = dir.join("incident.html");
    write_html(
        &["run", "scenarios", "--scenario", "incident-587-strip"],
        &report,
        exit::SUCCESS,
    );
    let fragment = "incident-587-strip/may";
    let html = rendered(&report, fragment, "incident.dom.html").await;

    // The matrix: one row, a cell per level, each coloured by its outcome.
    let cells: Vec<(String, String)> = html
        .select(&sel("table.matrix td.cell"))
        .map(|c| {
            (
                c.attr("data-key").unwrap_or("").to_owned(),
                c.attr("data-cat").unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("none", "plaintext"),
        ("may", "plaintext"),
        ("encrypt", "deferred"),
        ("verify", "deferred"),
        ("secure", "deferred"),
    ]
    .iter()
    .map(|(l, c)| (format!("incident-587-strip/{l}"), c.to_string()))
    .collect();
    assert_eq!(cells, expected);
    assert!(
        text(one(
            &html,
            "td.cell[data-key=\"incident-587-strip/encrypt\"]"
        ))
        .contains("4.7.4")
    );
    assert!(
        one(&html, "td.cell[data-key=\"incident-587-strip/may\"]")
            .value()
            .has_class("open", scraper::CaseSensitivity::CaseSensitive)
    );

    // The ladder the address opened.
    let case = one(
        &html,
        "#overlay section.case[data-key=\"incident-587-strip/may\"]",
    );
    assert_eq!(case.select(&sel(".ladder")).count(), 1, "one attempt");
    assert_incident_ladder(case);
    let log = text(one(&html, "#overlay .log"));
    assert!(log.contains("status=sent"), "{log}");

    let picture = dir.join("incident-ladder.png");
    let _ = std::fs::remove_file(&picture);
    chromium(
        &[
            "--window-size=1400,1000".into(),
            format!("--screenshot={}", picture.display()),
        ],
        &file_url(&report, fragment),
    )
    .await;
    let png = std::fs::read(&picture).expect("chromium wrote the screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "a picture with something in it ({} bytes)",
        png.len()
    );
    if std::env::var_os("TLSHARNESS_UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        let committed = root().join("docs/incident-ladder.png");
        std::fs::create_dir_all(committed.parent().unwrap()).unwrap();
        std::fs::copy(&picture, &committed).expect("the README's picture is updated");
    }
}

#[tokio::test]
async fn check_shows_both_sides_ladders_of_the_downgraded_path_in_chromium() {
    let dir = artifacts();
    let report = dir.join("check.html");
    write_html(
        &[
            "check",
            "--config",
            "fixtures/configs/incident-before",
            "--candidate",
            "fixtures/configs/incident-after",
            "--scenario",
            "incident-587-strip",
        ],
        &report,
        exit::REGRESSION,
    );
    let html = rendered(&report, "", "check.dom.html").await;
    let row = one(&html, "table.verdicts tr.vrow");
    assert_eq!(row.attr("data-verdict"), Some("downgrade"));
    assert!(text(row).contains("DOWNGRADE"), "{}", text(row));

    // The changed path, both sides drawn without opening anything.
    let pair = one(&html, "#app section.pair[data-key=\"incident-587-strip\"]");
    let sides: Vec<ElementRef<'_>> = pair.select(&sel("section.case")).collect();
    let keys: Vec<&str> = sides.iter().filter_map(|s| s.attr("data-key")).collect();
    assert_eq!(
        keys,
        ["current/incident-587-strip", "candidate/incident-587-strip"]
    );
    // encrypt defers where the path strips STARTTLS; may sends in plaintext.
    assert!(text(sides[0]).contains("4.7.4"));
    assert!(step(sides[0], "DATA").is_empty(), "encrypt sends no DATA");
    assert_incident_ladder(sides[1]);
}

/// An Exim run's page: the lanes and the log are Exim's, and a failed
/// handshake retried in clear is one attempt drawn as two connections,
/// with the note that says so.
#[tokio::test]
async fn an_exim_page_draws_a_clear_retry_as_one_attempt_of_two_connections_in_chromium() {
    let report = artifacts().join("exim.html");
    write_html(
        &[
            "run",
            "scenarios",
            "--mta",
            "exim",
            "--scenario",
            "fail-handshake-alert",
        ],
        &report,
        exit::SUCCESS,
    );
    let html = rendered(&report, "fail-handshake-alert/try", "exim.dom.html").await;
    let case = one(&html, "section.case");
    assert_eq!(case.select(&sel("h3")).count(), 1, "one attempt");
    let heading = text(one(&html, "section.case h3"));
    assert!(
        heading.contains("PLAINTEXT (retried in clear)")
            && heading.contains("a new connection in clear")
            && heading.contains("2 connections"),
        "{heading}"
    );
    let conns: Vec<String> = case.select(&sel(".conn .band")).map(text).collect();
    assert_eq!(conns.len(), 2, "{conns:?}");
    let lanes: Vec<String> = case.select(&sel(".lhead .lh")).map(text).collect();
    assert_eq!(lanes.first().map(String::as_str), Some("Exim"), "{lanes:?}");
    assert!(text(one(&html, "aside.log h4")).starts_with("Exim log"));
    // The second connection carries the message in clear.
    assert_eq!(step(case, "DATA").len(), 1);
}
