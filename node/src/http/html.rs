//! Writing HTML safely: escaping, filling the embedded templates, the common page frame, and
//! the Chinese words for statuses, results, units and verdict reasons. Every piece of ledger
//! data (product names, stall codes, reasons) is data, never markup: it reaches a page only
//! through [`esc`]. Templates are filled in one pass, so a value is never searched for
//! placeholders itself.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use huren_proto::pb;

const PAGE: &str = include_str!("assets/page.html");

/// The content security policy of every page: only this node's own styles, scripts, images
/// and event stream, no inline script, no frames.
pub(super) const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Escapes text for an HTML element or a quoted attribute.
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Fills `{{name}}` placeholders of `template` with `values`, in one left-to-right pass. The
/// values must already be HTML (escaped where they hold data). An unknown placeholder stays
/// as it is.
pub(super) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = &after[..end];
                match values.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push_str("{{");
                        out.push_str(name);
                        out.push_str("}}");
                    }
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// A whole page in the common frame, with `status` and the page headers.
pub(super) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = fill(PAGE, &[("title", &esc(title)), ("body", body)]);
    respond(status, html)
}

/// An HTML answer with the headers every page carries.
pub(super) fn respond(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A report status in Chinese and English, and the CSS class of its tone.
pub(super) fn status_label(status: i32) -> (&'static str, &'static str, &'static str) {
    use pb::ReportStatus as S;
    match S::try_from(status) {
        Ok(S::Valid) => ("有效", "Valid", "ok"),
        Ok(S::StatusExpired) => ("已过期", "Expired", "muted"),
        Ok(S::StatusRevoked) => ("已撤销", "Revoked", "bad"),
        Ok(S::PositivePendingDisposal) => {
            ("疑似不合格，待处置", "Positive, disposal pending", "bad")
        }
        Ok(S::PositiveDisposed) => ("疑似不合格，已处置", "Positive, disposed of", "bad"),
        Ok(S::Exhausted) => ("批次已全部入场", "Lot fully drawn", "muted"),
        Ok(S::Overdrawn) => ("超量引用", "Overdrawn", "bad"),
        Ok(S::Forked) => ("账本分叉，不可信", "Issuer's log forked", "bad"),
        _ => ("未知", "Unknown", "muted"),
    }
}

/// True for a positive (suspected fail) result.
pub(super) fn is_positive(result: i32) -> bool {
    result == pb::TestResult::Positive as i32
}

/// A test result in Chinese and English.
pub(super) fn result_label(result: i32) -> (&'static str, &'static str) {
    match pb::TestResult::try_from(result) {
        Ok(pb::TestResult::Negative) => ("合格", "Pass"),
        Ok(pb::TestResult::Positive) => ("疑似不合格", "Suspected fail"),
        _ => ("未定", "Unspecified"),
    }
}

/// What a report page leads with, in Chinese and English, and the hero's tone class (`pass`,
/// `fail` or `revoked`): the test result while the report is valid (or its status is not
/// known, as for a token read offline), otherwise what the report is now. A revoked report
/// that tested negative must never read 合格 at the top of its page.
pub(super) fn headline(status: i32, result: i32) -> (&'static str, &'static str, &'static str) {
    use pb::ReportStatus as S;
    match S::try_from(status) {
        Ok(S::StatusRevoked) => ("已撤销", "Revoked", "revoked"),
        Ok(S::StatusExpired) => ("已过期", "Expired", "revoked"),
        Ok(S::Exhausted) => ("已用完", "Lot used up", "revoked"),
        Ok(S::PositivePendingDisposal | S::PositiveDisposed) => {
            ("疑似不合格", "Suspected fail", "fail")
        }
        Ok(S::Overdrawn) => ("超量引用", "Overdrawn", "fail"),
        Ok(S::Forked) => ("不可信", "Untrusted: log forked", "fail"),
        _ => {
            let (zh, en) = result_label(result);
            (zh, en, if is_positive(result) { "fail" } else { "pass" })
        }
    }
}

/// The mark that tells pass from fail by shape: a tick in a circle, a cross in a diamond.
pub(super) fn result_mark(result: i32) -> &'static str {
    if is_positive(result) {
        r#"<span class="mark fail" aria-hidden="true"><span>✗</span></span>"#
    } else {
        r#"<span class="mark pass" aria-hidden="true">✓</span>"#
    }
}

