//! The public report page a phone opens, from a link (`/r/{id}`) or a scanned QR code
//! (`/T/{token}`): what was tested, where, when, by which method, the result, until when a
//! pass holds, whether it was revoked and why, where the goods were accepted, and the
//! disposal of a positive lot. Also the clear pages for an unknown or malformed id or token,
//! and the report's QR code as PNG and SVG.
//!
//! A token names its report and carries the signed entry itself. When this node holds the
//! report the page shows the node's copy (and says so loudly if the token differs from it: a
//! fork). When it does not, the page shows what the token says, after the shared verdict
//! function has checked the token's signature against this node's membership; the page never
//! checks a signature itself.

use std::fmt::Write;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use huren_proto::ledger::{Lot, Verdict};
use huren_proto::pb::{self, event::Kind};
use huren_proto::time::cst;
use huren_proto::{format, ids, token};

use super::html::{self, esc};
use super::json::Names;
use super::{check_id, App, HttpError};
use crate::node::ReportRef;
use crate::views;

/// A 404 page.
pub(super) fn not_found_page(title_zh: &str, title_en: &str, detail: &str) -> Response {
    error_page(StatusCode::NOT_FOUND, "?", title_zh, title_en, detail)
}

fn error_page(
    status: StatusCode,
    symbol: &str,
    title_zh: &str,
    title_en: &str,
    detail: &str,
) -> Response {
    let body = format!(
        r#"<section class="hero notice" data-error="{code}">
<div class="badge"><span class="mark neutral" aria-hidden="true">{symbol}</span></div>
<div><h1>{zh}</h1><p class="en">{en}</p></div>
</section>
<section class="card"><p>{detail}</p>
<p class="en">HTTP {code}</p></section>"#,
        code = status.as_u16(),
        symbol = esc(symbol),
        zh = esc(title_zh),
        en = esc(title_en),
        detail = esc(detail),
    );
    html::page(status, &format!("{title_zh} · {title_en}"), &body)
}

/// The page for an error about a report id.
fn id_error_page(error: &HttpError, id: &str) -> Response {
    let shown: String = id.chars().take(80).collect();
    match error {
        HttpError::NotFound(_) => not_found_page(
            "未找到该检测报告",
            "Report not found",
            &format!(
                "本市场的账本中没有编号为 {shown} 的检测报告。若报告刚刚在其他市场签发，请稍后再试。\
                 / This market holds no report {shown}; if it was issued elsewhere moments ago, \
                 try again shortly."
            ),
        ),
        HttpError::BadRequest(m) => error_page(
            StatusCode::BAD_REQUEST,
            "!",
            "报告编号无效",
            "Malformed report id",
            &format!("“{shown}”不是有效的报告编号（应为 市场-序号，如 shanxi-12）。/ {m}"),
        ),
        other => error_page(
            other.status(),
            "!",
            "暂时无法显示",
            "Temporarily unavailable",
            other.message(),
        ),
    }
}

/// `GET /r/{id}`: the report page.
pub(super) async fn report(
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(id)) = id else {
        return id_error_page(&HttpError::BadRequest("unreadable path".into()), "");
    };
    let trace =
        check_id(&id).and_then(|()| Ok(views::trace(&app.node, &id, app.node.clock().now_ms())?));
    match trace {
        Ok(t) => {
            let view = t.report.unwrap_or_default();
            render(&app, &view, &t.recall_markets, None)
        }
        Err(e) => id_error_page(&e, &id),
    }
}

/// A notice shown above a report.
struct Banner {
    tone: &'static str,
    html: String,
}

