//! The request's condition context: the condition keys and their values for one request.
//!
//! Follows AWS: condition key names are case-insensitive (`aws:SourceIp` = `AWS:sourceip`, and
//! the tag-key part of `aws:PrincipalTag/<key>` too), so keys are stored lowercased. A key is
//! single-valued or multivalued (`aws:TagKeys`, `s3:RequestObjectTagKeys`); a key that is
//! present with an empty value is "null" for the `Null` operator and the set operators, and
//! such a key, like a multivalued one, cannot be used as a policy variable.
//!
//! Values are plain strings, typed only by the operator that reads them: an IP address for
//! `IpAddress`, ISO 8601 or epoch seconds for `Date*`, a decimal for `Numeric*`, `true`/`false`
//! for `Bool`, base64 for `BinaryEquals`.
//!
//! Also which of the request-wide keys policies read ([`Optional`], [`Reads`]): the proxy puts
//! into a request's context only those its deciding policies read, so an absent optional key
//! is one no policy asks for.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The value of one condition key in a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContextValue {
    /// Borrowed when the value is a fixed word (`true`, `REST-QUERY-STRING`,
    /// `User`): a request sets several.
    Single(Cow<'static, str>),
    Multi(Vec<String>),
}

impl ContextValue {
    /// The values: one for a single-valued key.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        let (one, many): (Option<&str>, &[String]) = match self {
            ContextValue::Single(v) => (Some(v), &[]),
            ContextValue::Multi(v) => (None, v),
        };
        one.into_iter().chain(many.iter().map(String::as_str))
    }

    /// AWS's "null": an empty string, or a set with no non-empty value.
    pub fn is_null(&self) -> bool {
        self.values().all(str::is_empty)
    }
}

/// A request-wide condition key the proxy can leave out of a request's
/// context when no policy that decides for the request reads it: each costs
/// a formatted value and a map entry on every request, and most policies
/// read one or two of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Optional {
    SourceIp,
    SecureTransport,
    CurrentTime,
    EpochTime,
    UserAgent,
    Referer,
    RequestedRegion,
    TlsVersion,
    AuthType,
    SignatureVersion,
    SignatureAge,
    ContentSha256,
    ResourceAccount,
    PrincipalType,
    UserId,
    PrincipalArn,
    PrincipalAccount,
    Username,
    TokenIssueTime,
    MultiFactorAuthPresent,
    FederatedProvider,
}

impl Optional {
    /// Every optional key, in bit order.
    pub const ALL: [Optional; 21] = [
        Optional::SourceIp,
        Optional::SecureTransport,
        Optional::CurrentTime,
        Optional::EpochTime,
        Optional::UserAgent,
        Optional::Referer,
        Optional::RequestedRegion,
        Optional::TlsVersion,
        Optional::AuthType,
        Optional::SignatureVersion,
        Optional::SignatureAge,
        Optional::ContentSha256,
        Optional::ResourceAccount,
        Optional::PrincipalType,
        Optional::UserId,
        Optional::PrincipalArn,
        Optional::PrincipalAccount,
        Optional::Username,
        Optional::TokenIssueTime,
        Optional::MultiFactorAuthPresent,
        Optional::FederatedProvider,
    ];

    /// The key's name, in the lowercase form the context stores.
    pub const fn key(self) -> &'static str {
        match self {
            Optional::SourceIp => "aws:sourceip",
            Optional::SecureTransport => "aws:securetransport",
            Optional::CurrentTime => "aws:currenttime",
            Optional::EpochTime => "aws:epochtime",
            Optional::UserAgent => "aws:useragent",
            Optional::Referer => "aws:referer",
            Optional::RequestedRegion => "aws:requestedregion",
            Optional::TlsVersion => "s3:tlsversion",
            Optional::AuthType => "s3:authtype",
            Optional::SignatureVersion => "s3:signatureversion",
            Optional::SignatureAge => "s3:signatureage",
            Optional::ContentSha256 => "s3:x-amz-content-sha256",
            Optional::ResourceAccount => "s3:resourceaccount",
            Optional::PrincipalType => "aws:principaltype",
            Optional::UserId => "aws:userid",
            Optional::PrincipalArn => "aws:principalarn",
            Optional::PrincipalAccount => "aws:principalaccount",
            Optional::Username => "aws:username",
            Optional::TokenIssueTime => "aws:tokenissuetime",
            Optional::MultiFactorAuthPresent => "aws:multifactorauthpresent",
            Optional::FederatedProvider => "aws:federatedprovider",
        }
    }
}

