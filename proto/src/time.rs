//! Showing instants to people. The ledger stores UTC milliseconds; people in the seven
//! markets read China Standard Time (UTC+8, no daylight saving). The host's time zone is
//! never consulted, so a node abroad shows the same text.

/// Offset of China Standard Time from UTC, in milliseconds.
pub const CST_OFFSET_MS: i64 = 8 * 3_600_000;

/// Formats a UTC instant (ms since the epoch) as `YYYY-MM-DD HH:MM:SS CST`.
pub fn cst(ms: i64) -> String {
    let local = ms.saturating_add(CST_OFFSET_MS);
    let days = local.div_euclid(86_400_000);
    let in_day = local.rem_euclid(86_400_000) / 1000;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} CST",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    )
}

/// The UTC instant of a CST wall-clock time.
pub fn from_cst(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> i64 {
    let days = days_from_civil(year, month, day);
    (days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)) * 1000
        - CST_OFFSET_MS
}

/// Parses `YYYY-MM-DDTHH:MM[:SS]` followed by `Z` (UTC) or `+08:00` (CST), or bare (read as
/// CST), into UTC ms.
///
/// # Errors
/// A sentence when the text is not such a time.
pub fn parse(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a time like 2026-12-04T09:30:00+08:00");
    let (body, offset_ms) = if let Some(b) = text.strip_suffix('Z') {
        (b, 0)
    } else if let Some(b) = text.strip_suffix("+08:00") {
        (b, CST_OFFSET_MS)
    } else {
        (text, CST_OFFSET_MS)
    };
    let (date, clock) = body.split_once(['T', ' ']).ok_or_else(bad)?;
    let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let c: Vec<&str> = clock.split(':').collect();
    if d.len() != 3 || !(2..=3).contains(&c.len()) {
        return Err(bad());
    }
    let (year, month, day) = (num(d[0])? as i64, num(d[1])?, num(d[2])?);
    let (hour, minute) = (num(c[0])?, num(c[1])?);
    let second = if c.len() == 3 { num(c[2])? } else { 0 };
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    Ok(from_cst(year, month, day, hour, minute, second) + CST_OFFSET_MS - offset_ms)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days-from-civil algorithm (public domain), proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_instants_are_shown_eight_hours_ahead() {
        // 2026-12-04T16:30:00Z is half past midnight on the 5th in Taiyuan.
        assert_eq!(cst(1_796_401_800_000), "2026-12-05 00:30:00 CST");
        assert_eq!(cst(0), "1970-01-01 08:00:00 CST");
    }

    #[test]
    fn parsing_reads_bare_times_as_cst_and_honours_z() {
        let t = parse("2026-12-05T00:30:00+08:00").unwrap();
        assert_eq!(t, 1_796_401_800_000);
        assert_eq!(parse("2026-12-05T00:30").unwrap(), t);
        assert_eq!(parse("2026-12-04T16:30:00Z").unwrap(), t);
        assert_eq!(from_cst(2026, 12, 5, 0, 30, 0), t);
        assert!(parse("2026-02-30T00:00").is_err());
        assert!(parse("yesterday").is_err());
    }
}
