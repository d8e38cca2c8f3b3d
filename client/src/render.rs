//! Human-readable text for what a node answers: reports, verdicts, intakes, traces, log
//! entries, heads, forks, status and trust lists. Times are shown in China Standard Time
//! (`huren_proto::time::cst`), Chinese names as they are, and columns are aligned by display
//! width, so 菜豆 takes four columns, not two characters.
//!
//! Text is only ever shortened at a character boundary and marked with `…`; codes and ids are
//! never shortened. This module decides nothing: it shows what it is given, and never shows a
//! key or a token except the portable token a user asked for.

use std::fmt::Write as _;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use huren_proto::pb::{self, event::Kind};

/// Display width of `text` in terminal columns (CJK characters take two).
pub fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// `text` padded on the right with spaces to `columns` display columns (never cut).
pub fn pad(text: &str, columns: usize) -> String {
    let mut out = text.to_string();
    out.extend(std::iter::repeat_n(
        ' ',
        columns.saturating_sub(width(text)),
    ));
    out
}

/// `text` cut to at most `columns` display columns at a character boundary, ending in `…`
/// when something was left out.
pub fn fit(text: &str, columns: usize) -> String {
    if width(text) <= columns {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        // Keep one column for the ellipsis.
        if used + w + 1 > columns {
            break;
        }
        out.push(c);
        used += w;
    }
    if columns > 0 {
        out.push('…');
    }
    out
}

/// Lines of cells, each column padded to its widest cell; the last column is not padded.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| width(s))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&pad(cell, widths[c]));
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// An instant in CST, or "-" for 0 (unset).
pub fn time(ms: i64) -> String {
    if ms == 0 {
        "-".into()
    } else {
        huren_proto::time::cst(ms)
    }
}

/// "12.5 kg", or "-" when absent.
pub fn quantity(q: Option<&pb::Quantity>) -> String {
    match q {
        Some(q) if !q.amount.is_empty() => format!("{} {}", q.amount, q.unit),
        _ => "-".into(),
    }
}

/// The first 16 hex digits of a hash, as logs and tables show it.
pub fn short_hash(hash: &[u8]) -> String {
    if hash.is_empty() {
        return "-".into();
    }
    let text = hex::encode(hash);
    text[..text.len().min(16)].to_string()
}

/// A report status as a word.
pub fn status_label(status: i32) -> &'static str {
    use pb::ReportStatus as S;
    match S::try_from(status) {
        Ok(S::Valid) => "VALID",
        Ok(S::StatusExpired) => "EXPIRED",
        Ok(S::StatusRevoked) => "REVOKED",
        Ok(S::PositivePendingDisposal) => "POSITIVE (disposal pending)",
        Ok(S::PositiveDisposed) => "POSITIVE (disposed of)",
        Ok(S::Exhausted) => "EXHAUSTED",
        Ok(S::Overdrawn) => "OVERDRAWN",
        Ok(S::Forked) => "FORKED",
        _ => "UNKNOWN",
    }
}

/// A verdict reason code's name, as in the protocol (e.g. `BAD_SIGNATURE`).
pub fn reason_label(code: i32) -> &'static str {
    pb::Reason::try_from(code).map_or("UNKNOWN", |r| r.as_str_name())
}

/// "NEGATIVE" or "POSITIVE".
pub fn result_label(result: i32) -> &'static str {
    match pb::TestResult::try_from(result) {
        Ok(pb::TestResult::Negative) => "NEGATIVE",
        Ok(pb::TestResult::Positive) => "POSITIVE",
        _ => "UNSPECIFIED",
    }
}

/// "destroyed" or "made harmless".
pub fn disposal_label(method: i32) -> &'static str {
    match pb::DisposalMethod::try_from(method) {
        Ok(pb::DisposalMethod::Destroyed) => "destroyed",
        Ok(pb::DisposalMethod::MadeHarmless) => "made harmless",
        _ => "unspecified",
    }
}

fn value_with_unit(value: &str, unit: &str) -> String {
    match (value.is_empty(), unit.is_empty()) {
        (true, _) => "-".into(),
        (false, true) => value.into(),
        (false, false) => format!("{value} {unit}"),
    }
}

