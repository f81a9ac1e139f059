//! Reading typed values out of the loose JSON networks send.
//!
//! Numbers arrive as numbers or strings, with currency symbols, percent signs
//! or ranges; booleans as `"false"` or `"1"`; dates in half a dozen shapes.
//! Every function here is pure and returns a reason on failure, never panics.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use super::spec::RangeEnd;

/// The text of a scalar: strings as they are, numbers as written, booleans as words.
pub fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// A short rendering of a value for problem messages (never a whole record).
pub fn describe(value: &Value) -> String {
    let text = match value {
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
        other => other.to_string(),
    };
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

/// Reads an exact decimal: `2.4`, `"2.40000"`, `"$2.50"`, `"€11.00"`, `"30.00 %"`,
/// `"1,250.00"`, `"USD 3"`, a range `"3.5%-6%"` (the `range` end), scientific notation.
pub fn to_decimal(value: &Value, range: RangeEnd) -> Result<Decimal, String> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(_) | Value::Null | Value::Array(_) | Value::Object(_) => {
            return Err(format!("{} is not a decimal", describe(value)));
        }
    };
    parse_decimal_text(&text, range).ok_or_else(|| {
        if text.len() > 40
            && text
                .chars()
                .all(|c| c.is_ascii_digit() || ".eE+-".contains(c))
        {
            format!(
                "{} is out of the decimal range (28 significant digits)",
                describe(value)
            )
        } else {
            format!("{} is not a decimal", describe(value))
        }
    })
}

fn parse_decimal_text(text: &str, range: RangeEnd) -> Option<Decimal> {
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '%' && *c != '\u{a0}')
        .collect();
    let cleaned = strip_currency(&cleaned);
    if cleaned.is_empty() {
        return None;
    }
    // A range: a dash that is not a leading sign and not an exponent sign.
    if let Some(split) = range_split(cleaned) {
        let (low, high) = (&cleaned[..split], &cleaned[split + 1..]);
        let low = single_decimal(strip_currency(low))?;
        let high = single_decimal(strip_currency(high))?;
        return Some(match range {
            RangeEnd::Low => low.min(high),
            RangeEnd::High => low.max(high),
        });
    }
    single_decimal(cleaned)
}

fn range_split(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    (1..bytes.len()).find(|&i| {
        bytes[i] == b'-' && bytes[i - 1].is_ascii_digit() && !matches!(bytes[i - 1], b'e' | b'E')
    })
}

fn strip_currency(s: &str) -> &str {
    let s = s.trim_start_matches(|c: char| "$€£¥₽₹₺₩".contains(c));
    let s = s.trim_end_matches(|c: char| "$€£¥₽₹₺₩".contains(c));
    // A leading or trailing ISO code: "USD3.00", "3.00EUR".
    let s = match s.get(..3) {
        Some(p) if p.chars().all(|c| c.is_ascii_alphabetic()) && s.len() > 3 => &s[3..],
        _ => s,
    };
    match s
        .len()
        .checked_sub(3)
        .and_then(|i| s.get(i..).map(|t| (i, t)))
    {
        Some((i, t)) if i > 0 && t.chars().all(|c| c.is_ascii_alphabetic()) => &s[..i],
        _ => s,
    }
}

fn single_decimal(s: &str) -> Option<Decimal> {
    let normalized = normalize_separators(s)?;
    if normalized.contains(['e', 'E']) {
        return Decimal::from_scientific(&normalized).ok();
    }
    Decimal::from_str(&normalized).ok()
}

/// Turns `1,250.00` and `1.250,00` and `2,5` into `1250.00`, `1250.00`, `2.5`.
fn normalize_separators(s: &str) -> Option<String> {
    let commas = s.matches(',').count();
    let dots = s.matches('.').count();
    if commas == 0 {
        return Some(s.to_string());
    }
    let last_comma = s.rfind(',')?;
    let decimal_comma = match s.rfind('.') {
        Some(last_dot) => last_comma > last_dot,
        // Only commas: "1,250" groups thousands, "2,5" is a decimal comma.
        None => !(commas >= 1 && s.len() - last_comma - 1 == 3),
    };
    if decimal_comma {
        if commas > 1 {
            return None;
        }
        Some(s.replace('.', "").replace(',', "."))
    } else {
        let _ = dots;
        Some(s.replace(',', ""))
    }
}

/// Reads a boolean: `true`, `"false"`, `1`, `"0"`, `"yes"`, `"no"`.
pub fn to_bool(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => match n.to_string().as_str() {
            "0" | "0.0" => Ok(false),
            "1" | "1.0" => Ok(true),
            _ => Err(format!("{} is not a boolean", describe(value))),
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "y" | "on" => Ok(true),
            "false" | "0" | "no" | "n" | "off" | "" => Ok(false),
            _ => Err(format!("{} is not a boolean", describe(value))),
        },
        _ => Err(format!("{} is not a boolean", describe(value))),
    }
}

