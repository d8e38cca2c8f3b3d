//! What shoppers and gate screens see, in a real browser: headless Chromium (Debian's
//! `chromium` package) driven over the DevTools protocol against real nodes. The board shows a
//! report issued over gRPC within two seconds without a reload, shows reports replicated from
//! other markets under the issuing market's name, and recovers by itself when its node
//! restarts; the report page shows a revocation; an unknown id gets the not-found page.
//! Screenshots go to `target/test-artifacts/` (or `$HUREN_TEST_ARTIFACTS`).
//!
//! Chromium runs with a fresh profile in a temporary folder, with every background download
//! and update turned off, and only ever loads pages from the nodes on 127.0.0.1. It runs in a
//! process group of its own that is killed when the test ends, also when it panics.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use huren_proto::pb;
use huren_tests::{authed, issue, sample_report, token, Options, Testnet};

use cdp::{Browser, Tab};

/// The window a gate screen has (a 1080p screen at half scale).
const BOARD_SIZE: (u32, u32) = (1280, 720);
/// A small phone.
const PHONE_WIDTH: u32 = 360;

/// Whether the browser tests can run. In CI (`CI` set, where `.ci/run` installs Chromium) a
/// missing browser fails the test; on a developer's machine without Chromium the test says
/// loudly that it did not run, and how to make it run.
fn browser_present(test: &str) -> bool {
    if cdp::find().is_some() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: headless Chromium is missing; install Debian's `chromium` package");
    }
    eprintln!(
        "NOT RUN {test}: headless Chromium is missing. Install it with \
         `apt-get install chromium fonts-noto-cjk` (.ci/run does) to run the browser tests."
    );
    false
}

