//! Request timestamps: `x-amz-date` (`YYYYMMDDTHHMMSSZ`) or the `Date` header
//! (RFC 1123), and the 15-minute clock-skew rule for header-signed requests.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use super::AuthError;

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// Parses the ISO 8601 basic form SigV4 uses: `20130524T000000Z`.
/// Hand-written because it runs on every request and chrono's format
/// parser is comparatively slow.
pub fn parse_amz_date(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let year = i32::try_from(digits(&b[0..4])?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, digits(&b[4..6])?, digits(&b[6..8])?)?;
    let time =
        NaiveTime::from_hms_opt(digits(&b[9..11])?, digits(&b[11..13])?, digits(&b[13..15])?)?;
    Some(NaiveDateTime::new(date, time).and_utc())
}

/// Formats a time in the SigV4 basic form.
pub fn format_amz_date(t: &DateTime<Utc>) -> String {
    let text = second(t);
    let Some(s) = text.as_ref().and_then(|b| std::str::from_utf8(b).ok()) else {
        return t.format("%Y%m%dT%H%M%SZ").to_string();
    };
    let mut out = String::with_capacity(16);
    for part in [
        &s[0..4],
        &s[5..7],
        &s[8..11],
        &s[11..13],
        &s[14..16],
        &s[17..19],
    ] {
        out.push_str(part);
    }
    out.push('Z');
    out
}

thread_local! {
    /// The second [`second`] last wrote on this thread, and its text:
    /// the requests a worker answers within one second share it.
    static LAST_SECOND: std::cell::Cell<Option<(i64, bool, [u8; 19])>> =
        const { std::cell::Cell::new(None) };
}

/// `YYYY-MM-DDTHH:MM:SS` for `t`; `None` for years outside 0..=9999, which
/// need chrono's sign and width rules. Working out the calendar date takes
/// chrono several conversions; within the second last written on this
/// thread the text is copied instead.
fn second(t: &DateTime<Utc>) -> Option<[u8; 19]> {
    // A leap second (nanoseconds past 1e9) shares its timestamp with the
    // second before it, and is written as second 60.
    let key = (t.timestamp(), t.timestamp_subsec_nanos() >= 1_000_000_000);
    let cached = LAST_SECOND.with(|last| match last.get() {
        Some((secs, leap, text)) if (secs, leap) == key => Some(text),
        _ => None,
    });
    let text = match cached {
        Some(text) => text,
        None => {
            let mut out = String::with_capacity(19);
            if !push_date(&mut out, t, "-") {
                return None;
            }
            out.push('T');
            push_time(&mut out, t, ":");
            let text = <[u8; 19]>::try_from(out.as_bytes()).ok()?;
            LAST_SECOND.with(|last| last.set(Some((key.0, key.1, text))));
            text
        }
    };
    Some(text)
}

/// RFC 3339 in UTC with a `Z`, to the second (`aws:CurrentTime`) or the
/// millisecond (audit records): what chrono's `to_rfc3339_opts(_, true)`
/// writes, without its formatting machinery, since every request needs one.
pub fn format_rfc3339(t: &DateTime<Utc>, millis: bool) -> String {
    let text = second(t);
    let Some(s) = text.as_ref().and_then(|b| std::str::from_utf8(b).ok()) else {
        let digits = if millis {
            chrono::SecondsFormat::Millis
        } else {
            chrono::SecondsFormat::Secs
        };
        return t.to_rfc3339_opts(digits, true);
    };
    let mut out = String::with_capacity(24);
    out.push_str(s);
    if millis {
        out.push('.');
        // A leap second shows as 60.xxx in chrono's nanoseconds; keep its
        // milliseconds within three digits as chrono does.
        push_digits(&mut out, (t.timestamp_subsec_millis() % 1000) as u64, 3);
    }
    out.push('Z');
    out
}

/// `YYYY<sep>MM<sep>DD`; false (nothing written) for years outside 0..=9999,
/// which need chrono's sign and width rules.
fn push_date(out: &mut String, t: &DateTime<Utc>, sep: &str) -> bool {
    use chrono::Datelike;
    let Ok(year) = u64::try_from(t.year()) else {
        return false;
    };
    if year > 9999 {
        return false;
    }
    push_digits(out, year, 4);
    out.push_str(sep);
    push_digits(out, u64::from(t.month()), 2);
    out.push_str(sep);
    push_digits(out, u64::from(t.day()), 2);
    true
}

fn push_time(out: &mut String, t: &DateTime<Utc>, sep: &str) {
    use chrono::Timelike;
    push_digits(out, u64::from(t.hour()), 2);
    out.push_str(sep);
    push_digits(out, u64::from(t.minute()), 2);
    out.push_str(sep);
    // chrono shows a leap second (nanoseconds past 1e9) as second 60.
    let leap = u64::from(t.nanosecond() >= 1_000_000_000);
    push_digits(out, u64::from(t.second()) + leap, 2);
}

/// `n` in exactly `width` decimal digits (n < 10^width).
fn push_digits(out: &mut String, n: u64, width: u32) {
    let mut div = 10u64.pow(width - 1);
    while div > 0 {
        out.push(char::from(b'0' + ((n / div) % 10) as u8));
        div /= 10;
    }
}

/// Parses an HTTP date (`Fri, 24 May 2013 00:00:00 GMT` and the obsolete
/// forms RFC 9110 still requires servers to accept).
/// Also accepts RFC 2822 with a numeric zone (`+0000`), which SigV2 signers
/// such as botocore put in the `Date` header.
pub fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    httpdate::parse_http_date(s)
        .ok()
        .map(Into::into)
        .or_else(|| {
            DateTime::parse_from_rfc2822(s)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })
}