/// Reads a whole number (`12`, `"12"`, `"12.0"`).
pub fn to_integer(value: &Value) -> Result<i64, String> {
    let err = || format!("{} is not a whole number", describe(value));
    let decimal = to_decimal(value, RangeEnd::Low).map_err(|_| err())?;
    if decimal.fract().is_zero() {
        i64::try_from(decimal).map_err(|_| err())
    } else {
        Err(err())
    }
}

/// Reads a point in time: RFC 3339, `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DDTHH:MM:SS[.f]`,
/// `YYYY-MM-DD`, or unix seconds (milliseconds when the number is that large).
/// Times without a zone are read as UTC.
pub fn to_datetime(value: &Value) -> Result<DateTime<Utc>, String> {
    let err = || format!("{} is not a date or time", describe(value));
    match value {
        Value::Number(_) => {
            let n = to_integer(value).map_err(|_| err())?;
            let (secs, millis) = if n.abs() >= 100_000_000_000 {
                (n / 1000, n % 1000)
            } else {
                (n, 0)
            };
            Utc.timestamp_opt(secs, (millis * 1_000_000) as u32)
                .single()
                .ok_or_else(err)
        }
        Value::String(s) => {
            let s = s.trim();
            if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() && s.len() <= 13 {
                return to_datetime(&Value::from(s.parse::<i64>().map_err(|_| err())?));
            }
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Ok(t.with_timezone(&Utc));
            }
            for format in [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
            ] {
                if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
                    return Ok(t.and_utc());
                }
            }
            for format in ["%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y"] {
                if let Ok(d) = NaiveDate::parse_from_str(s, format) {
                    return Ok(d.and_hms_opt(0, 0, 0).ok_or_else(err)?.and_utc());
                }
            }
            Err(err())
        }
        _ => Err(err()),
    }
}

/// Removes HTML tags (and the content of script and style elements) and decodes entities.
/// Undoes one level of JSON-style backslash escapes (`\/`, `\"`, `\\`,
/// `\n`, `\t`, `\r`, `\uXXXX` with surrogate pairs). A backslash before
/// anything else is kept, so text that was never escaped passes unchanged.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some(e @ ('/' | '"' | '\\' | '\'')) => {
                chars.next();
                out.push(e);
            }
            Some('n') => {
                chars.next();
                out.push('\n');
            }
            Some('t') => {
                chars.next();
                out.push('\t');
            }
            Some('r') => {
                chars.next();
                out.push('\r');
            }
            Some('u') => {
                let rest: String = chars.clone().skip(1).take(4).collect();
                match u32::from_str_radix(&rest, 16) {
                    Ok(unit) if rest.len() == 4 => {
                        chars.nth(4);
                        let decoded = if (0xD800..0xDC00).contains(&unit) {
                            // A high surrogate: its pair follows as `\uXXXX`.
                            let pair: String = chars.clone().take(6).collect();
                            pair.strip_prefix("\\u")
                                .and_then(|low| u32::from_str_radix(low, 16).ok())
                                .filter(|low| (0xDC00..0xE000).contains(low))
                                .and_then(|low| {
                                    chars.nth(5);
                                    char::from_u32(
                                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00),
                                    )
                                })
                        } else {
                            char::from_u32(unit)
                        };
                        out.push(decoded.unwrap_or(char::REPLACEMENT_CHARACTER));
                    }
                    _ => out.push('\\'),
                }
            }
            _ => out.push('\\'),
        }
    }
    out
}

