//! The HTTP server against a real node: one market's node started in-process on ports the OS
//! picked, reports appended through the node, and every route read over a plain HTTP/1.1
//! connection, as a browser or a script would. Each test names the rule it checks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use huren_node::clock::{Clock, SystemClock};
use huren_node::node::{Node, ReportRef};
use huren_node::replication::{Faults, Settings};
use huren_node::server::{launch, Launch, Running};
use huren_proto::ledger::Lot;
use huren_proto::pb::{self, event::Kind};
use huren_proto::{format, token};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MARKETS: [(&str, &str, &str); 2] =
    [("shanxi", "山西", "Shanxi"), ("jiuzhou", "九州", "Jiuzhou")];

/// One running node (shanxi) of a two-market network whose other market (jiuzhou) is not
/// running; its key signs entries that shanxi has not received.
struct Fixture {
    _dir: tempfile::TempDir,
    running: Option<Running>,
    http: SocketAddr,
    keys: Vec<SigningKey>,
}

impl Fixture {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let keys: Vec<SigningKey> = (0..MARKETS.len())
            .map(|i| SigningKey::from_bytes(&[0x40 + i as u8; 32]))
            .collect();
        let regulator = SigningKey::from_bytes(&[0x4F; 32]);
        let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind gRPC");
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind HTTP");
        let http_addr = http.local_addr().expect("HTTP address");
        let markets = MARKETS
            .iter()
            .zip(&keys)
            .map(|((id, zh, latin), key)| pb::Market {
                id: id.to_string(),
                name_zh: zh.to_string(),
                name_latin: latin.to_string(),
                public_key: key.verifying_key().to_bytes().to_vec(),
                grpc_addr: "http://127.0.0.1:1".into(),
                http_addr: if *id == "shanxi" {
                    format!("http://{http_addr}")
                } else {
                    String::new()
                },
            })
            .collect();
        let trust = huren_proto::trust::sign_trust_list(&regulator, "http-test", markets, 1);
        let membership =
            huren_proto::trust::Membership::from_trust_list(&trust, &regulator.verifying_key())
                .expect("test trust list verifies");
        let running = launch(Launch {
            market: "shanxi".into(),
            key: keys[0].clone(),
            data_dir: dir.path().join("shanxi"),
            membership,
            clock: Arc::new(SystemClock),
            tokens: Vec::new(),
            grpc,
            http: Some(http),
            peers: Vec::new(),
            settings: Settings {
                pull_interval: Duration::from_secs(60),
                batch_entries: 500,
            },
            faults: Arc::new(Faults::default()),
        })
        .await
        .expect("node starts");
        assert_eq!(running.http_addr, Some(http_addr));
        Self {
            _dir: dir,
            running: Some(running),
            http: http_addr,
            keys,
        }
    }

    fn node(&self) -> &Arc<Node> {
        &self.running.as_ref().expect("running").node
    }

    async fn issue(&self, report: pb::ReportIssued, request_id: &str) -> String {
        let done = self
            .node()
            .append(
                request_id.into(),
                pb::Event {
                    kind: Some(Kind::ReportIssued(report)),
                },
            )
            .await
            .expect("report appended");
        huren_proto::ids::report_id(&done.entry.entry.log, done.entry.entry.seq)
    }

    async fn revoke(&self, id: &str, reason: &str) {
        self.node()
            .append(
                format!("revoke-{id}"),
                pb::Event {
                    kind: Some(Kind::ReportRevoked(pb::ReportRevoked {
                        report_id: id.into(),
                        reason: reason.into(),
                    })),
                },
            )
            .await
            .expect("revocation appended");
    }

    async fn get(&self, path: &str) -> Reply {
        get(self.http, path).await
    }

    async fn json(&self, path: &str) -> (u16, Value) {
        let reply = self.get(path).await;
        let value = serde_json::from_slice(&reply.body)
            .unwrap_or_else(|e| panic!("{path} answers JSON: {e}: {}", reply.text()));
        (reply.status, value)
    }

    async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

