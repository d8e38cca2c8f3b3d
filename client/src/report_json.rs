//! The JSON form of a rapid-test report, as a person writes it for `huren issue --file` and as
//! `--json` prints it: times as RFC 3339 text, results as `"negative"`/`"positive"`, amounts
//! as decimal strings. It owns the conversion to and from `pb::ReportIssued`, and the parsing
//! and printing of human times that the CLI's flags share.
//!
//! It never guesses: an unknown field, a time without a date, or an unknown result is refused
//! with the field named. It does not validate the report's content; that is
//! `huren_proto::validate::report`, which the node runs again in any case.

use serde::{Deserialize, Serialize};

use huren_proto::pb;

/// Why a JSON report could not be read or converted. The message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportJsonError {
    /// Not JSON, or not of the expected shape (serde's message names the field and position).
    #[error("report JSON: {0}")]
    Syntax(String),
    /// A field's content is unusable.
    #[error("report JSON: {field}: {message}")]
    Field {
        /// Dotted path, e.g. `items[1].result`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn field_error(field: impl Into<String>, message: impl Into<String>) -> ReportJsonError {
    ReportJsonError::Field {
        field: field.into(),
        message: message.into(),
    }
}

/// A test result as written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultJson {
    /// The item (or report) passed.
    Negative,
    /// Suspected failure.
    Positive,
}

impl ResultJson {
    /// The protobuf value.
    pub fn to_pb(self) -> pb::TestResult {
        match self {
            Self::Negative => pb::TestResult::Negative,
            Self::Positive => pb::TestResult::Positive,
        }
    }

    /// From the protobuf value; `None` for an unspecified or unknown one.
    pub fn from_pb(value: i32) -> Option<Self> {
        match pb::TestResult::try_from(value) {
            Ok(pb::TestResult::Negative) => Some(Self::Negative),
            Ok(pb::TestResult::Positive) => Some(Self::Positive),
            _ => None,
        }
    }
}

/// A quantity: `{"amount": "12.5", "unit": "kg"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantityJson {
    /// Decimal text, at most three decimals.
    pub amount: String,
    /// kg, g, jin, t or piece.
    pub unit: String,
}

impl QuantityJson {
    /// The protobuf value.
    pub fn to_pb(&self) -> pb::Quantity {
        pb::Quantity {
            amount: self.amount.clone(),
            unit: self.unit.clone(),
        }
    }

    /// From the protobuf value.
    pub fn from_pb(q: &pb::Quantity) -> Self {
        Self {
            amount: q.amount.clone(),
            unit: q.unit.clone(),
        }
    }
}

/// One test item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemJson {
    /// Item code, e.g. `op-carbamate`.
    pub code: String,
    /// Name shown to people.
    pub name: String,
    /// Method standard.
    pub method: String,
    /// Measured value as decimal text; empty or absent for a qualitative test.
    #[serde(default)]
    pub value: String,
    /// Unit of value and limit.
    #[serde(default)]
    pub unit: String,
    /// Limit as decimal text; empty or absent when there is none.
    #[serde(default)]
    pub limit: String,
    /// The item's result.
    pub result: ResultJson,
}

/// A rapid-test report in JSON. `result` may be left out on input; it then follows from the
/// items. On output it is always present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportJson {
    /// The stall's code; never a vendor's name or phone number.
    pub stall_code: String,
    /// Product name, e.g. 菜豆.
    pub product: String,
    /// Category code from the rules, e.g. `vegetable`.
    pub category: String,
    /// Where the goods come from.
    #[serde(default)]
    pub origin: String,
    /// The vendor's lot id.
    pub lot_id: String,
    /// Size of the lot.
    pub quantity: QuantityJson,
    /// The sealed sample bag's code.
    pub bag_code: String,
    /// When the sample was taken (RFC 3339; a bare time is China Standard Time).
    pub sampled_at: String,
    /// When it was tested.
    pub tested_at: String,
    /// Who tested it (a lab staff code).
    pub tester: String,
    /// Test items.
    pub items: Vec<ItemJson>,
    /// Overall result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultJson>,
}

