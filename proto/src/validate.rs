//! Field-by-field validation of events. A node runs it before it signs anything and again on
//! every entry it receives, so a malformed event never enters any log. Each error names the
//! field at fault in the request's own terms (for example `report.quantity.amount`).

use crate::ids;
use crate::pb::{event::Kind, Event, ReportIssued, TestItem, TestResult};
use crate::quantity;

/// Longest free-text field (product, origin, reason, ...), in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// Longest code field (stall, lot, bag, item code), in characters.
pub const MAX_CODE_CHARS: usize = 64;
/// Most test items on one report.
pub const MAX_ITEMS: usize = 32;
/// Most reasons on one rejected intake.
pub const MAX_REASONS: usize = 32;
/// Longest client request id, in characters.
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// A field that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Dotted path of the field, e.g. `report.items[2].method`.
    pub field: String,
    /// What is wrong, in a sentence.
    pub message: String,
}

fn fail(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// The clock a check runs against: now, and how far ahead a claimed time may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    /// The checker's clock, UTC ms.
    pub now_ms: i64,
    /// Allowed clock skew, ms.
    pub skew_ms: i64,
}

fn text(field: &str, value: &str, max: usize, required: bool) -> Result<(), FieldError> {
    if required && value.trim().is_empty() {
        return Err(fail(field, "must not be empty"));
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(fail(
            field,
            format!("is {chars} characters, at most {max} allowed"),
        ));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(fail(field, "must not contain control characters"));
    }
    if value.chars().any(is_invisible_format) {
        return Err(fail(
            field,
            "must not contain invisible or direction-changing characters (such as U+200B or U+202E)",
        ));
    }
    Ok(())
}

fn code(field: &str, value: &str) -> Result<(), FieldError> {
    text(field, value, MAX_CODE_CHARS, true)?;
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
    {
        return Err(fail(
            field,
            "may hold only ASCII letters, digits and - _ . /",
        ));
    }
    Ok(())
}

/// Unicode format characters that change how text reads without showing: zero-width spaces
/// and joiners, direction marks, embeddings, overrides and isolates, the word joiner and the
/// byte-order mark. A name that hides one looks equal to another and is not.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{00AD}')
}

/// A decimal string as an integer of 10^-12 units, for exact comparison; `None` if it is not
/// a decimal [`decimal`] accepts.
fn decimal_value(value: &str) -> Option<i128> {
    let (negative, body) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (whole, frac) = body.split_once('.').unwrap_or((body, ""));
    if whole.is_empty() || whole.len() > 12 || frac.len() > 12 {
        return None;
    }
    let whole: i128 = whole.parse().ok()?;
    let mut scaled = whole * 1_000_000_000_000;
    if !frac.is_empty() {
        let digits: i128 = frac.parse().ok()?;
        scaled += digits * 10i128.pow(12 - frac.len() as u32);
    }
    Some(if negative { -scaled } else { scaled })
}

fn decimal(field: &str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() {
        return Ok(());
    }
    let body = value.strip_prefix('-').unwrap_or(value);
    let (whole, frac) = body.split_once('.').unwrap_or((body, "0"));
    let digits = |s: &str| !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(frac) {
        return Err(fail(field, format!("{value:?} is not a decimal number")));
    }
    Ok(())
}

fn time(field: &str, ms: i64, bounds: Option<TimeBounds>) -> Result<(), FieldError> {
    if ms <= 0 {
        return Err(fail(
            field,
            "must be set (milliseconds since 1970-01-01T00:00:00Z)",
        ));
    }
    if let Some(b) = bounds {
        if ms > b.now_ms.saturating_add(b.skew_ms) {
            return Err(fail(
                field,
                "is in the future beyond the allowed clock skew",
            ));
        }
    }
    Ok(())
}

/// The overall result that a report's items imply: positive if any item is positive.
pub fn overall_result(items: &[TestItem]) -> TestResult {
    if items
        .iter()
        .any(|i| i.result == TestResult::Positive as i32)
    {
        TestResult::Positive
    } else {
        TestResult::Negative
    }
}