/// The signing time of a header-signed request, with the timestamp text that
/// goes into the string to sign (borrowed from `x-amz-date` when that is how
/// it came).
pub fn request_time(headers: &http::HeaderMap) -> Result<(DateTime<Utc>, Cow<'_, str>), AuthError> {
    if let Some(v) = headers.get(&super::X_AMZ_DATE) {
        let s = v.to_str().map_err(|_| AuthError::MissingDate)?;
        let t = parse_amz_date(s).ok_or(AuthError::MissingDate)?;
        return Ok((t, Cow::Borrowed(s)));
    }
    if let Some(v) = headers.get(http::header::DATE) {
        let s = v.to_str().map_err(|_| AuthError::MissingDate)?;
        let t = parse_http_date(s).ok_or(AuthError::MissingDate)?;
        return Ok((t, Cow::Owned(format_amz_date(&t))));
    }
    Err(AuthError::MissingDate)
}

/// Refuses a request signed more than `max_skew_secs` away from `now`.
pub fn check_skew(
    signed: DateTime<Utc>,
    now: DateTime<Utc>,
    max_skew_secs: u64,
) -> Result<(), AuthError> {
    let skew = (now - signed).num_seconds().unsigned_abs();
    if skew > max_skew_secs {
        return Err(AuthError::TimeTooSkewed {
            request_time: format_amz_date(&signed),
            server_time: format_amz_date(&now),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_formatting_matches_chrono() {
        use chrono::{SecondsFormat, TimeZone};
        let mut times: Vec<DateTime<Utc>> =
            [0i64, 1, 59, 951_782_400, 1_764_000_123, 4_102_444_799]
                .iter()
                .map(|&s| Utc.timestamp_opt(s, 0).unwrap())
                .collect();
        times.push(Utc.timestamp_opt(1_764_000_123, 7_000_000).unwrap());
        times.push(Utc.timestamp_opt(1_764_000_123, 999_999_999).unwrap());
        times.push(Utc.timestamp_opt(-62_000_000_000, 120_000_000).unwrap());
        times.push(Utc.timestamp_opt(253_402_300_800, 5_000_000).unwrap());
        // A leap second, as chrono represents it, between the second it
        // shares its timestamp with and that second again.
        times.push(Utc.timestamp_opt(1_483_228_799, 0).unwrap());
        times.push(Utc.timestamp_opt(1_483_228_799, 1_500_000_000).unwrap());
        times.push(Utc.timestamp_opt(1_483_228_799, 2_000_000).unwrap());
        // Each again, now that the one before is this thread's last second.
        let again = times.clone();
        times.extend(again.into_iter().flat_map(|t| [t, t]));
        for t in times {
            assert_eq!(format_amz_date(&t), t.format("%Y%m%dT%H%M%SZ").to_string());
            assert_eq!(
                format_rfc3339(&t, true),
                t.to_rfc3339_opts(SecondsFormat::Millis, true)
            );
            assert_eq!(
                format_rfc3339(&t, false),
                t.to_rfc3339_opts(SecondsFormat::Secs, true)
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

        /// Instants a few seconds apart (so that many share their second
        /// with the one before), written as chrono writes them.
        #[test]
        fn formatting_runs_of_instants_matches_chrono(
            start in -62_135_596_800i64..253_402_300_799,
            steps in proptest::collection::vec((0i64..3, 0u32..2_000_000_000), 1..16),
        ) {
            use chrono::{SecondsFormat, TimeZone};
            let mut secs = start;
            for (step, nanos) in steps {
                secs += step;
                let Some(t) = Utc.timestamp_opt(secs, nanos).single() else {
                    continue;
                };
                proptest::prop_assert_eq!(format_amz_date(&t), t.format("%Y%m%dT%H%M%SZ").to_string());
                proptest::prop_assert_eq!(
                    format_rfc3339(&t, true),
                    t.to_rfc3339_opts(SecondsFormat::Millis, true)
                );
                proptest::prop_assert_eq!(
                    format_rfc3339(&t, false),
                    t.to_rfc3339_opts(SecondsFormat::Secs, true)
                );
            }
        }
    }

    #[test]
    fn amz_date_round_trips() {
        let t = parse_amz_date("20130524T000000Z").unwrap();
        assert_eq!(format_amz_date(&t), "20130524T000000Z");
        assert_eq!(
            format_amz_date(&parse_amz_date("20241231T235959Z").unwrap()),
            "20241231T235959Z"
        );
        for bad in [
            "2013-05-24T00:00:00Z",
            "20130524T000000",
            "20131324T000000Z",
            "20130524T250000Z",
            "2013052AT000000Z",
            "20130524X000000Z",
            "+0130524T000000Z",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn date_header_is_accepted() {
        let mut h = http::HeaderMap::new();
        h.insert("date", "Fri, 24 May 2013 00:00:00 GMT".parse().unwrap());
        let (_, text) = request_time(&h).unwrap();
        assert_eq!(text, "20130524T000000Z");
    }

    #[test]
    fn skew_over_limit_is_refused() {
        let signed = parse_amz_date("20130524T000000Z").unwrap();
        let now = signed + chrono::Duration::seconds(901);
        assert!(matches!(
            check_skew(signed, now, 900),
            Err(AuthError::TimeTooSkewed { .. })
        ));
        assert!(check_skew(signed, signed + chrono::Duration::seconds(900), 900).is_ok());
        assert!(check_skew(signed, signed - chrono::Duration::seconds(901), 900).is_err());
    }
}