impl ReportJson {
    /// Converts to the protobuf report. A missing overall result is derived from the items
    /// with `huren_proto::validate::overall_result`; a given one is kept as written, so a
    /// contradiction is reported by validation rather than silently fixed.
    ///
    /// # Errors
    /// [`ReportJsonError::Field`] for an unreadable time.
    pub fn to_pb(&self) -> Result<pb::ReportIssued, ReportJsonError> {
        let sampled_at_ms =
            parse_time(&self.sampled_at).map_err(|m| field_error("sampled_at", m))?;
        let tested_at_ms = parse_time(&self.tested_at).map_err(|m| field_error("tested_at", m))?;
        let items: Vec<pb::TestItem> = self
            .items
            .iter()
            .map(|i| pb::TestItem {
                code: i.code.clone(),
                name: i.name.clone(),
                method: i.method.clone(),
                value: i.value.clone(),
                unit: i.unit.clone(),
                limit: i.limit.clone(),
                result: i.result.to_pb() as i32,
            })
            .collect();
        let result = match self.result {
            Some(r) => r.to_pb(),
            None => huren_proto::validate::overall_result(&items),
        };
        Ok(pb::ReportIssued {
            stall_code: self.stall_code.clone(),
            product: self.product.clone(),
            category: self.category.clone(),
            origin: self.origin.clone(),
            lot_id: self.lot_id.clone(),
            quantity: Some(self.quantity.to_pb()),
            bag_code: self.bag_code.clone(),
            sampled_at_ms,
            tested_at_ms,
            tester: self.tester.clone(),
            items,
            result: result as i32,
        })
    }

    /// Converts from the protobuf report, with times in China Standard Time.
    ///
    /// # Errors
    /// [`ReportJsonError::Field`] when a result is unspecified or the quantity is missing.
    pub fn from_pb(r: &pb::ReportIssued) -> Result<Self, ReportJsonError> {
        let mut items = Vec::with_capacity(r.items.len());
        for (n, i) in r.items.iter().enumerate() {
            let result = ResultJson::from_pb(i.result)
                .ok_or_else(|| field_error(format!("items[{n}].result"), "is not set"))?;
            items.push(ItemJson {
                code: i.code.clone(),
                name: i.name.clone(),
                method: i.method.clone(),
                value: i.value.clone(),
                unit: i.unit.clone(),
                limit: i.limit.clone(),
                result,
            });
        }
        let quantity = r
            .quantity
            .as_ref()
            .ok_or_else(|| field_error("quantity", "is not set"))?;
        let result =
            ResultJson::from_pb(r.result).ok_or_else(|| field_error("result", "is not set"))?;
        Ok(Self {
            stall_code: r.stall_code.clone(),
            product: r.product.clone(),
            category: r.category.clone(),
            origin: r.origin.clone(),
            lot_id: r.lot_id.clone(),
            quantity: QuantityJson::from_pb(quantity),
            bag_code: r.bag_code.clone(),
            sampled_at: format_time(r.sampled_at_ms),
            tested_at: format_time(r.tested_at_ms),
            tester: r.tester.clone(),
            items,
            result: Some(result),
        })
    }
}

/// Reads a JSON report and converts it.
///
/// # Errors
/// [`ReportJsonError`] naming the field at fault.
pub fn parse(text: &str) -> Result<pb::ReportIssued, ReportJsonError> {
    let json: ReportJson =
        serde_json::from_str(text).map_err(|e| ReportJsonError::Syntax(e.to_string()))?;
    json.to_pb()
}

/// Writes a report as pretty JSON.
///
/// # Errors
/// [`ReportJsonError::Field`] when the report lacks a result or quantity.
pub fn to_string_pretty(report: &pb::ReportIssued) -> Result<String, ReportJsonError> {
    let json = ReportJson::from_pb(report)?;
    serde_json::to_string_pretty(&json).map_err(|e| ReportJsonError::Syntax(e.to_string()))
}

/// Formats a UTC instant as RFC 3339 in China Standard Time, e.g.
/// `2026-12-04T09:30:00+08:00`; milliseconds appear only when they are not zero.
pub fn format_time(ms: i64) -> String {
    // time::cst gives "YYYY-MM-DD HH:MM:SS CST" for the whole second at or before `ms`.
    let cst = huren_proto::time::cst(ms.div_euclid(1000) * 1000);
    let clock = cst
        .strip_suffix(" CST")
        .unwrap_or(&cst)
        .replacen(' ', "T", 1);
    match ms.rem_euclid(1000) {
        0 => format!("{clock}+08:00"),
        frac => format!("{clock}.{frac:03}+08:00"),
    }
}