fn artifacts() -> PathBuf {
    let dir = std::env::var_os("HUREN_TEST_ARTIFACTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("create the test artifacts folder");
    dir
}

fn positive_report(market: &str) -> pb::ReportIssued {
    let now = huren_node::clock::Clock::now_ms(&huren_node::clock::SystemClock);
    (1..50)
        .flat_map(|seed| huren_client::sample::day(market, seed, 30, now - 13 * 3_600_000))
        .find(|r| r.result == pb::TestResult::Positive as i32)
        .expect("sample days hold positives")
}

async fn revoke(net: &Testnet, i: usize, report_id: &str, reason: &str) {
    let mut client = net.client(i).await;
    let request = pb::RevokeReportRequest {
        request_id: format!("revoke-{report_id}"),
        report_id: report_id.into(),
        reason: reason.into(),
    };
    client
        .revoke_report(authed(request, &token("issuer", &net.markets[i])))
        .await
        .expect("revocation succeeds");
}

fn row(id: &str) -> String {
    format!("document.querySelector('[data-report-id=\"{id}\"]')")
}

async fn open_board(browser: &Browser, url: &str) -> Tab {
    let tab = browser.tab().await;
    tab.viewport(BOARD_SIZE.0, BOARD_SIZE.1, false).await;
    tab.navigate(url).await;
    assert!(
        tab.wait_for(
            "window.hurenBoard && hurenBoard.loaded && hurenBoard.connected",
            Duration::from_secs(10)
        )
        .await,
        "the board loads its list and connects to the event stream"
    );
    // Set on the page itself: it survives only if the page is never reloaded.
    tab.eval("window.__notReloaded = true").await;
    tab
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_issued_over_grpc_appears_on_an_open_board_within_two_seconds() {
    if !browser_present("a_report_issued_over_grpc_appears_on_an_open_board_within_two_seconds") {
        return;
    }
    let net = Testnet::start_with(
        2,
        200,
        Options {
            http: true,
            ..Options::default()
        },
    )
    .await;
    let browser = Browser::launch().await;
    for n in 0..6 {
        issue(&net, 0, sample_report("shanxi", n), &format!("morning-{n}")).await;
    }
    let bad = issue(&net, 0, positive_report("shanxi"), "morning-positive").await;
    let tab = open_board(&browser, &format!("{}/board", net.http_url(0))).await;
    assert_eq!(
        tab.eval("document.querySelectorAll('#rows .row').length")
            .await,
        7
    );
    let fail_row = tab
        .eval(&format!("{}.textContent", row(&bad.report_id)))
        .await;
    assert!(
        fail_row.as_str().unwrap().contains("疑似不合格"),
        "a positive is told by text: {fail_row}"
    );
    assert_eq!(
        tab.eval(&format!(
            "{}.querySelector('.mark.fail') !== null",
            row(&bad.report_id)
        ))
        .await,
        true,
        "and by shape"
    );

    // Issued at this market over gRPC: on the board within two seconds, no reload.
    let report = sample_report("shanxi", 40);
    let done = issue(&net, 0, report.clone(), "live-1").await;
    let issued = Instant::now();
    assert!(
        tab.wait_for(
            &format!("{} !== null", row(&done.report_id)),
            Duration::from_secs(2)
        )
        .await,
        "{} reached the open board within two seconds",
        done.report_id
    );
    let took = issued.elapsed();
    assert_eq!(
        tab.eval("window.__notReloaded === true").await,
        true,
        "no reload"
    );
    let product = tab
        .eval(&format!(
            "{}.querySelector('.product').textContent",
            row(&done.report_id)
        ))
        .await;
    assert_eq!(
        product,
        report.product.as_str(),
        "Chinese product name intact"
    );
    let result = tab
        .eval(&format!(
            "{}.querySelector('.result').textContent",
            row(&done.report_id)
        ))
        .await;
    assert!(result.as_str().unwrap().contains("合格"), "{result}");
    let first = tab
        .eval("document.querySelector('#rows .row').dataset.reportId")
        .await;
    assert_eq!(
        first,
        done.report_id.as_str(),
        "the newest result is on top"
    );

    // Issued at another market: replicated, and shown under the issuing market's name.
    let other = issue(&net, 1, sample_report("jiuzhou", 41), "live-2").await;
    assert!(
        tab.wait_for(
            &format!("{} !== null", row(&other.report_id)),
            Duration::from_secs(10)
        )
        .await,
        "a report replicated from jiuzhou reaches shanxi's board"
    );
    let market = tab
        .eval(&format!(
            "{}.querySelector('.market').textContent",
            row(&other.report_id)
        ))
        .await;
    assert_eq!(
        market, "市场1",
        "the issuing market's Chinese name from the trust list"
    );

    // Let the newest rows stop glowing, then keep a picture of the board.
    tokio::time::sleep(Duration::from_millis(300)).await;
    tab.screenshot(&artifacts().join("board.png")).await;
    println!("board showed {} after {took:?}", done.report_id);
    drop(browser);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_page_shows_revoked_after_a_revocation_over_grpc() {
    if !browser_present("the_report_page_shows_revoked_after_a_revocation_over_grpc") {
        return;
    }
    let net = Testnet::start_with(
        1,
        200,
        Options {
            http: true,
            ..Options::default()
        },
    )
    .await;
    let browser = Browser::launch().await;
    let report = sample_report("shanxi", 3);
    let done = issue(&net, 0, report.clone(), "page-1").await;
    let tab = browser.tab().await;
    tab.viewport(PHONE_WIDTH, 740, true).await;
    let url = format!("{}/r/{}", net.http_url(0), done.report_id);

    tab.navigate(&url).await;
    let text = tab.eval("document.body.innerText").await;
    let text = text.as_str().unwrap();
    assert!(text.contains(&report.product), "{text}");
    assert!(text.contains("合格") && text.contains("有效"), "{text}");
    assert!(!text.contains("已撤销"), "{text}");
    assert_eq!(
        tab.eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        true,
        "nothing spills sideways on a 360 px screen"
    );
    tab.screenshot(&artifacts().join("report-page.png")).await;

    revoke(&net, 0, &done.report_id, "实验室操作失误，试剂批次过期").await;
    tab.navigate(&url).await;
    let text = tab.eval("document.body.innerText").await;
    let text = text.as_str().unwrap();
    assert!(text.contains("已撤销"), "{text}");
    assert!(
        text.contains("实验室操作失误，试剂批次过期"),
        "the reason is shown"
    );
    assert_eq!(
        tab.eval("document.querySelector('.hero').dataset.status")
            .await,
        "STATUS_REVOKED"
    );
    tab.screenshot(&artifacts().join("report-page-revoked.png"))
        .await;

    // A suspected fail is told by word and shape too, and asks for the lot's disposal.
    let bad = issue(&net, 0, positive_report("shanxi"), "page-positive").await;
    tab.navigate(&format!("{}/r/{}", net.http_url(0), bad.report_id))
        .await;
    let text = tab.eval("document.body.innerText").await;
    assert!(text.as_str().unwrap().contains("疑似不合格"), "{text}");
    assert_eq!(
        tab.eval("document.querySelector('.hero .mark.fail') !== null")
            .await,
        true
    );
    tab.screenshot(&artifacts().join("report-page-positive.png"))
        .await;
    drop(browser);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_report_id_gets_the_not_found_page() {
    if !browser_present("an_unknown_report_id_gets_the_not_found_page") {
        return;
    }
    let net = Testnet::start_with(
        1,
        200,
        Options {
            http: true,
            ..Options::default()
        },
    )
    .await;
    let browser = Browser::launch().await;
    let tab = browser.tab().await;
    tab.viewport(PHONE_WIDTH, 640, true).await;

    tab.navigate(&format!("{}/r/shanxi-999", net.http_url(0)))
        .await;
    let text = tab.eval("document.body.innerText").await;
    assert!(
        text.as_str().unwrap().contains("未找到该检测报告"),
        "{text}"
    );
    let status = tab
        .eval("fetch(location.href, {cache: 'no-store'}).then(r => r.status)")
        .await;
    assert_eq!(status, 404);
    tab.screenshot(&artifacts().join("report-not-found.png"))
        .await;

    tab.navigate(&format!("{}/r/not-a-report", net.http_url(0)))
        .await;
    let text = tab.eval("document.body.innerText").await;
    assert!(text.as_str().unwrap().contains("报告编号无效"), "{text}");
    let status = tab
        .eval("fetch(location.href, {cache: 'no-store'}).then(r => r.status)")
        .await;
    assert_eq!(status, 400);
    drop(browser);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_reconnects_after_its_node_restarts_and_misses_nothing() {
    if !browser_present("the_board_reconnects_after_its_node_restarts_and_misses_nothing") {
        return;
    }
    let mut net = Testnet::start_with(
        1,
        200,
        Options {
            http: true,
            ..Options::default()
        },
    )
    .await;
    let browser = Browser::launch().await;
    issue(&net, 0, sample_report("shanxi", 1), "before").await;
    let tab = open_board(&browser, &format!("{}/board", net.http_url(0))).await;

    net.stop(0).await;
    assert!(
        tab.wait_for(
            "!hurenBoard.connected && !document.getElementById('conn').hidden",
            Duration::from_secs(10)
        )
        .await,
        "the board shows that it is reconnecting"
    );
    assert_eq!(
        tab.eval("document.getElementById('conn').textContent")
            .await,
        "重新连接中…"
    );
    tab.screenshot(&artifacts().join("board-reconnecting.png"))
        .await;
    let refreshes = tab.eval("hurenBoard.refreshes").await.as_u64().unwrap();

    // Issued as soon as the node is back, most likely before the board has reconnected: the
    // list fetched on reconnection must bring it.
    net.restart(0).await;
    let missed = issue(&net, 0, sample_report("shanxi", 2), "while-away").await;
    assert!(
        tab.wait_for(
            &format!("{} !== null", row(&missed.report_id)),
            Duration::from_secs(15)
        )
        .await,
        "the board came back by itself and shows {}",
        missed.report_id
    );
    assert!(
        tab.wait_for(
            "hurenBoard.connected && document.getElementById('conn').hidden",
            Duration::from_secs(5)
        )
        .await
    );
    assert_eq!(
        tab.eval("window.__notReloaded === true").await,
        true,
        "no reload"
    );
    assert!(tab.eval("hurenBoard.refreshes").await.as_u64().unwrap() > refreshes);

    // And it is live again.
    let next = issue(&net, 0, sample_report("shanxi", 3), "after").await;
    assert!(
        tab.wait_for(
            &format!("{} !== null", row(&next.report_id)),
            Duration::from_secs(2)
        )
        .await,
        "live again after the restart"
    );
    drop(browser);
    net.shutdown().await;
}

/// A small client of the Chrome DevTools protocol: start Chromium headless, open tabs,
/// navigate, evaluate, resize and take screenshots. Only what these tests need.
mod cdp {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use base64::Engine;
    use futures::stream::SplitSink;
    use futures::{SinkExt, StreamExt};
    use serde_json::{json, Value};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

    /// How long one protocol command may take.
    const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
    /// How long Chromium may take to start listening.
    const START_TIMEOUT: Duration = Duration::from_secs(30);

    type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;
    type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;

    struct Conn {
        sink: tokio::sync::Mutex<Sink>,
        pending: Pending,
        next: AtomicU64,
    }

    impl Conn {
        async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
            let id = self.next.fetch_add(1, Ordering::Relaxed);
            let mut message = json!({ "id": id, "method": method, "params": params });
            if let Some(s) = session {
                message["sessionId"] = json!(s);
            }
            let (tx, rx) = oneshot::channel();
            self.pending.lock().expect("not poisoned").insert(id, tx);
            self.sink
                .lock()
                .await
                .send(Message::Text(message.to_string().into()))
                .await
                .unwrap_or_else(|e| panic!("{method}: Chromium's connection failed: {e}"));
            match tokio::time::timeout(COMMAND_TIMEOUT, rx).await {
                Ok(Ok(Ok(value))) => value,
                Ok(Ok(Err(e))) => panic!("{method}: {e}"),
                Ok(Err(_)) => panic!("{method}: Chromium closed the connection"),
                Err(_) => panic!("{method}: no answer from Chromium in {COMMAND_TIMEOUT:?}"),
            }
        }
    }

    /// A headless Chromium of our own, killed with all its helpers when dropped.
    pub struct Browser {
        child: Child,
        conn: Arc<Conn>,
        reader: tokio::task::JoinHandle<()>,
        _profile: tempfile::TempDir,
    }

    /// The Chromium binary, if one is installed.
    pub fn find() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("HUREN_CHROMIUM") {
            return Some(PathBuf::from(path));
        }
        let mut candidates = vec![
            PathBuf::from("/usr/bin/chromium"),
            PathBuf::from("/usr/bin/chromium-browser"),
        ];
        if let Some(path) = std::env::var_os("PATH") {
            candidates.extend(std::env::split_paths(&path).map(|d| d.join("chromium")));
        }
        candidates.into_iter().find(|p| p.is_file())
    }

    fn binary() -> PathBuf {
        if let Some(path) = std::env::var_os("HUREN_CHROMIUM") {
            return PathBuf::from(path);
        }
        let mut candidates = vec![
            PathBuf::from("/usr/bin/chromium"),
            PathBuf::from("/usr/bin/chromium-browser"),
        ];
        if let Some(path) = std::env::var_os("PATH") {
            candidates.extend(std::env::split_paths(&path).map(|d| d.join("chromium")));
        }
        candidates
            .into_iter()
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "headless Chromium is needed for the browser tests and was not found: install \
                 Debian's `chromium` package (apt-get install -y chromium), or point \
                 HUREN_CHROMIUM at a Chromium binary"
                )
            })
    }

    impl Browser {
        /// Starts Chromium headless on a DevTools port the OS picks, with a fresh profile.
        ///
        /// # Panics
        /// When Chromium is not installed or does not start.
        pub async fn launch() -> Self {
            let binary = binary();
            let profile = tempfile::tempdir().expect("a profile folder");
            let log =
                std::fs::File::create(profile.path().join("chromium.log")).expect("a log file");
            let mut command = Command::new(&binary);
            command
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-extensions",
                    "--disable-default-apps",
                    "--disable-domain-reliability",
                    "--disable-breakpad",
                    "--metrics-recording-only",
                    "--mute-audio",
                    "--hide-scrollbars",
                    "--remote-debugging-address=127.0.0.1",
                    "--remote-debugging-port=0",
                ])
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg("about:blank")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log);
            // A process group of its own, so that the renderer and helper processes end too.
            #[cfg(unix)]
            {
                use std::os::unix::process::CommandExt;
                command.process_group(0);
            }
            let child = command.spawn().unwrap_or_else(|e| {
                panic!(
                    "cannot start {} (Debian package `chromium`): {e}",
                    binary.display()
                )
            });
            let mut browser_guard = Guard(Some(child));
            let ws_url = devtools_url(profile.path(), &mut browser_guard).await;
            let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
                .await
                .unwrap_or_else(|e| panic!("cannot reach Chromium's DevTools at {ws_url}: {e}"));
            let (sink, mut stream) = ws.split();
            let pending: Pending = Arc::default();
            let conn = Arc::new(Conn {
                sink: tokio::sync::Mutex::new(sink),
                pending: Arc::clone(&pending),
                next: AtomicU64::new(1),
            });
            let reader = tokio::spawn(async move {
                while let Some(Ok(message)) = stream.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    let Ok(value) = serde_json::from_str::<Value>(&text) else {
                        continue;
                    };
                    // Answers carry the id of their command; events carry none.
                    let Some(id) = value.get("id").and_then(Value::as_u64) else {
                        continue;
                    };
                    let Some(tx) = pending.lock().expect("not poisoned").remove(&id) else {
                        continue;
                    };
                    let answer = match value.get("error") {
                        Some(e) => Err(e.to_string()),
                        None => Ok(value.get("result").cloned().unwrap_or(Value::Null)),
                    };
                    let _ = tx.send(answer);
                }
                pending.lock().expect("not poisoned").clear();
            });
            Self {
                child: browser_guard.0.take().expect("guard holds the child"),
                conn,
                reader,
                _profile: profile,
            }
        }

        /// Opens a new tab on `about:blank`.
        pub async fn tab(&self) -> Tab {
            let created = self
                .conn
                .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
                .await;
            let target = created["targetId"].as_str().expect("a target id");
            let attached = self
                .conn
                .call(
                    None,
                    "Target.attachToTarget",
                    json!({ "targetId": target, "flatten": true }),
                )
                .await;
            let session = attached["sessionId"]
                .as_str()
                .expect("a session id")
                .to_string();
            let tab = Tab {
                conn: Arc::clone(&self.conn),
                session,
            };
            tab.call("Page.enable", json!({})).await;
            tab
        }
    }

    impl Drop for Browser {
        fn drop(&mut self) {
            self.reader.abort();
            kill_group(&mut self.child);
        }
    }

    /// Kills the child's whole process group, then reaps the child. The child is not reaped
    /// before, so its id cannot have been reused when the group is signalled.
    fn kill_group(child: &mut Child) {
        #[cfg(unix)]
        {
            if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: kill(2) with a negative pid signals the process group that this
                // child leads (it was started with process_group(0)); no memory is involved.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills Chromium if starting it fails half-way.
    struct Guard(Option<Child>);

    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(child) = self.0.as_mut() {
                kill_group(child);
            }
        }
    }

    /// Waits for Chromium to write the DevTools port it picked into its profile.
    async fn devtools_url(profile: &Path, guard: &mut Guard) -> String {
        let file = profile.join("DevToolsActivePort");
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(text) = std::fs::read_to_string(&file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    return format!("ws://127.0.0.1:{}{}", port.trim(), path.trim());
                }
            }
            let child = guard.0.as_mut().expect("guard holds the child");
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(profile.join("chromium.log")).unwrap_or_default();
                panic!("Chromium exited at start ({status}):\n{log}");
            }
            if tokio::time::Instant::now() >= deadline {
                let log = std::fs::read_to_string(profile.join("chromium.log")).unwrap_or_default();
                panic!("Chromium did not open its DevTools port in {START_TIMEOUT:?}:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One tab, through its own DevTools session.
    pub struct Tab {
        conn: Arc<Conn>,
        session: String,
    }

    impl Tab {
        async fn call(&self, method: &str, params: Value) -> Value {
            self.conn.call(Some(&self.session), method, params).await
        }

        /// Sets the viewport, as a phone (`mobile`) or a screen.
        pub async fn viewport(&self, width: u32, height: u32, mobile: bool) {
            self.call(
                "Emulation.setDeviceMetricsOverride",
                json!({
                    "width": width,
                    "height": height,
                    "deviceScaleFactor": if mobile { 2 } else { 1 },
                    "mobile": mobile,
                }),
            )
            .await;
        }

        /// Loads `url` and waits (at most ten seconds) until the document has loaded.
        pub async fn navigate(&self, url: &str) {
            let answer = self.call("Page.navigate", json!({ "url": url })).await;
            if let Some(e) = answer.get("errorText").and_then(Value::as_str) {
                panic!("cannot load {url}: {e}");
            }
            assert!(
                self.wait_for(
                    "document.readyState === 'complete'",
                    Duration::from_secs(10)
                )
                .await,
                "{url} did not finish loading"
            );
        }

        /// Evaluates a JavaScript expression (awaiting a promise) and returns its value.
        pub async fn eval(&self, expression: &str) -> Value {
            let answer = self
                .call(
                    "Runtime.evaluate",
                    json!({
                        "expression": expression,
                        "returnByValue": true,
                        "awaitPromise": true,
                    }),
                )
                .await;
            if let Some(e) = answer.get("exceptionDetails") {
                panic!("{expression} threw: {e}");
            }
            answer["result"]
                .get("value")
                .cloned()
                .unwrap_or(Value::Null)
        }

        /// Polls `expression` every 50 ms until it is true or `within` passes; false if the
        /// page throws while loading.
        pub async fn wait_for(&self, expression: &str, within: Duration) -> bool {
            let deadline = tokio::time::Instant::now() + within;
            let guarded = format!(
                "(() => {{ try {{ return !!({expression}); }} catch (e) {{ return false; }} }})()"
            );
            loop {
                if self.eval(&guarded).await == Value::Bool(true) {
                    return true;
                }
                if tokio::time::Instant::now() >= deadline {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }

        /// Saves a PNG of the whole page to `path`.
        pub async fn screenshot(&self, path: &Path) {
            let metrics = self.call("Page.getLayoutMetrics", json!({})).await;
            let size = &metrics["cssContentSize"];
            let clip = json!({
                "x": 0,
                "y": 0,
                "width": size["width"].as_f64().unwrap_or(800.0),
                "height": size["height"].as_f64().unwrap_or(600.0),
                "scale": 1,
            });
            let shot = self
                .call(
                    "Page.captureScreenshot",
                    json!({ "format": "png", "captureBeyondViewport": true, "clip": clip }),
                )
                .await;
            let data = shot["data"].as_str().expect("image data");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .expect("base64 image");
            std::fs::write(path, bytes)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            println!("screenshot: {}", path.display());
        }
    }
}
