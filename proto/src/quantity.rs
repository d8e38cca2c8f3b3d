//! Exact quantities. Markets weigh in kg, g, 斤 (jin, 500 g) and tonnes, or count pieces; a
//! lot's remainder must never drift by rounding, so every amount becomes an integer of a base
//! unit (milligrams by weight, pieces by count) and arithmetic happens there only.

use crate::pb::Quantity;

/// Largest amount accepted in any unit.
pub const MAX_AMOUNT: u64 = 1_000_000;

/// What a unit measures. Amounts of different dimensions never mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// Weight, in milligrams.
    Mass,
    /// Count, in pieces.
    Count,
}

/// A known unit: its name, dimension, and how many base units one of it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// The unit's name as written in a `Quantity`.
    pub name: &'static str,
    /// What it measures.
    pub dimension: Dimension,
    /// Base units (mg or pieces) per one of this unit.
    pub base_per_unit: u64,
}

/// Every unit the ledger accepts.
pub const UNITS: [Unit; 5] = [
    Unit {
        name: "kg",
        dimension: Dimension::Mass,
        base_per_unit: 1_000_000,
    },
    Unit {
        name: "g",
        dimension: Dimension::Mass,
        base_per_unit: 1_000,
    },
    Unit {
        name: "jin",
        dimension: Dimension::Mass,
        base_per_unit: 500_000,
    },
    Unit {
        name: "t",
        dimension: Dimension::Mass,
        base_per_unit: 1_000_000_000,
    },
    Unit {
        name: "piece",
        dimension: Dimension::Count,
        base_per_unit: 1,
    },
];

/// Looks a unit up by name; "斤" is read as "jin".
pub fn unit(name: &str) -> Option<Unit> {
    let name = if name == "斤" { "jin" } else { name };
    UNITS.iter().copied().find(|u| u.name == name)
}

/// An exact amount in base units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Amount {
    /// Milligrams or pieces.
    pub base: u64,
    /// Which of the two.
    pub dimension: Dimension,
}

/// Why a quantity is not acceptable. The message names the part at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// No unit or an unknown one.
    #[error("unknown unit {0:?}; use kg, g, jin, t or piece")]
    UnknownUnit(String),
    /// Not a plain decimal with at most three decimals.
    #[error("amount {0:?} is not a decimal number with at most 3 decimals")]
    NotANumber(String),
    /// Zero or negative.
    #[error("amount {0:?} must be greater than zero")]
    NotPositive(String),
    /// Above [`MAX_AMOUNT`].
    #[error("amount {0:?} is over the limit of {MAX_AMOUNT}")]
    TooLarge(String),
    /// A fraction of a piece.
    #[error("amount {0:?} of pieces must be a whole number")]
    FractionalCount(String),
}

/// Parses a quantity into base units.
///
/// # Errors
/// A [`QuantityError`] naming the problem; the unit is checked first.
pub fn parse(quantity: &Quantity) -> Result<Amount, QuantityError> {
    let unit =
        unit(&quantity.unit).ok_or_else(|| QuantityError::UnknownUnit(quantity.unit.clone()))?;
    let text = quantity.amount.trim();
    let milli = parse_milli(text)?;
    if milli == 0 {
        return Err(QuantityError::NotPositive(text.into()));
    }
    if milli > MAX_AMOUNT * 1000 {
        return Err(QuantityError::TooLarge(text.into()));
    }
    if unit.dimension == Dimension::Count && milli % 1000 != 0 {
        return Err(QuantityError::FractionalCount(text.into()));
    }
    // milli ≤ 10^9 and base_per_unit ≤ 10^9, so the product fits in u64 after the division.
    let base = if unit.base_per_unit >= 1000 {
        milli * (unit.base_per_unit / 1000)
    } else {
        milli / 1000 * unit.base_per_unit
    };
    Ok(Amount {
        base,
        dimension: unit.dimension,
    })
}

fn parse_milli(text: &str) -> Result<u64, QuantityError> {
    if text.starts_with('-') {
        return Err(QuantityError::NotPositive(text.into()));
    }
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (text.contains('.') && !digits(frac)) || frac.len() > 3 || whole.len() > 10
    {
        return Err(QuantityError::NotANumber(text.into()));
    }
    let whole: u64 = whole
        .parse()
        .map_err(|_| QuantityError::NotANumber(text.into()))?;
    let mut frac_milli: u64 = 0;
    for (i, b) in frac.bytes().enumerate() {
        frac_milli += u64::from(b - b'0') * 10u64.pow(2 - i as u32);
    }
    Ok(whole * 1000 + frac_milli)
}

/// Writes `base` units of `dimension` in the unit named `unit_name`, exactly (as many
/// decimals as the value needs). Returns `None` for an unknown unit or a dimension mismatch.
pub fn format_in(base: u64, unit_name: &str) -> Option<Quantity> {
    let unit = unit(unit_name)?;
    let whole = base / unit.base_per_unit;
    let mut rest = base % unit.base_per_unit;
    let mut text = whole.to_string();
    if rest != 0 {
        text.push('.');
        // base_per_unit divides a power of ten (its factors are 2s and 5s), so this ends.
        while rest != 0 {
            rest *= 10;
            text.push(char::from(b'0' + (rest / unit.base_per_unit) as u8));
            rest %= unit.base_per_unit;
        }
    }
    Some(Quantity {
        amount: text,
        unit: unit.name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(amount: &str, unit: &str) -> Quantity {
        Quantity {
            amount: amount.into(),
            unit: unit.into(),
        }
    }

    #[test]
    fn conversions_between_weight_units_are_exact() {
        assert_eq!(
            parse(&q("1", "jin")).unwrap().base,
            parse(&q("0.5", "kg")).unwrap().base
        );
        assert_eq!(
            parse(&q("1.5", "t")).unwrap().base,
            parse(&q("1500", "kg")).unwrap().base
        );
        assert_eq!(parse(&q("0.001", "g")).unwrap().base, 1);
        assert_eq!(parse(&q("3", "斤")).unwrap().base, 1_500_000);
        assert_eq!(format_in(1, "jin").unwrap().amount, "0.000002");
        assert_eq!(format_in(750_000, "kg").unwrap().amount, "0.75");
        assert_eq!(format_in(2_000_000, "jin").unwrap().amount, "4");
    }

    #[test]
    fn bad_quantities_are_refused_with_the_reason() {
        assert_eq!(
            parse(&q("0", "kg")),
            Err(QuantityError::NotPositive("0".into()))
        );
        assert_eq!(
            parse(&q("-5", "kg")),
            Err(QuantityError::NotPositive("-5".into()))
        );
        assert_eq!(
            parse(&q("5", "lb")),
            Err(QuantityError::UnknownUnit("lb".into()))
        );
        assert_eq!(
            parse(&q("1.2345", "kg")),
            Err(QuantityError::NotANumber("1.2345".into()))
        );
        assert_eq!(
            parse(&q("1e3", "kg")),
            Err(QuantityError::NotANumber("1e3".into()))
        );
        assert_eq!(
            parse(&q("2.5", "piece")),
            Err(QuantityError::FractionalCount("2.5".into()))
        );
        assert_eq!(
            parse(&q("1000001", "t")),
            Err(QuantityError::TooLarge("1000001".into()))
        );
        assert!(parse(&q("1000000", "t")).is_ok());
    }
}