/// Which [`Optional`] keys some policies read: a policy notes every key its
/// conditions test and every variable its texts hold when it is compiled,
/// and a request's context holds just those of the policies that decide for
/// it. A key that is not optional is always set, whatever this says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reads(u32);

impl Reads {
    pub const NONE: Reads = Reads(0);
    pub const ALL: Reads = Reads(u32::MAX);

    /// Notes a key a policy reads (lowercase); keys that are not optional
    /// are always in the context and need no note.
    pub(crate) fn note(&mut self, lower: &str) {
        if let Some(i) = Optional::ALL.iter().position(|k| k.key() == lower) {
            self.0 |= 1 << i;
        }
    }

    pub fn union(self, other: Reads) -> Reads {
        Reads(self.0 | other.0)
    }

    /// Whether the key is read, so must be in the context.
    pub fn has(self, key: Optional) -> bool {
        self.0 & (1 << key as u32) != 0
    }
}

/// FNV-1a: the map is small and hashed on every condition, so a keyed hash (SipHash) costs more
/// than it protects; its keys are the proxy's own names plus a bounded number of tag keys.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Keys the proxy names itself are borrowed, not allocated: a request sets about twenty.
type Map = HashMap<Cow<'static, str>, ContextValue, BuildHasherDefault<Fnv>>;

/// The condition keys of one request. Key names are case-insensitive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    values: Map,
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

/// The lowercase form under which keys are stored and looked up.
pub(crate) fn lowercase_key(key: &str) -> String {
    if key.is_ascii() {
        key.to_ascii_lowercase()
    } else {
        key.to_lowercase()
    }
}