/// A unit as people in the markets write it.
pub(super) fn unit_zh(unit: &str) -> &str {
    match unit {
        "kg" => "公斤",
        "g" => "克",
        "jin" => "斤",
        "t" => "吨",
        "piece" => "件",
        other => other,
    }
}

/// A quantity as text, e.g. `120 公斤`.
pub(super) fn quantity(q: Option<&pb::Quantity>) -> String {
    q.map_or_else(
        || "—".into(),
        |q| format!("{} {}", q.amount, unit_zh(&q.unit)),
    )
}

/// A disposal method in Chinese.
pub(super) fn disposal_label(method: i32) -> &'static str {
    match pb::DisposalMethod::try_from(method) {
        Ok(pb::DisposalMethod::Destroyed) => "销毁",
        Ok(pb::DisposalMethod::MadeHarmless) => "无害化处理",
        _ => "未说明",
    }
}

/// A verdict reason in Chinese.
pub(super) fn reason_label(code: i32) -> &'static str {
    use pb::Reason as R;
    match R::try_from(code) {
        Ok(R::UnknownIssuer) => "签发市场不在互认名单中",
        Ok(R::IssuerSuspended) => "签发市场已被暂停",
        Ok(R::BadSignature) => "签名无效",
        Ok(R::NotSeenHere) => "本市场尚未收到",
        Ok(R::Revoked) => "已撤销",
        Ok(R::Expired) => "已过有效期",
        Ok(R::NotYetValid) => "尚未生效",
        Ok(R::PositiveResult) => "检测结果疑似不合格",
        Ok(R::RequiredItemMissing) => "缺少必检项目",
        Ok(R::ProductMismatch) => "品名不符",
        Ok(R::CategoryMismatch) => "类别不符",
        Ok(R::InsufficientQuantity) => "数量不足",
        Ok(R::IssuerLogForked) => "签发市场账本分叉",
        Ok(R::UnknownCategory) => "类别不在规则中",
        _ => "其他原因",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_turns_markup_into_text_and_keeps_chinese() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & '菜豆'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;菜豆&#39;"
        );
    }

    #[test]
    fn a_page_leads_with_the_current_status_not_a_stale_pass() {
        use pb::{ReportStatus as S, TestResult as R};
        let pass = R::Negative as i32;
        let cases = [
            (S::Valid, pass, "合格", "pass"),
            (S::Unspecified, pass, "合格", "pass"),
            (S::Valid, R::Positive as i32, "疑似不合格", "fail"),
            (S::StatusRevoked, pass, "已撤销", "revoked"),
            (S::StatusExpired, pass, "已过期", "revoked"),
            (S::Exhausted, pass, "已用完", "revoked"),
            (
                S::PositivePendingDisposal,
                R::Positive as i32,
                "疑似不合格",
                "fail",
            ),
            (S::Overdrawn, pass, "超量引用", "fail"),
            (S::Forked, pass, "不可信", "fail"),
        ];
        for (status, result, zh, tone) in cases {
            let (got_zh, _, got_tone) = headline(status as i32, result);
            assert_eq!((got_zh, got_tone), (zh, tone), "{status:?}");
        }
    }

    #[test]
    fn templates_are_filled_once_and_values_are_not_rescanned() {
        let out = fill(
            "<h1>{{title}}</h1>{{body}}{{unknown}}",
            &[("title", "{{body}}"), ("body", "<p>x</p>")],
        );
        assert_eq!(out, "<h1>{{body}}</h1><p>x</p>{{unknown}}");
        assert_eq!(fill("a {{b", &[("b", "x")]), "a {{b");
    }
}