/// `GET /T/{token}` and `/t/{token}`: the page a scanned QR code opens.
pub(super) async fn token(
    State(app): State<App>,
    text: Result<Path<String>, PathRejection>,
) -> Response {
    let malformed = |why: &str| {
        error_page(
            StatusCode::BAD_REQUEST,
            "!",
            "二维码内容无效",
            "Malformed report code",
            &format!("这个链接里的报告凭证已损坏或不完整，请重新扫描。/ {why}"),
        )
    };
    let Ok(Path(text)) = text else {
        return malformed("unreadable path");
    };
    let signed = match token::decode(&text) {
        Ok(s) => s,
        Err(e) => return malformed(&e.to_string()),
    };
    let Ok(claimed) = format::decode_entry(&signed.body) else {
        return malformed("the token does not hold a log entry");
    };
    let Some(Kind::ReportIssued(issued)) = claimed.event.as_ref().and_then(|e| e.kind.clone())
    else {
        return malformed("the token does not hold a test report");
    };
    let id = ids::report_id(&claimed.log, claimed.seq);

    // The shared verdict function checks the token's signature and membership, and compares
    // it with this node's copy. The lot asked about is the whole report, as issued, now.
    let lot = Lot {
        product: issued.product.clone(),
        category: None,
        quantity: issued.quantity.clone().unwrap_or_default(),
        at_ms: app.node.clock().now_ms(),
    };
    let (_, verdict) = app.node.verdict(&ReportRef::Token(signed.clone()), &lot);
    let has = |code: pb::Reason| verdict.reasons.iter().any(|r| r.code == code as i32);
    let not_genuine = has(pb::Reason::BadSignature) || has(pb::Reason::UnknownIssuer);
    if not_genuine {
        let details: Vec<String> = verdict.reasons.iter().map(|r| r.detail.clone()).collect();
        return error_page(
            StatusCode::OK,
            "✗",
            "签名无效：这不是互认网络签发的报告",
            "Not a genuine report: its signature does not check",
            &format!(
                "请勿凭此报告交易。/ Do not rely on this report. ({})",
                details.join("; ")
            ),
        );
    }
    let held_hash = app.node.ledger().hash_at(&claimed.log, claimed.seq);
    let token_hash = format::entry_hash(&signed.body);
    match held_hash {
        Some(h) if h == token_hash => {
            match views::trace(&app.node, &id, app.node.clock().now_ms()) {
                Ok(t) => {
                    let view = t.report.unwrap_or_default();
                    let banner = Banner {
                        tone: "ok",
                        html:
                            "二维码与本市场账本中的记录一致。<span class=\"en\">The code matches \
                               this market's copy of the report.</span>"
                                .into(),
                    };
                    render(&app, &view, &t.recall_markets, Some(banner))
                }
                Err(e) => id_error_page(&HttpError::from(e), &id),
            }
        }
        Some(_) => {
            // Same author and seq, a different validly signed entry: a fork. Show the
            // node's copy if it is a report, with the warning first.
            let banner = Banner {
                tone: "bad",
                html: "警告：二维码中的报告与本市场账本中同一编号的记录不同（签发市场账本分叉），\
                       请勿凭此报告交易。<span class=\"en\">Warning: the code differs from this \
                       market's copy of the same entry — the issuer's log is forked; do not rely \
                       on it.</span>"
                    .into(),
            };
            match views::trace(&app.node, &id, app.node.clock().now_ms()) {
                Ok(t) => render(
                    &app,
                    &t.report.unwrap_or_default(),
                    &t.recall_markets,
                    Some(banner),
                ),
                Err(_) => render_token_only(&app, &id, &claimed, &issued, &verdict, Some(banner)),
            }
        }
        None => render_token_only(&app, &id, &claimed, &issued, &verdict, None),
    }
}

/// What a token says about a report this node has not received, with the verdict's findings.
fn render_token_only(
    app: &App,
    id: &str,
    claimed: &pb::Entry,
    issued: &pb::ReportIssued,
    verdict: &Verdict,
    banner: Option<Banner>,
) -> Response {
    let mut note = String::from(
        "本市场尚未收到这份报告；以下内容来自二维码本身，其签名已按互认名单核验。撤销和其他市场的入场记录\
         在收到之前无法显示。<span class=\"en\">This market has not received this report yet. \
         What follows is what the code itself says; its signature was checked against the \
         trust list. Revocations and intakes elsewhere cannot be shown until it arrives.</span>",
    );
    let findings: Vec<&pb::VerdictReason> = verdict
        .reasons
        .iter()
        .filter(|r| r.code != pb::Reason::NotSeenHere as i32)
        .collect();
    if !findings.is_empty() {
        note.push_str("<ul class=\"reasons\">");
        for r in findings {
            let _ = write!(
                note,
                "<li>{} <span class=\"en\">{}</span></li>",
                esc(html::reason_label(r.code)),
                esc(&r.detail)
            );
        }
        note.push_str("</ul>");
    }
    let banner = banner.unwrap_or(Banner {
        tone: "warn",
        html: note,
    });
    let view = pb::ReportView {
        report_id: id.to_string(),
        entry: None,
        report: Some(issued.clone()),
        issued_at_ms: claimed.time_ms,
        status: pb::ReportStatus::Unspecified as i32,
        valid_until_ms: verdict.valid_until_ms.unwrap_or(0),
        ..Default::default()
    };
    render(app, &view, &[], Some(banner))
}