/// The test items of a report as an aligned table, indented by `indent` spaces.
pub fn items(items: &[pb::TestItem], indent: usize) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            vec![
                format!("{}{}", " ".repeat(indent), result_label(i.result)),
                format!("{} ({})", i.name, i.code),
                value_with_unit(&i.value, &i.unit),
                if i.limit.is_empty() {
                    "no limit".into()
                } else {
                    format!("limit {}", value_with_unit(&i.limit, &i.unit))
                },
                i.method.clone(),
            ]
        })
        .collect();
    table(&rows)
}

/// A report with its status, intakes, revocation and disposal.
pub fn report(view: &pb::ReportView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Report {}  {}",
        view.report_id,
        status_label(view.status)
    );
    if let Some(r) = &view.report {
        report_body(&mut out, r);
    }
    let _ = writeln!(out, "  issued      {}", time(view.issued_at_ms));
    if view.valid_until_ms != 0 {
        let _ = writeln!(
            out,
            "  valid until {} (exclusive)",
            time(view.valid_until_ms)
        );
    }
    let _ = writeln!(
        out,
        "  drawn       {}   remaining {}{}",
        quantity(view.drawn.as_ref()),
        quantity(view.remaining.as_ref()),
        if view.overdrawn { "   OVERDRAWN" } else { "" }
    );
    if !view.revoked_reason.is_empty() || !view.revoked_by.is_empty() {
        let _ = writeln!(
            out,
            "  revoked by  {}: {}",
            view.revoked_by, view.revoked_reason
        );
    }
    if let Some(d) = &view.disposal {
        out.push_str(&disposal_line(d));
    }
    if !view.intakes.is_empty() {
        out.push_str("  intakes:\n");
        out.push_str(&intakes(&view.intakes, 4));
    }
    out
}

fn report_body(out: &mut String, r: &pb::ReportIssued) {
    let origin = if r.origin.is_empty() {
        String::new()
    } else {
        format!(" from {}", r.origin)
    };
    let _ = writeln!(out, "  {} ({}){origin}", r.product, r.category);
    let _ = writeln!(
        out,
        "  stall {}   lot {}   bag {}",
        r.stall_code, r.lot_id, r.bag_code
    );
    let _ = writeln!(out, "  quantity    {}", quantity(r.quantity.as_ref()));
    let _ = writeln!(
        out,
        "  sampled     {}   tested {}   by {}",
        time(r.sampled_at_ms),
        time(r.tested_at_ms),
        r.tester
    );
    let _ = writeln!(out, "  result      {}", result_label(r.result));
    out.push_str(&items(&r.items, 4));
}

fn disposal_line(d: &pb::DisposalRecorded) -> String {
    let mut line = format!(
        "  disposal    {} by {} at {}{}",
        disposal_label(d.method),
        d.by,
        time(d.disposed_at_ms),
        if d.reported_to_regulator {
            ", reported to the regulator"
        } else {
            ", not yet reported to the regulator"
        }
    );
    if !d.note.is_empty() {
        let _ = write!(line, " ({})", d.note);
    }
    line.push('\n');
    line
}

/// Intake decisions as an aligned table.
pub fn intakes(intakes: &[pb::IntakeView], indent: usize) -> String {
    let rows: Vec<Vec<String>> = intakes
        .iter()
        .map(|i| {
            let reasons: Vec<&str> = i.reasons.iter().map(|r| reason_label(r.code)).collect();
            vec![
                format!("{}{}", " ".repeat(indent), i.market),
                format!("#{}", i.seq),
                time(i.time_ms),
                if i.accepted { "ACCEPTED" } else { "REJECTED" }.into(),
                quantity(i.quantity.as_ref()),
                reasons.join(", "),
            ]
        })
        .collect();
    table(&rows)
}

/// A verdict: VALID, or NOT VALID with every reason on its own line.
pub fn verdict(v: &pb::Verdict) -> String {
    let mut out = String::new();
    let id = if v.report_id.is_empty() {
        "(unknown report)"
    } else {
        &v.report_id
    };
    let _ = writeln!(
        out,
        "{}  {id}  (rules version {}, judged at {})",
        if v.valid { "VALID" } else { "NOT VALID" },
        v.rules_version,
        time(v.at_ms)
    );
    if v.valid_until_ms != 0 {
        let _ = writeln!(out, "  valid until {} (exclusive)", time(v.valid_until_ms));
    }
    if v.remaining.is_some() {
        let _ = writeln!(
            out,
            "  remaining   {} before this lot",
            quantity(v.remaining.as_ref())
        );
    }
    for r in &v.reasons {
        let _ = writeln!(out, "  - {}: {}", reason_label(r.code), r.detail);
    }
    out
}

