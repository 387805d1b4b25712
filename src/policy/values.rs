//! Typed condition values: decimals, dates, IP ranges, booleans and base64.
//!
//! Follows the IAM User Guide's condition operators page: `Numeric*` compares integers or
//! decimals (compared exactly here, digit by digit, never through floating point); `Date*`
//! takes the W3C profile of ISO 8601 (`YYYY-MM-DD`, `YYYY-MM-DDThh:mmTZD`,
//! `YYYY-MM-DDThh:mm:ss[.s]TZD`, also `YYYY-MM`, a missing zone meaning UTC) or epoch seconds
//! (a string of digits is always read as epoch seconds, never as a bare year); `IpAddress` takes
//! IPv4 and IPv6 CIDRs, an address without a prefix meaning one host, host bits beyond the
//! prefix ignored, and IPv4-mapped IPv6 request addresses compared as IPv4; `Bool` takes
//! `true`/`false` in any case; `BinaryEquals` compares base64-decoded bytes.

use std::cmp::Ordering;
use std::net::IpAddr;

use base64::Engine;
use chrono::{NaiveDate, NaiveTime};

/// A decimal number borrowed from its text, normalised so that equal values compare equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decimal<'a> {
    negative: bool,
    /// Integer digits without leading zeros.
    int: &'a str,
    /// Fraction digits without trailing zeros.
    frac: &'a str,
}

impl<'a> Decimal<'a> {
    /// `[+-]digits[.digits]`, `.5` and `5.` included; no exponent, no spaces.
    pub fn parse(text: &'a str) -> Option<Decimal<'a>> {
        let (negative, unsigned) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
            return None;
        }
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        Some(Decimal {
            negative: negative && !(int.is_empty() && frac.is_empty()),
            int,
            frac,
        })
    }

    fn magnitude_cmp(&self, other: &Self) -> Ordering {
        self.int
            .len()
            .cmp(&other.int.len())
            .then_with(|| self.int.cmp(other.int))
            .then_with(|| self.frac.cmp(other.frac))
    }
}

impl Ord for Decimal<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.magnitude_cmp(other),
            (true, true) => other.magnitude_cmp(self),
        }
    }
}

impl PartialOrd for Decimal<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// An instant, as seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timestamp {
    secs: i64,
    nanos: u32,
}

impl Timestamp {
    pub fn parse(text: &str) -> Option<Timestamp> {
        let body = text.strip_prefix('-').unwrap_or(text);
        if body.bytes().next().is_some_and(|b| b.is_ascii_digit())
            && body.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        {
            return Self::parse_epoch(text);
        }
        Self::parse_iso(text)
    }

    fn parse_epoch(text: &str) -> Option<Timestamp> {
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if int.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let secs: i64 = int.parse().ok()?;
        let nanos = fraction_nanos(frac)?;
        if !negative {
            return Some(Timestamp { secs, nanos });
        }
        // -1.25 s is 1.75 s before -1 s... i.e. (-2 s, 0.75e9 ns).
        if nanos == 0 {
            Some(Timestamp { secs: -secs, nanos })
        } else {
            Some(Timestamp {
                secs: -secs - 1,
                nanos: 1_000_000_000 - nanos,
            })
        }
    }

    fn parse_iso(text: &str) -> Option<Timestamp> {
        let mut s = Scanner(text);
        let year = s.digits(4)? as i32;
        let (month, day) = if s.eat('-') {
            let month = s.digits(2)?;
            let day = if s.eat('-') { s.digits(2)? } else { 1 };
            (month, day)
        } else {
            (1, 1)
        };
        let mut time = NaiveTime::MIN;
        let mut offset_secs = 0i64;
        if s.eat('T') || s.eat('t') {
            let hour = s.digits(2)?;
            if !s.eat(':') {
                return None;
            }
            let minute = s.digits(2)?;
            let (mut second, mut nanos) = (0, 0);
            if s.eat(':') {
                second = s.digits(2)?;
                if s.eat('.') {
                    nanos = fraction_nanos(s.take_digits())?;
                }
            }
            time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
            offset_secs = s.zone()?;
        }
        if !s.0.is_empty() {
            return None;
        }
        let date = NaiveDate::from_ymd_opt(year, month, day)?;
        let utc = date.and_time(time).and_utc();
        Some(Timestamp {
            secs: utc.timestamp().checked_sub(offset_secs)?,
            nanos: utc.timestamp_subsec_nanos(),
        })
    }
}

/// Up to nine fraction digits as nanoseconds; further digits are ignored.
fn fraction_nanos(frac: &str) -> Option<u32> {
    if frac.is_empty() {
        return Some(0);
    }
    let mut nanos = 0u32;
    for (i, b) in frac.bytes().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        if i < 9 {
            nanos = nanos * 10 + u32::from(b - b'0');
        }
    }
    Some(nanos * 10u32.pow(9u32.saturating_sub(frac.len() as u32)))
}

struct Scanner<'a>(&'a str);

impl Scanner<'_> {
    fn eat(&mut self, c: char) -> bool {
        match self.0.strip_prefix(c) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let head = self.0.get(..n)?;
        if !head.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.0 = &self.0[n..];
        head.parse().ok()
    }

    fn take_digits(&mut self) -> &str {
        let end = self
            .0
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(self.0.len());
        let (head, rest) = self.0.split_at(end);
        self.0 = rest;
        head
    }

    /// `Z`, `+hh:mm`, `-hhmm`, or nothing (UTC): the offset east of UTC in seconds.
    fn zone(&mut self) -> Option<i64> {
        if self.eat('Z') || self.eat('z') || self.0.is_empty() {
            return Some(0);
        }
        let sign = if self.eat('+') {
            1
        } else if self.eat('-') {
            -1
        } else {
            return None;
        };
        let hours = self.digits(2)?;
        self.eat(':');
        let minutes = self.digits(2)?;
        if hours > 23 || minutes > 59 {
            return None;
        }
        Some(sign * i64::from(hours * 3600 + minutes * 60))
    }
}