fn fact(out: &mut String, label_zh: &str, label_en: &str, value_html: &str) {
    let _ = write!(
        out,
        "<div class=\"fact\"><dt>{} <span class=\"en\">{}</span></dt><dd>{}</dd></div>",
        esc(label_zh),
        esc(label_en),
        value_html
    );
}

fn or_dash(text: &str) -> String {
    if text.trim().is_empty() {
        "—".into()
    } else {
        esc(text)
    }
}

fn time_or_dash(ms: i64) -> String {
    if ms == 0 {
        "—".into()
    } else {
        esc(&cst(ms))
    }
}

/// The report page of a view (the node's copy, or a token's content when `status` is
/// unspecified).
fn render(app: &App, view: &pb::ReportView, recall: &[String], banner: Option<Banner>) -> Response {
    let names = Names::of(&app.node);
    let report = view.report.clone().unwrap_or_default();
    let id = &view.report_id;
    let issuer = ids::parse_report_id(id).map(|(m, _)| m).unwrap_or_default();
    let (market_zh, market_latin) = names.market(&issuer);
    let held = view.status != pb::ReportStatus::Unspecified as i32;
    let revoked = view.status == pb::ReportStatus::StatusRevoked as i32;
    let positive = html::is_positive(report.result);
    let (result_zh, result_en) = html::result_label(report.result);
    let (status_zh, status_en, status_tone) = html::status_label(view.status);
    let (lead_zh, lead_en, hero_tone) = html::headline(view.status, report.result);
    let mut b = String::new();

    // The answer first: the product, what the report means now, and the test result when
    // that is not the same thing (a revoked or expired report that tested negative).
    let _ = write!(
        b,
        r#"<section class="hero {hero_tone}" data-status="{status}">
<div class="badge">{mark}</div>
<div><h1 class="product">{product}</h1>
<p class="result">{lead_zh} <span class="en">{lead_en}</span></p>"#,
        status = esc(super::json::status_name(view.status)),
        mark = if revoked {
            r#"<span class="mark revoked" aria-hidden="true">⊘</span>"#
        } else {
            html::result_mark(report.result)
        },
        product = or_dash(&report.product),
        lead_zh = esc(lead_zh),
        lead_en = esc(lead_en),
    );
    if lead_zh != result_zh {
        let _ = write!(
            b,
            r#"<p class="tested">检测结果：{} <span class="en">Tested: {}</span></p>"#,
            esc(result_zh),
            esc(result_en)
        );
    }
    if held {
        let _ = write!(
            b,
            r#"<p class="status tone-{status_tone}">状态：{} <span class="en">{}</span></p>"#,
            esc(status_zh),
            esc(status_en)
        );
    }
    b.push_str("</div></section>\n");
    if revoked {
        let by = names.market(&view.revoked_by).0.to_string();
        let by = if view.revoked_by == ids::REGULATOR_LOG {
            "监管部门".to_string()
        } else {
            by
        };
        let _ = write!(
            b,
            r#"<section class="banner tone-bad revoked-note"><strong>此报告已撤销</strong>，不能再作为入场凭证。
<span class="en">This report was revoked and no longer admits goods.</span>
<p>撤销原因 <span class="en">Reason</span>：{}（{}）</p></section>"#,
            or_dash(&view.revoked_reason),
            esc(&by)
        );
    }
    if let Some(banner) = banner {
        let _ = writeln!(
            b,
            "<section class=\"banner tone-{}\">{}</section>",
            banner.tone, banner.html
        );
    }
    if !recall.is_empty() {
        let markets: Vec<String> = recall.iter().map(|m| esc(names.market(m).0)).collect();
        let _ = write!(
            b,
            r#"<section class="banner tone-bad recall"><strong>需召回</strong>：以下市场已接收此批货物，须查找并下架：{}
<span class="en">Goods accepted on this report must be recalled at these markets.</span></section>"#,
            markets.join("、")
        );
    }

    // What was tested, item by item.
    b.push_str(
        "<section class=\"card\"><h2>检测项目 <span class=\"en\">Tests</span></h2><ul class=\"items\">",
    );
    for item in &report.items {
        let (r_zh, r_en) = html::result_label(item.result);
        let tone = if html::is_positive(item.result) {
            "fail"
        } else {
            "pass"
        };
        let value = if item.value.is_empty() {
            "—".to_string()
        } else {
            format!("{} {}", esc(&item.value), esc(&item.unit))
        };
        let limit = if item.limit.is_empty() {
            "—".to_string()
        } else {
            format!("{} {}", esc(&item.limit), esc(&item.unit))
        };
        let _ = write!(
            b,
            concat!(
                r#"<li class="item {tone}"><div class="item-head">{mark}"#,
                r#"<span class="item-name">{name}</span>"#,
                r#"<span class="item-result">{r_zh} <span class="en">{r_en}</span></span>"#,
                r#"</div><dl class="facts">"#
            ),
            tone = tone,
            mark = html::result_mark(item.result),
            name = or_dash(&item.name),
            r_zh = esc(r_zh),
            r_en = esc(r_en),
        );
        fact(&mut b, "检测方法", "Method", &or_dash(&item.method));
        fact(&mut b, "检测值", "Value", &value);
        fact(&mut b, "限值", "Limit", &limit);
        b.push_str("</dl></li>");
    }
    if report.items.is_empty() {
        b.push_str("<li>—</li>");
    }
    b.push_str("</ul></section>\n");

    // The goods.
    b.push_str(
        "<section class=\"card\"><h2>商品 <span class=\"en\">Goods</span></h2><dl class=\"facts\">",
    );
    fact(&mut b, "品名", "Product", &or_dash(&report.product));
    let category = names.category(&report.category).map_or_else(
        || esc(&report.category),
        |zh| {
            format!(
                "{} <span class=\"en\">{}</span>",
                esc(zh),
                esc(&report.category)
            )
        },
    );
    fact(&mut b, "类别", "Category", &category);
    fact(&mut b, "产地", "Origin", &or_dash(&report.origin));
    fact(&mut b, "批次号", "Lot", &or_dash(&report.lot_id));
    fact(
        &mut b,
        "批次数量",
        "Quantity",
        &esc(&html::quantity(report.quantity.as_ref())),
    );
    fact(
        &mut b,
        "样品袋编号",
        "Sample bag",
        &or_dash(&report.bag_code),
    );
    b.push_str("</dl></section>\n");

    // Where and when.
    b.push_str(
        "<section class=\"card\"><h2>检测地点与时间 <span class=\"en\">Where and when</span></h2>\
         <dl class=\"facts\">",
    );
    fact(
        &mut b,
        "检测市场",
        "Market",
        &format!(
            "{} <span class=\"en\">{}</span>",
            esc(market_zh),
            esc(market_latin)
        ),
    );
    fact(&mut b, "摊位", "Stall", &or_dash(&report.stall_code));
    fact(
        &mut b,
        "采样时间",
        "Sampled",
        &time_or_dash(report.sampled_at_ms),
    );
    fact(
        &mut b,
        "检测时间",
        "Tested",
        &time_or_dash(report.tested_at_ms),
    );
    fact(
        &mut b,
        "签发时间",
        "Issued",
        &time_or_dash(view.issued_at_ms),
    );
    let until = if positive {
        "—（疑似不合格，不作入场凭证）".to_string()
    } else if view.valid_until_ms == 0 {
        "—".to_string()
    } else {
        format!(
            "{}（此刻之前有效 <span class=\"en\">exclusive</span>）",
            esc(&cst(view.valid_until_ms))
        )
    };
    fact(&mut b, "有效期至", "Valid until", &until);
    fact(&mut b, "检测员", "Tester", &or_dash(&report.tester));
    b.push_str("</dl></section>\n");

    // Where the goods went.
    if held {
        b.push_str("<section class=\"card\"><h2>货物去向 <span class=\"en\">Where the goods were accepted</span></h2>");
        let _ = write!(
            b,
            "<p>已入场 <span class=\"en\">Drawn</span>：{}；剩余 <span class=\"en\">Left</span>：{}{}</p>",
            esc(&html::quantity(view.drawn.as_ref())),
            esc(&html::quantity(view.remaining.as_ref())),
            if view.overdrawn {
                "<strong class=\"bad\">（超量引用 overdrawn）</strong>"
            } else {
                ""
            }
        );
        if view.intakes.is_empty() {
            b.push_str(
                "<p class=\"muted\">尚无其他市场的入场记录。\
                 <span class=\"en\">No intake recorded yet.</span></p>",
            );
        } else {
            b.push_str("<ul class=\"intakes\">");
            for i in &view.intakes {
                let (zh, latin) = names.market(&i.market);
                let decision = if i.accepted {
                    "<span class=\"ok\">✓ 接收</span>".to_string()
                } else {
                    let reasons: Vec<String> = i
                        .reasons
                        .iter()
                        .map(|r| esc(html::reason_label(r.code)))
                        .collect();
                    format!(
                        "<span class=\"bad\">✗ 拒收</span>（{}）",
                        reasons.join("、")
                    )
                };
                let _ = write!(
                    b,
                    "<li><strong>{}</strong> <span class=\"en\">{}</span> · {} · {} · {}</li>",
                    esc(zh),
                    esc(latin),
                    decision,
                    esc(&html::quantity(i.quantity.as_ref())),
                    time_or_dash(i.time_ms)
                );
            }
            b.push_str("</ul>");
        }
        b.push_str("</section>\n");
    }

    // A positive lot must be destroyed or made harmless.
    if positive && held {
        b.push_str("<section class=\"card\"><h2>处置 <span class=\"en\">Disposal</span></h2>");
        match &view.disposal {
            Some(d) => {
                b.push_str("<dl class=\"facts\">");
                fact(&mut b, "方式", "Method", &esc(html::disposal_label(d.method)));
                fact(&mut b, "执行", "By", &or_dash(&d.by));
                fact(&mut b, "时间", "When", &time_or_dash(d.disposed_at_ms));
                fact(
                    &mut b,
                    "已报告监管部门",
                    "Reported to the regulator",
                    if d.reported_to_regulator { "是 yes" } else { "否 no" },
                );
                fact(&mut b, "备注", "Note", &or_dash(&d.note));
                b.push_str("</dl>");
            }
            None => b.push_str(
                "<p class=\"bad\">尚未记录处置，货物须销毁或无害化处理。<span class=\"en\">No disposal \
                 recorded yet.</span></p>",
            ),
        }
        b.push_str("</section>\n");
    }

    // Identity of the record, and its code.
    let hash = view
        .entry
        .as_ref()
        .map(|e| hex::encode(&format::entry_hash(&e.body)[..8]))
        .unwrap_or_default();
    let _ = write!(b, r#"<section class="card ident"><dl class="facts">"#);
    fact(
        &mut b,
        "报告编号",
        "Report id",
        &format!("<code>{}</code>", esc(id)),
    );
    if !hash.is_empty() {
        fact(
            &mut b,
            "记录摘要",
            "Entry hash",
            &format!("<code>{}…</code>", esc(&hash)),
        );
    }
    b.push_str("</dl>");
    if held {
        let _ = write!(
            b,
            r#"<img class="qr" src="/r/{id}/qr.svg" alt="报告二维码 QR code of report {id}" width="160" height="160">
<p class="links"><a href="/r/{id}/qr.png">二维码图片 PNG</a> · <a href="/api/reports/{id}">JSON</a></p>"#,
            id = esc(id)
        );
    }
    b.push_str("</section>\n");

    let title = format!(
        "{} · {} · {}",
        report.product,
        lead_zh,
        if market_zh.is_empty() { id } else { market_zh }
    );
    html::page(StatusCode::OK, &title, &b)
}

/// The QR content of a report this node holds: a link to this node's lookup page with the
/// report's token in it.
fn qr_content(app: &App, id: &str) -> Result<String, HttpError> {
    check_id(id)?;
    let view = views::report(&app.node, id, app.node.clock().now_ms())?;
    let entry = view
        .entry
        .ok_or_else(|| HttpError::NotFound(format!("report {id} has no stored entry")))?;
    let token = token::encode(&entry);
    let base = (!app.public_base.is_empty()).then_some(app.public_base.as_str());
    Ok(huren_client::qr::content(&token, base))
}

fn image(kind: &'static str, bytes: Vec<u8>) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn qr(
    app: &App,
    id: Result<Path<String>, PathRejection>,
    draw: impl Fn(&str) -> Result<(&'static str, Vec<u8>), huren_client::qr::QrError>,
) -> Response {
    let Ok(Path(id)) = id else {
        return HttpError::BadRequest("unreadable path".into()).json();
    };
    let content = match qr_content(app, &id) {
        Ok(c) => c,
        Err(e) => return e.json(),
    };
    match draw(&content) {
        Ok((kind, bytes)) => image(kind, bytes),
        Err(e) => HttpError::Internal(format!("QR code of {id}: {e}")).json(),
    }
}

/// `GET /r/{id}/qr.png`.
pub(super) async fn qr_png(
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    qr(&app, id, |c| Ok(("image/png", huren_client::qr::png(c)?)))
}

/// `GET /r/{id}/qr.svg`.
pub(super) async fn qr_svg(
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    qr(&app, id, |c| {
        Ok(("image/svg+xml", huren_client::qr::svg(c)?.into_bytes()))
    })
}