/// The forms [`parse_time`] accepts, as its error message lists them.
pub const TIME_FORMS: &str = "write a date and time: 2026-12-04T09:30 (read as China Standard \
Time), 2026-12-04T09:30:00+08:00 (any offset) or 2026-12-04T01:30:00Z";

/// Parses a time: RFC 3339 with `Z` or any `±HH:MM` offset, or a bare
/// `YYYY-MM-DDTHH:MM[:SS]` read as China Standard Time. Seconds may carry up to three
/// decimals. Built on `huren_proto::time::parse`.
///
/// # Errors
/// A sentence quoting the text and listing the accepted forms.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a time; {TIME_FORMS}");
    let mut rest = text.trim().to_string();
    if rest.ends_with('z') {
        rest.pop();
        rest.push('Z');
    }

    // A numeric offset other than +08:00 is turned into UTC ("Z") with the offset noted.
    let mut offset_ms: i64 = 0;
    if !rest.ends_with("+08:00") && rest.len() > 6 {
        let split = rest.len() - 6;
        let tail = &rest[split..];
        let b = tail.as_bytes();
        if (b[0] == b'+' || b[0] == b'-')
            && b[3] == b':'
            && [1, 2, 4, 5].iter().all(|&i| b[i].is_ascii_digit())
        {
            let hours: i64 = tail[1..3].parse().map_err(|_| bad())?;
            let minutes: i64 = tail[4..6].parse().map_err(|_| bad())?;
            if hours > 23 || minutes > 59 {
                return Err(bad());
            }
            let sign = if b[0] == b'+' { 1 } else { -1 };
            offset_ms = sign * (hours * 3_600_000 + minutes * 60_000);
            rest.truncate(split);
            rest.push('Z');
        }
    }

    // Fractional seconds: "HH:MM:SS.fff" before the zone; time::parse takes whole seconds.
    let mut frac_ms: i64 = 0;
    if let Some(dot) = rest.find('.') {
        let digits: String = rest[dot + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if digits.is_empty() || digits.len() > 3 {
            return Err(bad());
        }
        frac_ms = format!("{digits:0<3}").parse().map_err(|_| bad())?;
        rest.replace_range(dot..dot + 1 + digits.len(), "");
    }

    let ms = huren_proto::time::parse(&rest).map_err(|_| bad())?;
    Ok(ms - offset_ms + frac_ms)
}

/// Reads a quantity as people type it: `"12.5 kg"`, `"12.5kg"`, `"300 jin"`, `"3 斤"`,
/// `"20 piece"`, and checks it with `huren_proto::quantity::parse`.
///
/// # Errors
/// A sentence naming what is wrong (the number or the unit).
pub fn parse_quantity(text: &str) -> Result<pb::Quantity, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (amount, unit) = text.split_at(split);
    let unit = match unit.trim() {
        "斤" => "jin",
        "pieces" | "pcs" => "piece",
        other => other,
    };
    let quantity = pb::Quantity {
        amount: amount.to_string(),
        unit: unit.to_string(),
    };
    huren_proto::quantity::parse(&quantity)
        .map_err(|e| format!("quantity {text:?}: {e} (write it like \"12.5 kg\")"))?;
    Ok(quantity)
}

/// The smallest quantity of `unit` the ledger can express (0.001 of a weight unit, one piece):
/// drawing it asks only whether anything of a lot is left.
pub fn smallest_quantity(unit: &str) -> pb::Quantity {
    let count = huren_proto::quantity::unit(unit)
        .is_some_and(|u| u.dimension == huren_proto::quantity::Dimension::Count);
    pb::Quantity {
        amount: if count { "1" } else { "0.001" }.into(),
        unit: unit.into(),
    }
}