/// An IP network from a policy. IPv4 networks keep their address in the low 32 bits and
/// match only IPv4 addresses; IPv6 networks only IPv6 ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    v4: bool,
    net: u128,
    mask: u128,
}

/// Address family, width in bits, and the address as a number.
fn ip_bits(ip: IpAddr) -> (bool, u32, u128) {
    match ip {
        IpAddr::V4(a) => (true, 32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (false, 128, u128::from(a)),
    }
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => {
                if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (addr, Some(prefix.parse::<u32>().ok()?))
            }
            None => (text, None),
        };
        let (v4, bits, value) = ip_bits(addr.parse::<IpAddr>().ok()?);
        let len = prefix.unwrap_or(bits);
        if len > bits {
            return None;
        }
        // `len` leading ones within the family's width.
        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0) >> (128 - bits);
        Some(Cidr {
            v4,
            net: value & mask,
            mask,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v4, _, value) = ip_bits(ip);
        v4 == self.v4 && value & self.mask == self.net
    }
}

/// A request's IP address; IPv4-mapped IPv6 addresses (from dual-stack sockets) become IPv4.
pub(crate) fn parse_ip(text: &str) -> Option<IpAddr> {
    match text.parse::<IpAddr>().ok()? {
        IpAddr::V6(a) => Some(match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(a),
        }),
        v4 => Some(v4),
    }
}

/// `true` or `false`, in any case.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Standard base64, padding optional.
pub(crate) fn parse_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::DecodePaddingMode;
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal<'_> {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn decimals_compare_exactly() {
        assert_eq!(d("10"), d("010.000"));
        assert_eq!(d("-0"), d("0"));
        assert_eq!(d("+5"), d("5"));
        assert!(d("9") < d("10"));
        assert!(d("-10") < d("-9"));
        assert!(d("0.05") < d("0.5"));
        assert!(d("0.5") < d("0.51"));
        assert!(d("1.2") > d("1.19999999999999999999"));
        assert!(d("-1") < d("0"));
        assert!(d("9007199254740993") > d("9007199254740992"));
        assert!(d(".5") == d("0.5"));
        assert!(d("5.") == d("5"));
        for bad in ["", "-", ".", "1e3", "1.2.3", " 1", "0x10", "1_000", "++1"] {
            assert!(Decimal::parse(bad).is_none(), "{bad}");
        }
    }

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn dates_in_iso_forms_and_epoch() {
        let noon = t("2020-01-01T12:00:00Z");
        assert_eq!(noon, t("1577880000"));
        assert_eq!(noon, t("2020-01-01T12:00Z"));
        assert_eq!(noon, t("2020-01-01T12:00:00"));
        assert_eq!(noon, t("2020-01-01T14:00:00+02:00"));
        assert_eq!(noon, t("2020-01-01T07:00:00-0500"));
        assert_eq!(noon, t("2020-01-01T12:00:00.000Z"));
        assert!(t("2020-01-01T12:00:00.5Z") > noon);
        assert_eq!(t("2020-01-01"), t("2020-01-01T00:00:00Z"));
        assert_eq!(t("2020-02"), t("2020-02-01T00:00:00Z"));
        assert_eq!(t("1577880000.5"), t("2020-01-01T12:00:00.5Z"));
        assert!(t("-1.25") < t("-1"));
        assert!(t("-1.25") > t("-2"));
        for bad in [
            "",
            "2020-13-01",
            "2020-02-30",
            "2020-01-01T25:00Z",
            "2020-01-01T12Z",
            "2020-01-01 12:00:00Z",
            "yesterday",
            "2020-01-01T12:00:00+2",
            "2020-01-01T12:00:00Zjunk",
            "1.2.3",
        ] {
            assert!(Timestamp::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn cidrs_v4_and_v6() {
        let c = Cidr::parse("192.0.2.0/24").unwrap();
        assert!(c.contains(parse_ip("192.0.2.200").unwrap()));
        assert!(!c.contains(parse_ip("192.0.3.1").unwrap()));
        assert!(c.contains(parse_ip("::ffff:192.0.2.7").unwrap()));
        let host = Cidr::parse("203.0.113.9").unwrap();
        assert!(host.contains(parse_ip("203.0.113.9").unwrap()));
        assert!(!host.contains(parse_ip("203.0.113.8").unwrap()));
        assert_eq!(Cidr::parse("192.0.2.77/24"), Cidr::parse("192.0.2.0/24"));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(parse_ip("8.8.8.8").unwrap()));
        assert!(!all.contains(parse_ip("::1").unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(parse_ip("2001:db8:1::5").unwrap()));
        assert!(!v6.contains(parse_ip("2001:db9::5").unwrap()));
        assert!(
            Cidr::parse("::/0")
                .unwrap()
                .contains(parse_ip("::1").unwrap())
        );
        for bad in [
            "",
            "192.0.2.0/33",
            "2001:db8::/129",
            "192.0.2.0/",
            "192.0.2/24",
            "x",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
        ] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn booleans_and_base64() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_base64("QUJD"), Some(b"ABC".to_vec()));
        assert_eq!(parse_base64("QUI="), Some(b"AB".to_vec()));
        assert_eq!(parse_base64("QUI"), Some(b"AB".to_vec()));
        assert_eq!(parse_base64("*"), None);
    }
}
