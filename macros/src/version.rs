//! Migration versions: UTC timestamps `YYYYMMDDHHMMSS`.

use syn::LitInt;

/// Checks that `lit` is a real UTC date-time written as `YYYYMMDDHHMMSS`.
pub fn validate(lit: &LitInt) -> syn::Result<i64> {
    let err = |msg: String| syn::Error::new(lit.span(), msg);
    if !matches!(lit.suffix(), "" | "i64") {
        return Err(err(format!(
            "migration version must be a plain integer, found suffix `{}`",
            lit.suffix()
        )));
    }
    let digits = lit.base10_digits();
    if digits.len() != 14 {
        return Err(err(format!(
            "migration version must be a UTC timestamp YYYYMMDDHHMMSS (14 digits), found {} \
             digits; e.g. 20240226153000 for 2024-02-26 15:30:00",
            digits.len()
        )));
    }
    let part = |from: usize, to: usize| digits[from..to].parse::<u32>().unwrap_or(u32::MAX);
    let (year, month, day) = (part(0, 4), part(4, 6), part(6, 8));
    let (hour, minute, second) = (part(8, 10), part(10, 12), part(12, 14));
    let bad = |what: &str, value: u32, expected: String| {
        err(format!(
            "migration version {digits} is not a real date-time: {what} {value:02} \
             (expected {expected})"
        ))
    };
    if year < 1970 {
        return Err(bad("year", year, "1970 or later".into()));
    }
    if !(1..=12).contains(&month) {
        return Err(bad("month", month, "01-12".into()));
    }
    let days = days_in_month(year, month);
    if !(1..=days).contains(&day) {
        return Err(bad(
            "day",
            day,
            format!("01-{days} for {}", month_name(month, year)),
        ));
    }
    if hour > 23 {
        return Err(bad("hour", hour, "00-23".into()));
    }
    if minute > 59 {
        return Err(bad("minute", minute, "00-59".into()));
    }
    if second > 59 {
        return Err(bad("second", second, "00-59".into()));
    }
    digits.parse::<i64>().map_err(|e| err(e.to_string()))
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn month_name(month: u32, year: u32) -> String {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    format!("{} {year}", NAMES[(month - 1) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(s: &str) -> Result<i64, String> {
        validate(&syn::parse_str::<LitInt>(s).unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_real_timestamps() {
        assert_eq!(check("20240226153000"), Ok(20240226153000));
        assert_eq!(check("20240229235959"), Ok(20240229235959));
        assert_eq!(check("20000229000000"), Ok(20000229000000));
    }

    #[test]
    fn rejects_impossible_ones() {
        assert!(check("2024022615300").unwrap_err().contains("13 digits"));
        assert!(check("20241326153000").unwrap_err().contains("month 13"));
        assert!(check("20240230153000").unwrap_err().contains("day 30"));
        assert!(check("20230229000000").unwrap_err().contains("day 29"));
        assert!(check("19000229000000").is_err());
        assert!(check("20240226240000").unwrap_err().contains("hour 24"));
        assert!(check("20240226156000").unwrap_err().contains("minute 60"));
        assert!(check("20240226153060").unwrap_err().contains("second 60"));
        assert!(check("20240226153000u8").unwrap_err().contains("suffix"));
    }
}
