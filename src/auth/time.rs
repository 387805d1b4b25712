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
    t.format("%Y%m%dT%H%M%SZ").to_string()
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
    if let Some(v) = headers.get("x-amz-date") {
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