/// A key named in the code, borrowed when written in lowercase already.
fn static_key(key: &'static str) -> Cow<'static, str> {
    if key.bytes().any(|b| !b.is_ascii() || b.is_ascii_uppercase()) {
        Cow::Owned(lowercase_key(key))
    } else {
        Cow::Borrowed(key)
    }
}

impl Context {
    pub fn new() -> Self {
        // Room for the ~20 keys the proxy sets on an S3 request, so it never rehashes.
        Context {
            values: Map::with_capacity_and_hasher(24, BuildHasherDefault::default()),
        }
    }

    /// Sets a single-valued key, replacing any earlier value.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(
            Cow::Owned(lowercase_key(key)),
            ContextValue::Single(Cow::Owned(value.into())),
        );
    }

    /// [`Context::set`] for a key named in the code: kept as it is, without
    /// an allocation, when written in lowercase (the form keys are stored in).
    pub fn set_static(&mut self, key: &'static str, value: impl Into<String>) {
        self.values.insert(
            static_key(key),
            ContextValue::Single(Cow::Owned(value.into())),
        );
    }

    /// [`Context::set_static`] for a value that is a fixed word, kept
    /// without a copy.
    pub fn set_static_word(&mut self, key: &'static str, value: &'static str) {
        self.values
            .insert(static_key(key), ContextValue::Single(Cow::Borrowed(value)));
    }

    /// Sets a multivalued key (`aws:TagKeys`, `s3:RequestObjectTagKeys`), replacing any earlier
    /// value. An empty list is a present-but-empty set.
    pub fn set_multi(&mut self, key: &str, values: Vec<String>) {
        self.values
            .insert(Cow::Owned(lowercase_key(key)), ContextValue::Multi(values));
    }

    /// The value of a key, whatever the case it is asked in.
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        if key.chars().any(char::is_uppercase) {
            self.values.get(lowercase_key(key).as_str())
        } else {
            self.values.get(key)
        }
    }

    /// Removes a key; returns its value if it was present.
    pub fn remove(&mut self, key: &str) -> Option<ContextValue> {
        self.values.remove(lowercase_key(key).as_str())
    }

    /// Every key (lowercased) and its value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        self.values.iter().map(|(k, v)| (k.as_ref(), v))
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Lookup by a key already lowercased at policy load (the evaluation hot path).
    pub(crate) fn get_lower(&self, lower: &str) -> Option<&ContextValue> {
        self.values.get(lower)
    }

    /// The text a policy variable `${key}` stands for: only a non-empty single value counts,
    /// since AWS resolves variables from single-valued keys only and treats empty as no value.
    pub(crate) fn variable(&self, lower: &str) -> Option<&str> {
        match self.values.get(lower) {
            Some(ContextValue::Single(v)) if !v.is_empty() => Some(v.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive() {
        let mut ctx = Context::new();
        ctx.set("aws:SourceIp", "192.0.2.1");
        assert_eq!(
            ctx.get("AWS:sourceip"),
            Some(&ContextValue::Single("192.0.2.1".into()))
        );
        assert_eq!(
            ctx.get_lower("aws:sourceip")
                .map(|v| v.values().collect::<Vec<_>>()),
            Some(vec!["192.0.2.1"])
        );
        ctx.set("AWS:SOURCEIP", "192.0.2.2");
        assert_eq!(ctx.len(), 1);
        assert_eq!(
            ctx.get("aws:sourceip").and_then(|v| v.values().next()),
            Some("192.0.2.2")
        );
    }

    #[test]
    fn static_keys_are_the_same_keys_in_any_case() {
        let mut ctx = Context::new();
        ctx.set_static("aws:sourceip", "192.0.2.1");
        ctx.set_static("aws:SourceIp", "192.0.2.2");
        assert_eq!(ctx.len(), 1);
        assert_eq!(
            ctx.get("AWS:SOURCEIP"),
            Some(&ContextValue::Single("192.0.2.2".into()))
        );
        ctx.set("aws:SOURCEIP", "192.0.2.3");
        assert_eq!(ctx.len(), 1);
        assert_eq!(
            ctx.get_lower("aws:sourceip")
                .map(|v| v.values().collect::<Vec<_>>()),
            Some(vec!["192.0.2.3"])
        );
        assert!(ctx.remove("aws:SourceIP").is_some());
        assert!(ctx.is_empty());
    }

    #[test]
    fn a_fixed_word_reads_as_a_copied_value() {
        let mut words = Context::new();
        words.set_static_word("aws:SecureTransport", "true");
        let mut copied = Context::new();
        copied.set("aws:securetransport", "true");
        assert_eq!(words, copied);
        assert_eq!(words.variable("aws:securetransport"), Some("true"));
    }

    #[test]
    fn tag_key_suffix_is_case_insensitive_too() {
        let mut ctx = Context::new();
        ctx.set("aws:PrincipalTag/Team", "blue");
        assert!(ctx.get("aws:principaltag/team").is_some());
    }

    #[test]
    fn null_means_empty() {
        assert!(ContextValue::Single("".into()).is_null());
        assert!(ContextValue::Multi(vec![]).is_null());
        assert!(ContextValue::Multi(vec![String::new()]).is_null());
        assert!(!ContextValue::Multi(vec!["a".into()]).is_null());
        assert!(!ContextValue::Single("x".into()).is_null());
    }

    #[test]
    fn variables_resolve_only_from_non_empty_single_values() {
        let mut ctx = Context::new();
        ctx.set("aws:username", "alice");
        ctx.set("aws:userid", "");
        ctx.set_multi("aws:tagkeys", vec!["a".into()]);
        assert_eq!(ctx.variable("aws:username"), Some("alice"));
        assert_eq!(ctx.variable("aws:userid"), None);
        assert_eq!(ctx.variable("aws:tagkeys"), None);
        assert_eq!(ctx.variable("aws:missing"), None);
        assert_eq!(
            ctx.remove("AWS:UserName"),
            Some(ContextValue::Single("alice".into()))
        );
        assert_eq!(ctx.variable("aws:username"), None);
    }

    #[test]
    fn each_optional_key_has_its_own_bit() {
        for (i, key) in Optional::ALL.iter().enumerate() {
            assert_eq!(*key as usize, i, "{key:?} out of bit order");
            let mut reads = Reads::NONE;
            reads.note(key.key());
            assert!(reads.has(*key));
            let others = Optional::ALL.iter().filter(|k| *k != key);
            assert!(others.clone().all(|k| !reads.has(*k)), "{key:?}");
            assert_eq!(key.key(), lowercase_key(key.key()), "stored lowercase");
        }
        let mut reads = Reads::NONE;
        reads.note("s3:prefix");
        reads.note("aws:principaltag/team");
        assert_eq!(reads, Reads::NONE, "keys that are always set need no note");
        assert!(Optional::ALL.iter().all(|k| Reads::ALL.has(*k)));
    }
}