pub fn strip_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let lower: String = after
            .chars()
            .take(8)
            .collect::<String>()
            .to_ascii_lowercase();
        let skip_to = if lower.starts_with("<script") || lower.starts_with("<style") {
            let closing = if lower.starts_with("<script") {
                "</script"
            } else {
                "</style"
            };
            after
                .to_ascii_lowercase()
                .find(closing)
                .and_then(|i| after[i..].find('>').map(|j| i + j + 1))
        } else {
            after.find('>').map(|i| i + 1)
        };
        match skip_to {
            Some(n) => {
                let tag = &after[..n.min(after.len())];
                if tag.starts_with("<br") || tag.starts_with("</p") || tag.starts_with("</li") {
                    out.push('\n');
                }
                rest = &after[n..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    let decoded = decode_entities(&out);
    decoded
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let entity_end = after.find(';').filter(|&i| i <= 10);
        let decoded = entity_end.and_then(|end| {
            let name = &after[1..end];
            let ch = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                "pound" => Some('£'),
                "euro" => Some('€'),
                "copy" => Some('©'),
                _ => name
                    .strip_prefix("#x")
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            ch.map(|c| (c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &after[len..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_undoes_one_level_of_json_escapes() {
        assert_eq!(
            unescape(r"https:\/\/apps.example.com\/app\/id14417?ls=1"),
            "https://apps.example.com/app/id14417?ls=1"
        );
        assert_eq!(
            unescape(r#"say \"hi\"\n\u00e9\ud83d\ude00"#),
            "say \"hi\"\né😀"
        );
        // Text that was never escaped, and a lone backslash, pass unchanged.
        assert_eq!(unescape(r"C:\dir and \q \u12"), r"C:\dir and \q \u12");
    }
    use serde_json::json;

    fn dec(v: Value) -> Result<Decimal, String> {
        to_decimal(&v, RangeEnd::Low)
    }

    #[test]
    fn decimals_are_exact_whatever_the_spelling() {
        assert_eq!(dec(json!("2.40000")).unwrap().to_string(), "2.40000");
        assert_eq!(dec(json!(3.25)).unwrap(), Decimal::new(325, 2));
        assert_eq!(dec(json!("$2.50")).unwrap(), Decimal::new(250, 2));
        assert_eq!(dec(json!("€11.00")).unwrap(), Decimal::new(1100, 2));
        assert_eq!(dec(json!("30.00 %")).unwrap(), Decimal::new(3000, 2));
        assert_eq!(dec(json!("4%")).unwrap(), Decimal::new(4, 0));
        assert_eq!(dec(json!("1,250.50")).unwrap(), Decimal::new(125050, 2));
        assert_eq!(dec(json!("1.250,50")).unwrap(), Decimal::new(125050, 2));
        assert_eq!(dec(json!("2,5")).unwrap(), Decimal::new(25, 1));
        assert_eq!(dec(json!("USD 3")).unwrap(), Decimal::new(3, 0));
        assert_eq!(dec(json!("-1.5")).unwrap(), Decimal::new(-15, 1));
        assert_eq!(dec(json!("3.5%-6%")).unwrap(), Decimal::new(35, 1));
        assert_eq!(
            to_decimal(&json!("3.5%-6%"), RangeEnd::High).unwrap(),
            Decimal::new(6, 0)
        );
        assert_eq!(dec(json!("1e3")).unwrap(), Decimal::new(1000, 0));
        // 0.1 + 0.2 is never a problem: the text is read, not an f64.
        assert_eq!(
            dec(json!(0.30000000000000004)).unwrap().to_string(),
            "0.30000000000000004"
        );
    }

    #[test]
    fn non_decimals_and_huge_numbers_give_reasons() {
        assert_eq!(dec(json!("abc")).unwrap_err(), "\"abc\" is not a decimal");
        assert!(dec(json!(true)).is_err());
        let huge: Value = serde_json::from_str("1e400").unwrap();
        assert!(dec(huge).is_err());
        let long: Value = serde_json::from_str(&"9".repeat(60)).unwrap();
        assert!(dec(long).unwrap_err().contains("out of the decimal range"));
    }

    #[test]
    fn booleans_integers_and_dates() {
        assert!(to_bool(&json!("1")).unwrap());
        assert!(!to_bool(&json!("false")).unwrap());
        assert!(to_bool(&json!("maybe")).is_err());
        assert_eq!(to_integer(&json!("12.0")).unwrap(), 12);
        assert!(to_integer(&json!("12.5")).is_err());
        let d = |v| to_datetime(&v).unwrap().to_rfc3339();
        assert_eq!(d(json!("2031-06-30T00:00:00")), "2031-06-30T00:00:00+00:00");
        assert_eq!(d(json!("2031-12-31")), "2031-12-31T00:00:00+00:00");
        assert_eq!(d(json!("2031-12-31 23:59:59")), "2031-12-31T23:59:59+00:00");
        assert_eq!(d(json!(1700000000)), "2023-11-14T22:13:20+00:00");
        assert_eq!(
            d(json!("2022-05-18T05:27:13.32")),
            "2022-05-18T05:27:13.320+00:00"
        );
        assert!(to_datetime(&json!("0000-00-00")).is_err());
    }

    #[test]
    fn html_is_stripped_and_entities_decoded() {
        assert_eq!(
            strip_html("<b>Install &amp; open</b>. No <script>alert(1)</script>incent"),
            "Install & open. No incent"
        );
        assert_eq!(strip_html("a<br>b"), "a\nb");
        assert_eq!(strip_html("Pays &pound;25 &#8364;"), "Pays £25 €");
        assert_eq!(strip_html("broken <b"), "broken");
    }
}