/// An appended entry: the report it concerns, where it sits and its hash.
pub fn append(a: &pb::AppendResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "report  {}", a.report_id);
    let _ = writeln!(out, "entry   {} #{}", a.log, a.seq);
    let _ = writeln!(out, "hash    {}", hex::encode(&a.hash));
    if a.replayed {
        out.push_str("(this request id was used before: this is the first result; nothing new was appended)\n");
    }
    out
}

/// The outcome of an intake: ACCEPTED or REJECTED, what was recorded, and the verdict.
pub fn intake(r: &pb::IntakeResponse) -> String {
    let mut out = String::new();
    let accepted = r.verdict.as_ref().is_some_and(|v| v.valid);
    let _ = writeln!(out, "{}", if accepted { "ACCEPTED" } else { "REJECTED" });
    if let Some(v) = &r.verdict {
        out.push_str(&verdict(v));
    }
    if let Some(a) = &r.recorded {
        let _ = writeln!(
            out,
            "recorded as {} #{}  hash {}{}",
            a.log,
            a.seq,
            hex::encode(&a.hash),
            if a.replayed {
                "  (retry: nothing new appended)"
            } else {
                ""
            }
        );
    }
    out
}

/// Where a report's goods went.
pub fn trace(t: &pb::TraceResponse) -> String {
    let mut out = String::new();
    if let Some(view) = &t.report {
        let _ = writeln!(
            out,
            "Report {}  {}",
            view.report_id,
            status_label(view.status)
        );
        if let Some(r) = &view.report {
            let _ = writeln!(
                out,
                "  {} ({}), lot {} of {}, tested {}",
                r.product,
                r.category,
                r.lot_id,
                quantity(r.quantity.as_ref()),
                time(r.tested_at_ms)
            );
        }
        let _ = writeln!(
            out,
            "  drawn {}   remaining {}{}",
            quantity(view.drawn.as_ref()),
            quantity(view.remaining.as_ref()),
            if view.overdrawn { "   OVERDRAWN" } else { "" }
        );
        if !view.revoked_by.is_empty() {
            let _ = writeln!(
                out,
                "  revoked by {}: {}",
                view.revoked_by, view.revoked_reason
            );
        }
        if let Some(d) = &view.disposal {
            out.push_str(&disposal_line(d));
        }
        if view.intakes.is_empty() {
            out.push_str("  no intake at any market\n");
        } else {
            out.push_str("  intakes:\n");
            out.push_str(&intakes(&view.intakes, 4));
        }
    }
    if !t.recall_markets.is_empty() {
        let _ = writeln!(
            out,
            "RECALL: goods must be recalled at {}",
            t.recall_markets.join(", ")
        );
    }
    out
}

/// One line about an event.
pub fn event_summary(event: Option<&pb::Event>) -> String {
    let Some(kind) = event.and_then(|e| e.kind.as_ref()) else {
        return "(no event)".into();
    };
    match kind {
        Kind::ReportIssued(r) => format!(
            "report issued: {} ({}) {} stall {} {}",
            r.product,
            r.category,
            quantity(r.quantity.as_ref()),
            r.stall_code,
            result_label(r.result)
        ),
        Kind::ReportRevoked(r) => format!("report revoked: {} ({})", r.report_id, r.reason),
        Kind::IntakeAccepted(i) => format!(
            "intake accepted: {} {} {}",
            i.report_id,
            i.product,
            quantity(i.quantity.as_ref())
        ),
        Kind::IntakeRejected(i) => {
            let reasons: Vec<&str> = i.reasons.iter().map(|r| reason_label(r.code)).collect();
            format!(
                "intake rejected: {} {} {} [{}]",
                i.report_id,
                i.product,
                quantity(i.quantity.as_ref()),
                reasons.join(", ")
            )
        }
        Kind::DisposalRecorded(d) => format!(
            "disposal recorded: {} {} by {}",
            d.report_id,
            disposal_label(d.method),
            d.by
        ),
        Kind::MarketAdmitted(a) => match &a.market {
            Some(m) => format!("market admitted: {} {} ({})", m.id, m.name_zh, m.name_latin),
            None => "market admitted: (none)".into(),
        },
        Kind::KeyRotated(k) => format!(
            "key rotated: {} to {} from seq {}",
            k.market,
            hex::encode(&k.new_public_key),
            k.effective_seq
        ),
        Kind::MarketSuspended(s) => format!(
            "market suspended: {} from seq {} ({})",
            s.market, s.from_seq, s.reason
        ),
        Kind::RulesPublished(p) => match &p.rules {
            Some(r) => format!(
                "rules published: version {}, {} categories, clock skew {} s",
                r.version,
                r.categories.len(),
                r.clock_skew_ms / 1000
            ),
            None => "rules published: (none)".into(),
        },
    }
}

