//! Recognition rules: how long a pass is valid per product category, which test items each
//! category requires, and how much clock skew is tolerated. The regulator publishes them in
//! its log so every market applies the same version; until it does, the built-in defaults
//! below apply as version 0. The defaults are Huren's choice, not a standard.

use crate::pb::{CategoryRule, Rules};
use crate::validate::FieldError;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Default allowed clock skew between an issuer and a verifier: 5 minutes.
pub const DEFAULT_CLOCK_SKEW_MS: i64 = 5 * 60_000;

/// Largest allowed skew, validity window, and number of categories in published rules.
pub const MAX_CLOCK_SKEW_MS: i64 = DAY_MS;
/// Longest validity window a category may have: 90 days.
pub const MAX_VALIDITY_MS: i64 = 90 * DAY_MS;
/// Most categories in one publication.
pub const MAX_CATEGORIES: usize = 64;

/// The built-in rules (version 0). Windows: leafy vegetables 48 h, other vegetables and
/// fruit 72 h, meat and bean sprouts 24 h, edible oil and bulk liquor 30 days.
pub fn defaults() -> Rules {
    let rule = |category: &str, name: &str, validity_ms: i64, items: &[&str]| CategoryRule {
        category: category.into(),
        name_zh: name.into(),
        validity_ms,
        required_items: items.iter().map(|s| s.to_string()).collect(),
    };
    Rules {
        version: 0,
        categories: vec![
            rule("leafy_vegetable", "叶菜类", 48 * HOUR_MS, &["op-carbamate"]),
            rule("vegetable", "其他蔬菜", 72 * HOUR_MS, &["op-carbamate"]),
            rule("fruit", "水果", 72 * HOUR_MS, &["op-carbamate"]),
            rule("meat", "畜禽肉", 24 * HOUR_MS, &["clenbuterol"]),
            rule(
                "edible_oil",
                "食用油",
                30 * DAY_MS,
                &["acid-value", "peroxide-value"],
            ),
            rule("liquor", "散装白酒", 30 * DAY_MS, &["methanol"]),
            rule("bean_sprout", "豆芽", 24 * HOUR_MS, &["4-cpa", "6-ba"]),
        ],
        clock_skew_ms: DEFAULT_CLOCK_SKEW_MS,
    }
}

/// The rule for a category, if the rules know it.
pub fn category<'a>(rules: &'a Rules, category: &str) -> Option<&'a CategoryRule> {
    rules.categories.iter().find(|c| c.category == category)
}

/// Validates a rules publication on its own (the version's order is checked by the ledger).
///
/// # Errors
/// [`FieldError`] on `rules.*`.
pub fn validate(rules: &Rules) -> Result<(), FieldError> {
    let fail = |field: String, message: &str| FieldError {
        field,
        message: message.into(),
    };
    if rules.version == 0 {
        return Err(fail(
            "rules.version".into(),
            "0 is the built-in defaults; publish 1 or more",
        ));
    }
    if !(0..=MAX_CLOCK_SKEW_MS).contains(&rules.clock_skew_ms) {
        return Err(fail(
            "rules.clock_skew_ms".into(),
            "must be between 0 and one day",
        ));
    }
    if rules.categories.is_empty() || rules.categories.len() > MAX_CATEGORIES {
        return Err(fail(
            "rules.categories".into(),
            "must hold 1 to 64 categories",
        ));
    }
    for (i, c) in rules.categories.iter().enumerate() {
        let ok_code = !c.category.is_empty()
            && c.category.len() <= 64
            && c.category
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_');
        if !ok_code {
            return Err(fail(
                format!("rules.categories[{i}].category"),
                "must be a category code",
            ));
        }
        if rules.categories[..i]
            .iter()
            .any(|o| o.category == c.category)
        {
            return Err(fail(
                format!("rules.categories[{i}].category"),
                "appears twice",
            ));
        }
        if !(1..=MAX_VALIDITY_MS).contains(&c.validity_ms) {
            return Err(fail(
                format!("rules.categories[{i}].validity_ms"),
                "must be 1 ms to 90 days",
            ));
        }
        if c.required_items.len() > 32
            || c.required_items
                .iter()
                .any(|s| s.is_empty() || s.len() > 64)
        {
            return Err(fail(
                format!("rules.categories[{i}].required_items"),
                "malformed item codes",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_give_leafy_vegetables_48_hours() {
        let rules = defaults();
        assert_eq!(
            category(&rules, "leafy_vegetable").unwrap().validity_ms,
            48 * HOUR_MS
        );
        assert!(category(&rules, "spaceship").is_none());
    }

    #[test]
    fn published_rules_must_not_claim_version_zero_or_repeat_a_category() {
        let mut rules = defaults();
        assert_eq!(validate(&rules).unwrap_err().field, "rules.version");
        rules.version = 1;
        assert_eq!(validate(&rules), Ok(()));
        rules.categories.push(rules.categories[0].clone());
        assert_eq!(
            validate(&rules).unwrap_err().field,
            "rules.categories[7].category"
        );
    }
}