/// A whole HTTP answer.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// GET over one HTTP/1.1 connection that the server closes after answering.
async fn get(addr: SocketAddr, path: &str) -> Reply {
    let work = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect to HTTP");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read answer");
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .unwrap_or_else(|_| panic!("GET {path} timed out"));
    parse(&raw)
}

fn parse(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            break;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..end])
                .split(';')
                .next()
                .unwrap_or("")
                .trim(),
            16,
        )
        .expect("chunk size");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 4 + size..];
    }
    out
}

/// A passing sample report of `market`, tested this morning.
fn sample(market: &str, n: u64) -> pb::ReportIssued {
    let now = SystemClock.now_ms();
    huren_client::sample::day(market, n, 30, now - 13 * 3_600_000)
        .into_iter()
        .find(|r| r.result == pb::TestResult::Negative as i32)
        .expect("a sample day holds passes")
}

fn positive(market: &str) -> pb::ReportIssued {
    let now = SystemClock.now_ms();
    (1..50)
        .flat_map(|seed| huren_client::sample::day(market, seed, 30, now - 13 * 3_600_000))
        .find(|r| r.result == pb::TestResult::Positive as i32)
        .expect("sample days hold positives")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_list_is_newest_first_bounded_and_filtered_by_market() {
    let mut f = Fixture::start().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(f.issue(sample("shanxi", n), &format!("r{n}")).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let (status, body) = f.json("/api/reports").await;
    assert_eq!(status, 200);
    assert_eq!(body["count"], 3);
    let listed: Vec<&str> = body["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["report_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["shanxi-3", "shanxi-2", "shanxi-1"], "newest first");
    let first = &body["reports"][0];
    assert_eq!(first["market"]["name_zh"], "山西");
    assert_eq!(first["status"], "VALID");
    let tested = first["report"]["tested_at_ms"].as_i64().unwrap();
    assert_eq!(
        first["report"]["tested_at_cst"],
        huren_proto::time::cst(tested),
        "times carry UTC ms and CST text"
    );
    assert!(first["report"]["tested_at_cst"]
        .as_str()
        .unwrap()
        .ends_with("CST"));

    let (_, two) = f.json("/api/reports?limit=2").await;
    assert_eq!(two["count"], 2);
    let (_, mine) = f.json("/api/reports?market=shanxi&limit=1000").await;
    assert_eq!(mine["count"], 3);
    let (_, theirs) = f.json("/api/reports?market=jiuzhou").await;
    assert_eq!(theirs["count"], 0);
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_list_queries_are_json_errors_with_the_right_status() {
    let mut f = Fixture::start().await;
    for (path, status, code) in [
        ("/api/reports?limit=0", 400, "bad_request"),
        ("/api/reports?limit=1001", 400, "bad_request"),
        ("/api/reports?limit=many", 400, "bad_request"),
        ("/api/reports?limit=-1", 400, "bad_request"),
        ("/api/reports?market=Not%20A%20Market", 400, "bad_request"),
        ("/api/reports?market=nosuchmarket", 404, "not_found"),
        ("/api/nothing-here", 404, "not_found"),
    ] {
        let reply = f.get(path).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.text());
        assert!(reply
            .header("content-type")
            .unwrap_or("")
            .starts_with("application/json"));
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["code"], code, "{path}");
        assert!(!body["error"].as_str().unwrap().is_empty(), "{path}");
    }
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_report_carries_its_status_intakes_and_recall_markets() {
    let mut f = Fixture::start().await;
    let report = sample("shanxi", 7);
    let id = f.issue(report.clone(), "one").await;

    let (status, body) = f.json(&format!("/api/reports/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["report_id"], id.as_str());
    assert_eq!(body["status"], "VALID");
    assert_eq!(body["report"]["product"], report.product.as_str());
    assert_eq!(body["intakes"].as_array().unwrap().len(), 0);
    assert_eq!(body["recall_markets"].as_array().unwrap().len(), 0);
    assert!(body["valid_until_ms"].as_i64().unwrap() > report.tested_at_ms);
    let token_text = body["entry"]["token"].as_str().unwrap();
    let signed = token::decode(token_text).expect("the JSON carries the report's token");
    assert_eq!(
        hex::encode(format::entry_hash(&signed.body)),
        body["entry"]["hash"].as_str().unwrap()
    );

    // Goods taken in on the report, then the report withdrawn: the market must recall them.
    let quantity = huren_client::sample::draw(&report, 1);
    let (verdict, _) = f
        .node()
        .intake(
            "take-1".into(),
            ReportRef::Id(id.clone()),
            Lot {
                product: report.product.clone(),
                category: None,
                quantity: quantity.clone(),
                at_ms: SystemClock.now_ms(),
            },
        )
        .await
        .expect("intake recorded");
    assert!(verdict.valid, "{:?}", verdict.reasons);
    f.revoke(&id, "试剂过期 expired reagent").await;

    let (_, body) = f.json(&format!("/api/reports/{id}")).await;
    assert_eq!(body["status"], "STATUS_REVOKED");
    assert_eq!(body["revoked"]["reason"], "试剂过期 expired reagent");
    assert_eq!(body["revoked"]["by"]["id"], "shanxi");
    let intakes = body["intakes"].as_array().unwrap();
    assert_eq!(intakes.len(), 1);
    assert_eq!(intakes[0]["accepted"], true);
    assert_eq!(intakes[0]["quantity"]["amount"], quantity.amount.as_str());
    assert!(intakes[0]["time_cst"].as_str().unwrap().ends_with("CST"));
    assert_eq!(body["recall_markets"][0]["id"], "shanxi");
    assert_eq!(body["recall_markets"][0]["name_zh"], "山西");
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_report_ids_are_404_and_malformed_ones_400() {
    let mut f = Fixture::start().await;
    let long = format!("/api/reports/shanxi-{}", "9".repeat(80));
    for (path, status, code) in [
        ("/api/reports/shanxi-99", 404, "not_found"),
        ("/api/reports/jiuzhou-1", 404, "not_found"),
        ("/api/reports/nosuchmarket-1", 404, "not_found"),
        ("/api/reports/shanxi-0", 400, "bad_request"),
        ("/api/reports/SHANXI-1", 400, "bad_request"),
        ("/api/reports/not%20an%20id", 400, "bad_request"),
        (long.as_str(), 400, "bad_request"),
    ] {
        let (got, body) = f.json(path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["code"], code, "{path}");
    }
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_forks_and_status_describe_the_node() {
    let mut f = Fixture::start().await;
    f.issue(sample("shanxi", 1), "a").await;
    f.issue(sample("shanxi", 2), "b").await;

    let (status, heads) = f.json("/api/heads").await;
    assert_eq!(status, 200);
    let shanxi = heads["heads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["log"] == "shanxi")
        .expect("shanxi's head");
    assert_eq!(shanxi["seq"], 2);
    assert_eq!(shanxi["hash"].as_str().unwrap().len(), 64);
    assert_eq!(shanxi["frozen"], false);

    let (status, forks) = f.json("/api/forks").await;
    assert_eq!(status, 200);
    assert_eq!(forks["forks"].as_array().unwrap().len(), 0);

    let (status, body) = f.json("/api/status").await;
    assert_eq!(status, 200);
    assert_eq!(body["market"], "shanxi");
    assert_eq!(body["name_zh"], "山西");
    assert_eq!(body["name_latin"], "Shanxi");
    assert_eq!(body["reports"], 2);
    assert_eq!(body["forks"], 0);
    assert!(body["halted"].is_null());
    assert!(body["now_cst"].as_str().unwrap().ends_with("CST"));
    assert!(body["heads"].as_array().unwrap().len() >= 2);
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_evidence_is_listed_with_both_entries() {
    let mut f = Fixture::start().await;
    let id = f.issue(sample("shanxi", 1), "a").await;
    let held = f
        .node()
        .store()
        .get("shanxi", 1)
        .unwrap()
        .expect("entry stored");
    let other = forged_twin(&f, &held);
    f.node()
        .ingest(
            Vec::new(),
            vec![pb::ForkEvidence {
                first: Some(held),
                second: Some(other),
            }],
            false,
        )
        .await
        .expect("evidence accepted");

    let (_, forks) = f.json("/api/forks").await;
    let list = forks["forks"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["log"], "shanxi");
    assert_eq!(list[0]["seq"], 1);
    assert_ne!(list[0]["first"]["hash"], list[0]["second"]["hash"]);
    assert_eq!(list[0]["first"]["event"], "report_issued");
    let (_, report) = f.json(&format!("/api/reports/{id}")).await;
    assert_eq!(report["status"], "FORKED");
    f.stop().await;
}

/// A second, validly signed entry at the place of `held`: the same report, another product.
fn forged_twin(f: &Fixture, held: &pb::SignedEntry) -> pb::SignedEntry {
    let mut entry = format::decode_entry(&held.body).unwrap();
    if let Some(Kind::ReportIssued(r)) = entry.event.as_mut().and_then(|e| e.kind.as_mut()) {
        r.product = format!("{}（另一份）", r.product);
    }
    format::sign_entry(&f.keys[0], &entry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_answer_with_the_right_status_and_type() {
    let mut f = Fixture::start().await;
    let id = f.issue(sample("shanxi", 3), "p").await;
    let entry = f.node().store().get("shanxi", 1).unwrap().unwrap();
    let token_text = token::encode(&entry);
    for (path, status, kind, needle) in [
        ("/board".to_string(), 200, "text/html", "快检结果公示"),
        ("/".to_string(), 200, "text/html", "山西"),
        (format!("/r/{id}"), 200, "text/html", "合格"),
        (
            "/r/shanxi-99".to_string(),
            404,
            "text/html",
            "未找到该检测报告",
        ),
        ("/r/shanxi-x".to_string(), 400, "text/html", "报告编号无效"),
        (
            format!("/r/{}", "a".repeat(100)),
            400,
            "text/html",
            "报告编号无效",
        ),
        (
            format!("/T/{token_text}"),
            200,
            "text/html",
            "二维码与本市场账本中的记录一致",
        ),
        (
            format!("/t/{}", token_text.to_ascii_lowercase()),
            200,
            "text/html",
            "二维码与本市场账本中的记录一致",
        ),
        (
            "/T/HR1NOTBASE32!!".to_string(),
            400,
            "text/html",
            "二维码内容无效",
        ),
        (
            "/T/shanxi-1".to_string(),
            400,
            "text/html",
            "二维码内容无效",
        ),
        (
            "/no/such/page".to_string(),
            404,
            "text/html",
            "此页面不存在",
        ),
        (
            "/assets/board.js".to_string(),
            200,
            "text/javascript",
            "EventSource",
        ),
        (
            "/assets/board.css".to_string(),
            200,
            "text/css",
            ".mark.fail",
        ),
        ("/assets/page.css".to_string(), 200, "text/css", "@media"),
        (format!("/r/{id}/qr.svg"), 200, "image/svg+xml", "<svg"),
        (
            "/r/shanxi-99/qr.png".to_string(),
            404,
            "application/json",
            "not_found",
        ),
        (
            "/r/bad/qr.svg".to_string(),
            400,
            "application/json",
            "bad_request",
        ),
    ] {
        let reply = f.get(&path).await;
        assert_eq!(reply.status, status, "{path}");
        let ct = reply.header("content-type").unwrap_or("");
        assert!(ct.starts_with(kind), "{path}: content type {ct}");
        assert!(
            reply.text().contains(needle),
            "{path} shows {needle:?}: {}",
            reply.text()
        );
        if kind == "text/html" {
            let csp = reply.header("content-security-policy").unwrap_or("");
            assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
            let html = reply.text();
            assert!(html.contains("name=\"viewport\""), "{path} has a viewport");
            assert!(
                !html.contains("http://") && !html.contains("https://"),
                "{path} links nowhere else"
            );
        }
    }
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_page_shows_what_where_when_and_the_revocation() {
    let mut f = Fixture::start().await;
    let report = sample("shanxi", 4);
    let id = f.issue(report.clone(), "page").await;
    let page = f.get(&format!("/r/{id}")).await.text();
    assert!(page.contains(&report.product), "product");
    assert!(page.contains(&report.stall_code), "stall");
    assert!(
        page.contains("山西") && page.contains("Shanxi"),
        "market in both scripts"
    );
    assert!(
        page.contains(&huren_proto::time::cst(report.tested_at_ms)),
        "test time in CST"
    );
    assert!(page.contains(&huren_proto::time::cst(report.sampled_at_ms)));
    for item in &report.items {
        assert!(page.contains(&item.method), "method {}", item.method);
    }
    assert!(page.contains("有效期至"));
    assert!(!page.contains("已撤销"));

    f.revoke(&id, "实验室操作失误").await;
    let page = f.get(&format!("/r/{id}")).await.text();
    assert!(page.contains("此报告已撤销"), "revoked banner");
    assert!(page.contains("实验室操作失误"), "the reason");
    let title = page
        .split_once("<title>")
        .and_then(|(_, rest)| rest.split_once("</title>"))
        .map(|(title, _)| title)
        .expect("the page has a title");
    assert!(
        title.contains("已撤销") && !title.contains("合格"),
        "a revoked report's title says so, not 合格: {title}"
    );
    assert!(
        page.contains(r#"<p class="result">已撤销"#),
        "and so does its headline"
    );

    let bad = positive("shanxi");
    let bad_id = f.issue(bad.clone(), "positive").await;
    let page = f.get(&format!("/r/{bad_id}")).await.text();
    assert!(page.contains("疑似不合格"));
    assert!(
        page.contains("尚未记录处置"),
        "a positive without disposal says so"
    );
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_a_product_name_is_shown_as_text_and_chinese_stays_intact() {
    let mut f = Fixture::start().await;
    let mut report = sample("shanxi", 5);
    report.product = "冬枣<script>alert(\"x\")</script>&'".into();
    let id = f.issue(report, "xss").await;
    let reply = f.get(&format!("/r/{id}")).await;
    assert_eq!(reply.status, 200);
    let page = reply.text();
    assert!(!page.contains("<script>alert"), "no live script tag");
    assert!(page.contains("冬枣&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"));
    assert!(
        !page.contains("<script"),
        "the report page carries no script at all"
    );

    // The JSON keeps the name as it is: JSON is data, and the board writes it as text.
    let (_, body) = f.json(&format!("/api/reports/{id}")).await;
    assert_eq!(
        body["report"]["product"],
        "冬枣<script>alert(\"x\")</script>&'"
    );
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_qr_png_decodes_to_a_link_with_the_report_token() {
    let mut f = Fixture::start().await;
    let id = f.issue(sample("shanxi", 6), "qr").await;
    let reply = f.get(&format!("/r/{id}/qr.png")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("image/png"));
    let image = image::load_from_memory(&reply.body)
        .expect("a PNG")
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    let (_, content) = grids[0].decode().expect("the code decodes");

    let entry = f.node().store().get("shanxi", 1).unwrap().unwrap();
    let expected = format!("HTTP://{}/T/{}", f.http, token::encode(&entry));
    assert_eq!(content, expected);
    assert!(huren_client::qr::is_alphanumeric_mode(&content));
    assert_eq!(token::decode(&content).unwrap(), entry);

    // The link opens this report's page.
    let path = content.split_once(&f.http.to_string()).unwrap().1;
    let page = f.get(path).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains(&format!("<code>{id}</code>")));
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_this_market_has_not_received_shows_its_content_after_checking_its_signature() {
    let mut f = Fixture::start().await;
    let report = sample("jiuzhou", 2);
    let entry = pb::Entry {
        format: format::FORMAT_VERSION,
        log: "jiuzhou".into(),
        seq: 1,
        prev_hash: format::GENESIS_PREV_HASH.to_vec(),
        time_ms: SystemClock.now_ms() - 60_000,
        request_id: String::new(),
        event: Some(pb::Event {
            kind: Some(Kind::ReportIssued(report.clone())),
        }),
    };
    let genuine = format::sign_entry(&f.keys[1], &entry);
    let reply = f.get(&format!("/T/{}", token::encode(&genuine))).await;
    assert_eq!(reply.status, 200);
    let page = reply.text();
    assert!(
        page.contains("本市场尚未收到这份报告"),
        "says it has not arrived"
    );
    assert!(page.contains(&report.product));
    assert!(page.contains("九州") && page.contains("jiuzhou-1"));
    assert!(!page.contains("签名无效"));

    // The same entry signed by a key outside the trust list is not shown as a report.
    let stranger = SigningKey::from_bytes(&[0x77; 32]);
    let forged = format::sign_entry(&stranger, &entry);
    let page = f
        .get(&format!("/T/{}", token::encode(&forged)))
        .await
        .text();
    assert!(page.contains("签名无效"), "{page}");
    assert!(!page.contains("本市场尚未收到这份报告"));
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_differs_from_this_markets_copy_is_flagged_as_a_fork() {
    let mut f = Fixture::start().await;
    f.issue(sample("shanxi", 8), "held").await;
    let held = f.node().store().get("shanxi", 1).unwrap().unwrap();
    let twin = forged_twin(&f, &held);
    let page = f.get(&format!("/T/{}", token::encode(&twin))).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("签发市场账本分叉"), "{}", page.text());
    f.stop().await;
}

/// Reads a server-sent event stream until `needle` shows up or `within` passes.
async fn read_until(
    stream: &mut TcpStream,
    seen: &mut String,
    needle: &str,
    within: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = vec![0u8; 16 * 1024];
    while !seen.contains(needle) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return false,
            Ok(Ok(n)) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    true
}

async fn open_events(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_sends_each_new_report_and_each_revocation() {
    let mut f = Fixture::start().await;
    let mut stream = open_events(f.http, "/board/events").await;
    let mut seen = String::new();
    assert!(
        read_until(
            &mut stream,
            &mut seen,
            "event: hello",
            Duration::from_secs(5)
        )
        .await
    );
    assert!(seen.contains("text/event-stream"), "{seen}");
    assert!(
        seen.contains("retry: 1000"),
        "tells the board to retry within a second"
    );

    let report = sample("shanxi", 9);
    let id = f.issue(report.clone(), "live").await;
    assert!(
        read_until(
            &mut stream,
            &mut seen,
            &format!("\"report_id\":\"{id}\""),
            Duration::from_secs(5)
        )
        .await,
        "the new report arrives: {seen}"
    );
    assert!(seen.contains("event: report"));
    assert!(
        seen.contains(&report.product),
        "Chinese product name intact"
    );

    f.revoke(&id, "复检阳性").await;
    assert!(
        read_until(
            &mut stream,
            &mut seen,
            "STATUS_REVOKED",
            Duration::from_secs(5)
        )
        .await,
        "the revocation arrives as an update"
    );
    assert!(seen.contains("event: update"));

    let filtered = open_events(f.http, "/board/events?market=jiuzhou").await;
    let bad = get(f.http, "/board/events?market=BAD").await;
    assert_eq!(bad.status, 400);
    drop(filtered);
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_event_stream_ends_when_the_node_stops() {
    let mut f = Fixture::start().await;
    let mut stream = open_events(f.http, "/board/events").await;
    let mut seen = String::new();
    assert!(
        read_until(
            &mut stream,
            &mut seen,
            "event: hello",
            Duration::from_secs(5)
        )
        .await
    );
    let stopped = tokio::time::Instant::now();
    f.stop().await;
    assert!(
        stopped.elapsed() < Duration::from_secs(4),
        "an open board does not hold the node up: {:?}",
        stopped.elapsed()
    );
    let mut buf = [0u8; 1024];
    let mut closed = false;
    for _ in 0..100 {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => continue,
            Err(_) => break,
        }
    }
    assert!(closed, "the stream was closed");
}