/// A log range, one entry per line. Entries are decoded for display only; their signatures
/// are not checked here (that is the auditor's work).
pub fn log_entries(log: &str, reply: &pb::ReadLogResponse) -> String {
    let mut rows = Vec::new();
    for signed in &reply.entries {
        let hash = huren_proto::format::entry_hash(&signed.body);
        match huren_proto::format::decode_entry(&signed.body) {
            Ok(e) => rows.push(vec![
                format!("#{}", e.seq),
                time(e.time_ms),
                short_hash(&hash),
                event_summary(e.event.as_ref()),
            ]),
            Err(err) => rows.push(vec![
                "#?".into(),
                "-".into(),
                short_hash(&hash),
                format!("undecodable entry: {err}"),
            ]),
        }
    }
    let mut out = table(&rows);
    if let Some(h) = &reply.head {
        let _ = writeln!(
            out,
            "log {log}: {} entries shown, head #{} {}{}",
            reply.entries.len(),
            h.seq,
            short_hash(&h.hash),
            if h.frozen { " FROZEN by a fork" } else { "" }
        );
    }
    out
}

/// Every log's head.
pub fn heads(heads: &[pb::Head]) -> String {
    let mut rows = vec![vec![
        "LOG".to_string(),
        "SEQ".into(),
        "HASH".into(),
        "".into(),
    ]];
    for h in heads {
        rows.push(vec![
            h.log.clone(),
            h.seq.to_string(),
            short_hash(&h.hash),
            if h.frozen { "FROZEN" } else { "" }.into(),
        ]);
    }
    table(&rows)
}

/// Recorded forks: for each, the log, seq and both entries' hashes and events.
pub fn forks(forks: &[pb::ForkEvidence]) -> String {
    if forks.is_empty() {
        return "no forks recorded\n".into();
    }
    let mut out = String::new();
    for f in forks {
        let sides = [f.first.as_ref(), f.second.as_ref()];
        let decoded: Vec<Option<pb::Entry>> = sides
            .iter()
            .map(|s| s.and_then(|s| huren_proto::format::decode_entry(&s.body).ok()))
            .collect();
        let place = decoded
            .iter()
            .flatten()
            .next()
            .map_or("?".to_string(), |e| format!("{} #{}", e.log, e.seq));
        let _ = writeln!(out, "FORK at {place}");
        for (side, entry) in sides.iter().zip(&decoded) {
            let hash = side.map_or(String::from("-"), |s| {
                short_hash(&huren_proto::format::entry_hash(&s.body))
            });
            let summary = entry.as_ref().map_or("(undecodable)".to_string(), |e| {
                format!("{}  {}", time(e.time_ms), event_summary(e.event.as_ref()))
            });
            let _ = writeln!(out, "  {hash}  {summary}");
        }
    }
    out
}

/// A node's identity and health.
pub fn status(s: &pb::StatusResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "market   {} {} ({})",
        s.market, s.name_zh, s.name_latin
    );
    let _ = writeln!(out, "version  {}", s.version);
    let _ = writeln!(out, "clock    {}", time(s.now_ms));
    let _ = writeln!(out, "reports  {}", s.reports);
    let _ = writeln!(out, "rules    version {}", s.rules_version);
    let _ = writeln!(out, "forks    {}", s.forks);
    if s.halted.is_empty() {
        out.push_str("state    appending\n");
    } else {
        let _ = writeln!(out, "state    HALTED: {}", s.halted);
    }
    out.push('\n');
    out.push_str(&heads(&s.heads));
    out
}