/// Validates a rapid-test report. `bounds`, when given, refuses times in the future.
///
/// # Errors
/// The first [`FieldError`] found, with fields prefixed `report.`.
pub fn report(r: &ReportIssued, bounds: Option<TimeBounds>) -> Result<(), FieldError> {
    code("report.stall_code", &r.stall_code)?;
    if r.stall_code.len() == 11
        && r.stall_code.starts_with('1')
        && r.stall_code.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(fail(
            "report.stall_code",
            "looks like a phone number; use the stall's code",
        ));
    }
    text("report.product", &r.product, MAX_TEXT_CHARS, true)?;
    text("report.category", &r.category, MAX_CODE_CHARS, true)?;
    if !r
        .category
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        return Err(fail(
            "report.category",
            "must be a category code (lowercase letters and _)",
        ));
    }
    text("report.origin", &r.origin, MAX_TEXT_CHARS, false)?;
    code("report.lot_id", &r.lot_id)?;
    let quantity = r
        .quantity
        .as_ref()
        .ok_or_else(|| fail("report.quantity", "must be set"))?;
    quantity::parse(quantity).map_err(|e| {
        let field = match e {
            quantity::QuantityError::UnknownUnit(_) => "report.quantity.unit",
            _ => "report.quantity.amount",
        };
        fail(field, e.to_string())
    })?;
    code("report.bag_code", &r.bag_code)?;
    time("report.sampled_at", r.sampled_at_ms, bounds)?;
    time("report.tested_at", r.tested_at_ms, bounds)?;
    if r.tested_at_ms < r.sampled_at_ms {
        return Err(fail("report.tested_at", "is before report.sampled_at"));
    }
    text("report.tester", &r.tester, MAX_TEXT_CHARS, true)?;
    if r.items.is_empty() {
        return Err(fail("report.items", "must hold at least one test item"));
    }
    if r.items.len() > MAX_ITEMS {
        return Err(fail("report.items", format!("at most {MAX_ITEMS} items")));
    }
    for (i, item) in r.items.iter().enumerate() {
        let at = |f: &str| format!("report.items[{i}].{f}");
        code(&at("code"), &item.code)?;
        text(&at("name"), &item.name, MAX_TEXT_CHARS, true)?;
        text(&at("method"), &item.method, MAX_TEXT_CHARS, true)?;
        decimal(&at("value"), &item.value)?;
        text(&at("unit"), &item.unit, MAX_CODE_CHARS, false)?;
        decimal(&at("limit"), &item.limit)?;
        if !matches!(
            TestResult::try_from(item.result),
            Ok(TestResult::Negative | TestResult::Positive)
        ) {
            return Err(fail(at("result"), "must be NEGATIVE or POSITIVE"));
        }
        item_against_limit(item, &at)?;
    }
    let expected = overall_result(&r.items);
    if r.result != expected as i32 {
        return Err(fail(
            "report.result",
            format!(
                "contradicts the items, which make it {}",
                expected.as_str_name()
            ),
        ));
    }
    Ok(())
}

/// A measured value and its limit decide an item's result where they differ: above the limit
/// is positive, below it negative. At the limit itself the method decides (an
/// enzyme-inhibition rate of exactly 50 % is positive; an acid value at its limit is not), so
/// either result stands there.
fn item_against_limit(item: &TestItem, at: &dyn Fn(&str) -> String) -> Result<(), FieldError> {
    let (Some(value), Some(limit)) = (decimal_value(&item.value), decimal_value(&item.limit))
    else {
        if decimal_value(&item.value).is_some_and(|v| v < 0) {
            return Err(fail(at("value"), "a measured value cannot be negative"));
        }
        return Ok(());
    };
    if value < 0 {
        return Err(fail(at("value"), "a measured value cannot be negative"));
    }
    let positive = item.result == TestResult::Positive as i32;
    if value > limit && !positive {
        return Err(fail(
            at("result"),
            format!(
                "value {} is over the limit {}, so the item is POSITIVE",
                item.value, item.limit
            ),
        ));
    }
    if value < limit && positive {
        return Err(fail(
            at("result"),
            format!(
                "value {} is under the limit {}, so the item is NEGATIVE",
                item.value, item.limit
            ),
        ));
    }
    Ok(())
}

/// Validates a client request id (empty means "no idempotency").
///
/// # Errors
/// [`FieldError`] on `request_id`.
pub fn request_id(id: &str) -> Result<(), FieldError> {
    text("request_id", id, MAX_REQUEST_ID_CHARS, false)
}

fn report_ref(field: &str, id: &str) -> Result<(), FieldError> {
    ids::parse_report_id(id)
        .map(|_| ())
        .map_err(|m| fail(field, m))
}

fn quantity_field(field: &str, q: Option<&crate::pb::Quantity>) -> Result<(), FieldError> {
    let q = q.ok_or_else(|| fail(field, "must be set"))?;
    quantity::parse(q)
        .map(|_| ())
        .map_err(|e| fail(field, e.to_string()))
}

