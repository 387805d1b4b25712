//! Request timestamps: `x-amz-date` (`YYYYMMDDTHHMMSSZ`) or the `Date` header
//! (RFC 1123), and the 15-minute clock-skew rule for header-signed requests.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::AuthError;

/// Parses the ISO 8601 basic form SigV4 uses: `20130524T000000Z`.
pub fn parse_amz_date(s: &str) -> Option<DateTime<Utc>> {
    if s.len() != 16 {
        return None;
    }
    NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|n| n.and_utc())
}

/// Formats a time in the SigV4 basic form.
pub fn format_amz_date(t: &DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The signing time of a header-signed request, with the timestamp text that
/// goes into the string to sign.
pub fn request_time(headers: &http::HeaderMap) -> Result<(DateTime<Utc>, String), AuthError> {
    if let Some(v) = headers.get("x-amz-date") {
        let s = v.to_str().map_err(|_| AuthError::MissingDate)?;
        let t = parse_amz_date(s).ok_or(AuthError::MissingDate)?;
        return Ok((t, s.to_string()));
    }
    if let Some(v) = headers.get(http::header::DATE) {
        let s = v.to_str().map_err(|_| AuthError::MissingDate)?;
        let t: DateTime<Utc> = httpdate::parse_http_date(s)
            .map_err(|_| AuthError::MissingDate)?
            .into();
        return Ok((t, format_amz_date(&t)));
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
        assert!(parse_amz_date("2013-05-24T00:00:00Z").is_none());
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