/// Reports as a table, newest first as given.
pub fn reports(views: &[pb::ReportView]) -> String {
    let mut rows = vec![vec![
        "ID".to_string(),
        "STATUS".into(),
        "PRODUCT".into(),
        "RESULT".into(),
        "LOT".into(),
        "REMAINING".into(),
        "TESTED".into(),
        "STALL".into(),
    ]];
    for v in views {
        let r = v.report.clone().unwrap_or_default();
        rows.push(vec![
            v.report_id.clone(),
            status_label(v.status).into(),
            fit(&r.product, 16),
            result_label(r.result).into(),
            quantity(r.quantity.as_ref()),
            quantity(v.remaining.as_ref()),
            time(r.tested_at_ms),
            r.stall_code.clone(),
        ]);
    }
    table(&rows)
}

/// A trust list and what is known of its signature.
pub fn trust_list(list: &pb::TrustList, signature: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "network        {}", list.network);
    let _ = writeln!(out, "format         {}", list.format);
    let _ = writeln!(out, "created        {}", time(list.created_ms));
    let _ = writeln!(out, "regulator key  {}", hex::encode(&list.regulator_key));
    let _ = writeln!(out, "signature      {signature}");
    let _ = writeln!(out, "markets        {}", list.markets.len());
    let mut rows = Vec::new();
    for m in &list.markets {
        rows.push(vec![
            format!("  {}", m.id),
            m.name_zh.clone(),
            m.name_latin.clone(),
            hex::encode(&m.public_key),
            m.grpc_addr.clone(),
            m.http_addr.clone(),
        ]);
    }
    out.push_str(&table(&rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_text_is_never_cut_inside_a_character() {
        let name = "有机磷和氨基甲酸酯类农药残留";
        assert_eq!(width(name), 28);
        for columns in 0..=30 {
            let cut = fit(name, columns);
            assert!(width(&cut) <= columns.max(1), "{columns}: {cut}");
            // Every character kept is a whole character of the original, in order.
            let kept = cut.trim_end_matches('…');
            assert!(name.starts_with(kept), "{columns}: {cut}");
        }
        assert_eq!(fit(name, 28), name);
        assert_eq!(fit(name, 7), "有机磷…");
        assert_eq!(fit(name, 8), "有机磷…");
        assert_eq!(fit("菜豆", 4), "菜豆");
    }

    #[test]
    fn columns_align_by_display_width() {
        let text = table(&[
            vec!["菜豆".into(), "NEGATIVE".into()],
            vec!["green beans".into(), "POSITIVE".into()],
        ]);
        let lines: Vec<&str> = text.lines().collect();
        let at = |line: &str| width(&line[..line.find("TIVE").unwrap()]);
        assert_eq!(at(lines[0]), at(lines[1]));
        assert_eq!(pad("冬枣", 6), "冬枣  ");
    }

    #[test]
    fn a_report_shows_names_times_in_cst_and_items_whole() {
        let report = crate::sample::day("shanxi", 2, 30, 1_796_313_600_000)
            .into_iter()
            .find(|r| r.category == "vegetable" || r.category == "leafy_vegetable")
            .unwrap();
        let view = pb::ReportView {
            report_id: "shanxi-3".into(),
            report: Some(report.clone()),
            status: pb::ReportStatus::Valid as i32,
            issued_at_ms: report.tested_at_ms + 1000,
            valid_until_ms: report.tested_at_ms + 48 * 3_600_000,
            ..Default::default()
        };
        let text = super::report(&view);
        assert!(text.starts_with("Report shanxi-3  VALID\n"));
        assert!(text.contains(&report.product));
        assert!(text.contains("有机磷和氨基甲酸酯类农药残留 (op-carbamate)"));
        assert!(text.contains(&huren_proto::time::cst(report.tested_at_ms)));
        assert!(text.contains(" CST"));
    }

    #[test]
    fn a_verdict_lists_every_reason() {
        let v = pb::Verdict {
            valid: false,
            reasons: vec![
                pb::VerdictReason {
                    code: pb::Reason::Expired as i32,
                    detail: "valid until 2026-12-06 06:32:00 CST (exclusive)".into(),
                },
                pb::VerdictReason {
                    code: pb::Reason::ProductMismatch as i32,
                    detail: "goods are \"冬枣\", the report covers \"菜豆\"".into(),
                },
            ],
            report_id: "shanxi-3".into(),
            ..Default::default()
        };
        let text = verdict(&v);
        assert!(text.starts_with("NOT VALID  shanxi-3"));
        assert!(text.contains("  - EXPIRED: valid until"));
        assert!(text.contains("  - PRODUCT_MISMATCH: goods are \"冬枣\""));
    }
}