/// Validates any event, standalone (without ledger state).
///
/// # Errors
/// The first [`FieldError`] found.
pub fn event(event: &Event, bounds: Option<TimeBounds>) -> Result<(), FieldError> {
    let kind = event
        .kind
        .as_ref()
        .ok_or_else(|| fail("event", "must be set"))?;
    match kind {
        Kind::ReportIssued(r) => report(r, bounds),
        Kind::ReportRevoked(r) => {
            report_ref("report_id", &r.report_id)?;
            text("reason", &r.reason, MAX_TEXT_CHARS, true)
        }
        Kind::IntakeAccepted(i) => {
            report_ref("report_id", &i.report_id)?;
            quantity_field("quantity", i.quantity.as_ref())?;
            text("product", &i.product, MAX_TEXT_CHARS, false)
        }
        Kind::IntakeRejected(i) => {
            report_ref("report_id", &i.report_id)?;
            text("product", &i.product, MAX_TEXT_CHARS, false)?;
            if i.reasons.is_empty() || i.reasons.len() > MAX_REASONS {
                return Err(fail(
                    "reasons",
                    format!("must hold 1 to {MAX_REASONS} reasons"),
                ));
            }
            for (n, reason) in i.reasons.iter().enumerate() {
                text(
                    &format!("reasons[{n}].detail"),
                    &reason.detail,
                    MAX_TEXT_CHARS * 2,
                    false,
                )?;
            }
            Ok(())
        }
        Kind::DisposalRecorded(d) => {
            report_ref("disposal.report_id", &d.report_id)?;
            if !matches!(
                crate::pb::DisposalMethod::try_from(d.method),
                Ok(crate::pb::DisposalMethod::Destroyed | crate::pb::DisposalMethod::MadeHarmless)
            ) {
                return Err(fail(
                    "disposal.method",
                    "must be DESTROYED or MADE_HARMLESS",
                ));
            }
            text("disposal.by", &d.by, MAX_TEXT_CHARS, true)?;
            time("disposal.disposed_at", d.disposed_at_ms, bounds)?;
            text("disposal.note", &d.note, MAX_TEXT_CHARS * 2, false)
        }
        Kind::MarketAdmitted(a) => {
            let m = a
                .market
                .as_ref()
                .ok_or_else(|| fail("market", "must be set"))?;
            market(m)
        }
        Kind::KeyRotated(k) => {
            if !ids::is_market_id(&k.market) {
                return Err(fail("market", "is not a market id"));
            }
            crate::format::parse_public_key(&k.new_public_key)
                .map_err(|e| fail("new_public_key", e.to_string()))?;
            if k.effective_seq == 0 {
                return Err(fail("effective_seq", "must be 1 or more"));
            }
            Ok(())
        }
        Kind::MarketSuspended(s) => {
            if !ids::is_market_id(&s.market) {
                return Err(fail("market", "is not a market id"));
            }
            if s.from_seq == 0 {
                return Err(fail("from_seq", "must be 1 or more"));
            }
            text("reason", &s.reason, MAX_TEXT_CHARS, true)
        }
        Kind::RulesPublished(p) => {
            let rules = p
                .rules
                .as_ref()
                .ok_or_else(|| fail("rules", "must be set"))?;
            crate::rules::validate(rules)
        }
    }
}

/// Validates a market record (trust list or admission).
///
/// # Errors
/// [`FieldError`] on `market.*`.
pub fn market(m: &crate::pb::Market) -> Result<(), FieldError> {
    if !ids::is_market_id(&m.id) {
        return Err(fail(
            "market.id",
            "must be 1 to 32 lowercase ASCII letters or digits",
        ));
    }
    text("market.name_zh", &m.name_zh, MAX_CODE_CHARS, true)?;
    text("market.name_latin", &m.name_latin, MAX_CODE_CHARS, true)?;
    crate::format::parse_public_key(&m.public_key)
        .map_err(|e| fail("market.public_key", e.to_string()))?;
    address("market.grpc_addr", &m.grpc_addr)?;
    address("market.http_addr", &m.http_addr)
}

/// An optional network address: empty, or `http://` / `https://` followed by a host and port
/// made of URL-safe characters only (it becomes the base of links in QR codes).
fn address(field: &str, value: &str) -> Result<(), FieldError> {
    text(field, value, MAX_TEXT_CHARS, false)?;
    if value.is_empty() {
        return Ok(());
    }
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .ok_or_else(|| fail(field, "must start with http:// or https://"))?;
    let ok = !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]/".contains(&b));
    if !ok {
        return Err(fail(
            field,
            "must be a plain host and port, like http://10.0.0.2:7101",
        ));
    }
    Ok(())
}

/// Validates a required free-text field of a request (a product name, say): not empty, at
/// most [`MAX_TEXT_CHARS`] characters, no control characters.
///
/// # Errors
/// [`FieldError`] on `field`.
pub fn required_text(field: &str, value: &str) -> Result<(), FieldError> {
    text(field, value, MAX_TEXT_CHARS, true)
}
