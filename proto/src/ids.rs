//! Names of things in the ledger: market ids, the regulator's log name, and report ids.
//! A report's id is derived from where it sits (`<market>-<seq>`), so it can be found in any
//! node's copy of the issuer's log without a lookup table that could disagree.

/// The name of the regulator's log.
pub const REGULATOR_LOG: &str = "regulator";

/// Longest market id.
pub const MAX_MARKET_ID_LEN: usize = 32;

/// True for a well-formed market id: a lowercase ASCII letter, then letters or digits, at most
/// 32 in all, and not the regulator's log name.
pub fn is_market_id(id: &str) -> bool {
    valid_log_name(id) && id != REGULATOR_LOG
}

/// True for a well-formed log name: a market id or [`REGULATOR_LOG`].
pub fn valid_log_name(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_MARKET_ID_LEN
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The id of the report issued at `seq` in `market`'s log.
pub fn report_id(market: &str, seq: u64) -> String {
    format!("{market}-{seq}")
}

/// Splits a report id into its market and sequence number.
///
/// # Errors
/// A sentence saying what is wrong with the id.
pub fn parse_report_id(id: &str) -> Result<(String, u64), String> {
    let (market, seq) = id
        .rsplit_once('-')
        .ok_or_else(|| format!("report id {id:?} is not of the form <market>-<number>"))?;
    if !is_market_id(market) {
        return Err(format!("report id {id:?}: {market:?} is not a market id"));
    }
    let seq: u64 = seq
        .parse()
        .ok()
        .filter(|s| *s > 0 && !seq.starts_with('0') && !seq.starts_with('+'))
        .ok_or_else(|| format!("report id {id:?}: {seq:?} is not a sequence number"))?;
    Ok((market.to_string(), seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_ids_round_trip_and_reject_malformed_ones() {
        assert_eq!(
            parse_report_id(&report_id("shanxi", 42)),
            Ok(("shanxi".into(), 42))
        );
        for bad in [
            "shanxi",
            "shanxi-0",
            "shanxi-007",
            "Shanxi-1",
            "-1",
            "shanxi-x",
            "a b-1",
        ] {
            assert!(parse_report_id(bad).is_err(), "{bad} must be refused");
        }
        assert!(
            parse_report_id("regulator-3").is_err(),
            "the regulator issues no reports"
        );
    }

    #[test]
    fn market_ids_are_lowercase_ascii_without_the_regulator_name() {
        assert!(is_market_id("market5"));
        assert!(!is_market_id("5market"));
        assert!(!is_market_id("山西"));
        assert!(!is_market_id(REGULATOR_LOG));
        assert!(!is_market_id(&"a".repeat(33)));
    }
}