/// Reads a test item from `key=value` pairs separated by commas, e.g.
/// `code=op-carbamate,value=12.3,result=negative`. Keys: code, name, method, value, unit,
/// limit, result; `code` and `result` are required. For a code the generator knows
/// ([`crate::sample::ITEMS`]), name, method, unit and limit default to the usual ones. Values
/// cannot contain commas.
///
/// # Errors
/// A sentence naming the key at fault.
pub fn parse_item(text: &str) -> Result<pb::TestItem, String> {
    let mut item = pb::TestItem::default();
    let (mut name, mut method, mut unit, mut limit) = (None, None, None, None);
    let mut result = None;
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("item {text:?}: {pair:?} is not key=value"))?;
        let value = value.trim().to_string();
        match key.trim() {
            "code" => item.code = value,
            "name" => name = Some(value),
            "method" => method = Some(value),
            "value" => item.value = value,
            "unit" => unit = Some(value),
            "limit" => limit = Some(value),
            "result" => {
                result = Some(match value.to_ascii_lowercase().as_str() {
                    "negative" | "neg" | "pass" => ResultJson::Negative,
                    "positive" | "pos" | "fail" => ResultJson::Positive,
                    _ => {
                        return Err(format!(
                            "item {text:?}: result {value:?} must be negative or positive"
                        ))
                    }
                })
            }
            other => {
                return Err(format!(
                    "item {text:?}: unknown key {other:?} (use code, name, method, value, \
                     unit, limit, result)"
                ))
            }
        }
    }
    if item.code.is_empty() {
        return Err(format!("item {text:?}: code= is required"));
    }
    let result = result.ok_or_else(|| format!("item {text:?}: result= is required"))?;
    let template = crate::sample::item_template(&item.code);
    let or_template = |given: Option<String>, pick: fn(&crate::sample::ItemTemplate) -> &str| {
        given.unwrap_or_else(|| template.map(pick).unwrap_or_default().to_string())
    };
    item.name = or_template(name, |t| t.name);
    item.method = or_template(method, |t| t.method);
    item.unit = or_template(unit, |t| t.unit);
    item.limit = or_template(limit, |t| t.limit);
    if item.name.is_empty() || item.method.is_empty() {
        return Err(format!(
            "item {text:?}: name= and method= are required for item code {:?}",
            item.code
        ));
    }
    item.result = result.to_pb() as i32;
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> &'static str {
        r#"{
          "stall_code": "SX-A017",
          "product": "菜豆",
          "category": "vegetable",
          "origin": "山东寿光",
          "lot_id": "L20261204-SX-0031",
          "quantity": {"amount": "12.5", "unit": "kg"},
          "bag_code": "B-SX-20261204-0031",
          "sampled_at": "2026-12-04T06:10",
          "tested_at": "2026-12-03T22:32:00Z",
          "tester": "SX-QC07",
          "items": [{
            "code": "op-carbamate",
            "name": "有机磷和氨基甲酸酯类农药残留",
            "method": "GB/T 5009.199-2003",
            "value": "12.3", "unit": "%", "limit": "50",
            "result": "negative"
          }]
        }"#
    }

    #[test]
    fn a_json_report_round_trips_through_protobuf() {
        let report = parse(example()).unwrap();
        assert_eq!(report.product, "菜豆");
        assert_eq!(report.result, pb::TestResult::Negative as i32);
        assert_eq!(
            report.sampled_at_ms,
            huren_proto::time::from_cst(2026, 12, 4, 6, 10, 0)
        );
        assert_eq!(report.tested_at_ms - report.sampled_at_ms, 22 * 60_000);
        huren_proto::validate::report(&report, None).unwrap();

        let text = to_string_pretty(&report).unwrap();
        assert!(text.contains("\"tested_at\": \"2026-12-04T06:32:00+08:00\""));
        assert!(text.contains("\"result\": \"negative\""));
        assert_eq!(parse(&text).unwrap(), report);
    }

    #[test]
    fn the_documented_example_report_parses_and_validates() {
        // The file `huren issue --file`'s help points to must stay a report the node accepts.
        let report = parse(include_str!("../../docs/report.example.json")).unwrap();
        huren_proto::validate::report(&report, None).unwrap();
        assert_eq!(report.product, "菜豆");
        assert_eq!(report.category, "vegetable");
        assert_eq!(report.items[0].method, "GB/T 5009.199-2003");
        assert_eq!(report.result, pb::TestResult::Negative as i32);
        assert_eq!(
            report.sampled_at_ms,
            huren_proto::time::from_cst(2026, 12, 4, 9, 10, 0)
        );
    }

    #[test]
    fn bad_json_reports_name_the_field() {
        let unknown = example().replace("\"origin\"", "\"vendor_phone\"");
        let e = parse(&unknown).unwrap_err().to_string();
        assert!(e.contains("unknown field `vendor_phone`"), "{e}");

        let bad_time = example().replace("2026-12-04T06:10", "4 Dec, 6:10");
        let e = parse(&bad_time).unwrap_err();
        assert!(
            matches!(&e, ReportJsonError::Field { field, .. } if field == "sampled_at"),
            "{e}"
        );

        let bad_result = example().replace("\"negative\"", "\"pass\"");
        let e = parse(&bad_result).unwrap_err().to_string();
        assert!(e.contains("unknown variant `pass`"), "{e}");

        let missing = example().replace("\"tester\": \"SX-QC07\",", "");
        let e = parse(&missing).unwrap_err().to_string();
        assert!(e.contains("missing field `tester`"), "{e}");

        let number = example().replace("\"12.5\"", "12.5");
        assert!(parse(&number).unwrap_err().to_string().contains("line"));
    }

    #[test]
    fn times_accept_utc_cst_other_offsets_and_fractions() {
        let t = huren_proto::time::from_cst(2026, 12, 4, 9, 30, 0);
        for text in [
            "2026-12-04T09:30:00+08:00",
            "2026-12-04T09:30",
            "2026-12-04T01:30:00Z",
            "2026-12-04T01:30:00z",
            "2026-12-04T01:30:00+00:00",
            "2026-12-03T20:30:00-05:00",
        ] {
            assert_eq!(parse_time(text), Ok(t), "{text}");
        }
        assert_eq!(parse_time("2026-12-04T09:30:00.25+08:00"), Ok(t + 250));
        assert_eq!(format_time(t), "2026-12-04T09:30:00+08:00");
        assert_eq!(format_time(t + 7), "2026-12-04T09:30:00.007+08:00");
        assert_eq!(parse_time(&format_time(t + 7)), Ok(t + 7));
        assert!(parse_time("2026-12-04T09:30:00.1234Z").is_err());
        assert!(parse_time("tomorrow").is_err());

        // A time without a date is refused with every accepted form named.
        let e = parse_time("00:30").unwrap_err();
        assert_eq!(
            e,
            "\"00:30\" is not a time; write a date and time: 2026-12-04T09:30 (read as China \
             Standard Time), 2026-12-04T09:30:00+08:00 (any offset) or 2026-12-04T01:30:00Z"
        );
    }

    #[test]
    fn quantities_and_items_are_read_as_people_type_them() {
        let q = parse_quantity("12.5 kg").unwrap();
        assert_eq!((q.amount.as_str(), q.unit.as_str()), ("12.5", "kg"));
        assert_eq!(parse_quantity("3斤").unwrap().unit, "jin");
        assert_eq!(parse_quantity("20 pieces").unwrap().unit, "piece");
        assert!(parse_quantity("12.5").unwrap_err().contains("unknown unit"));
        assert!(parse_quantity("-3 kg").is_err());
        assert_eq!(smallest_quantity("piece").amount, "1");
        assert_eq!(smallest_quantity("kg").amount, "0.001");

        let item = parse_item("code=op-carbamate,value=12.3,result=negative").unwrap();
        assert_eq!(item.name, "有机磷和氨基甲酸酯类农药残留");
        assert_eq!(item.method, "GB/T 5009.199-2003");
        assert_eq!((item.unit.as_str(), item.limit.as_str()), ("%", "50"));
        assert_eq!(item.result, pb::TestResult::Negative as i32);
        let item = parse_item("code=x1,name=甲醛,method=KJ,result=positive").unwrap();
        assert_eq!(item.result, pb::TestResult::Positive as i32);
        assert!(parse_item("code=x1,result=negative")
            .unwrap_err()
            .contains("name= and method="));
        assert!(parse_item("code=op-carbamate")
            .unwrap_err()
            .contains("result="));
        assert!(parse_item("code=op-carbamate,colour=red,result=negative")
            .unwrap_err()
            .contains("\"colour\""));
    }
}
