//! Wildcard matching of actions and ARNs.
//!
//! Follows the IAM User Guide (Action, Resource and ARN-operator pages): `*` matches any run of
//! characters, `?` exactly one; actions compare case-insensitively (patterns are lowercased at
//! load and the request's action once per evaluation), ARNs case-sensitively; an
//! ARN is compared component by component — split at its first five colons, the sixth part
//! keeping any further colons — so a wildcard never spills from one component into another
//! (another service, region, account or bucket). Within the resource component `*` spans `/`.
//! `*` alone as a Resource matches every resource, including the `arn:aws:s3:::` that stands
//! for actions with no resource type.

use super::context::Context;
use super::variables::{Template, Token};

/// One element of a pattern being matched, borrowed either from a compiled pattern or from
/// substituted variable values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    Lit(&'a str),
    Star,
    One,
}

impl<'a> Piece<'a> {
    /// The text the piece stands for (a wildcard, as its character).
    pub fn text(&self) -> &'a str {
        match self {
            Piece::Lit(s) => s,
            Piece::Star => "*",
            Piece::One => "?",
        }
    }
}

/// A compiled pattern without variables, with fast paths for the common shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Glob {
    /// `*`
    Any,
    /// No wildcard.
    Exact(Box<str>),
    /// `literal*`
    Prefix(Box<str>),
    General(Vec<OwnedPiece>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OwnedPiece {
    Lit(Box<str>),
    Star,
    One,
}

/// What `glob_match` walks: compiled pieces or pieces borrowed from substituted values.
pub(crate) trait AsPiece {
    fn piece(&self) -> Piece<'_>;
}

impl AsPiece for Piece<'_> {
    fn piece(&self) -> Piece<'_> {
        *self
    }
}

impl AsPiece for OwnedPiece {
    fn piece(&self) -> Piece<'_> {
        match self {
            OwnedPiece::Lit(s) => Piece::Lit(s),
            OwnedPiece::Star => Piece::Star,
            OwnedPiece::One => Piece::One,
        }
    }
}

impl Glob {
    /// Compiles tokens; `None` if they hold a variable (those are matched by `Template`).
    pub fn from_tokens(tokens: &[Token]) -> Option<Glob> {
        let mut pieces = Vec::with_capacity(tokens.len());
        for token in tokens {
            pieces.push(match token {
                Token::Lit(s) => OwnedPiece::Lit(s.clone()),
                Token::Star => OwnedPiece::Star,
                Token::One => OwnedPiece::One,
                Token::Var(_) => return None,
            });
        }
        Some(Glob::from_pieces(pieces))
    }

    /// Compiles a pattern string with `*` and `?` as wildcards (no variables).
    pub fn new(pattern: &str) -> Glob {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        for c in pattern.chars() {
            if c != '*' && c != '?' {
                lit.push(c);
                continue;
            }
            if !lit.is_empty() {
                pieces.push(OwnedPiece::Lit(std::mem::take(&mut lit).into_boxed_str()));
            }
            if c == '?' {
                pieces.push(OwnedPiece::One);
            } else if pieces.last() != Some(&OwnedPiece::Star) {
                pieces.push(OwnedPiece::Star);
            }
        }
        if !lit.is_empty() {
            pieces.push(OwnedPiece::Lit(lit.into_boxed_str()));
        }
        Glob::from_pieces(pieces)
    }

    fn from_pieces(pieces: Vec<OwnedPiece>) -> Glob {
        match pieces.as_slice() {
            [] => Glob::Exact("".into()),
            [OwnedPiece::Star] => Glob::Any,
            [OwnedPiece::Lit(s)] => Glob::Exact(s.clone()),
            [OwnedPiece::Lit(s), OwnedPiece::Star] => Glob::Prefix(s.clone()),
            _ => Glob::General(pieces),
        }
    }

    /// Whether `text` matches (case-sensitively).
    pub fn matches(&self, text: &str) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(s) => text == &**s,
            Glob::Prefix(s) => text.starts_with(&**s),
            Glob::General(pieces) => glob_match(pieces, text),
        }
    }

    /// The text, if the pattern has no wildcard.
    pub fn literal(&self) -> Option<&str> {
        match self {
            Glob::Exact(s) => Some(s),
            _ => None,
        }
    }
}

/// Length of the UTF-8 character that starts with `b` (so `?` consumes whole characters).
fn char_len(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Glob matching with backtracking to the last `*` only, which is exact for `*`/`?` patterns
/// and linear in the common cases.
pub(crate) fn glob_match<P: AsPiece>(pattern: &[P], text: &str) -> bool {
    let t = text.as_bytes();
    let (mut p, mut i) = (0usize, 0usize);
    // After a `*`: the pattern index following it, and where in the text its match ends.
    let mut resume: Option<(usize, usize)> = None;
    loop {
        if let Some(token) = pattern.get(p) {
            match token.piece() {
                Piece::Star => {
                    p += 1;
                    if p == pattern.len() {
                        return true;
                    }
                    resume = Some((p, i));
                    continue;
                }
                Piece::One => {
                    if let Some(&b) = t.get(i) {
                        i = (i + char_len(b)).min(t.len());
                        p += 1;
                        continue;
                    }
                }
                Piece::Lit(lit) => {
                    if t.get(i..).unwrap_or_default().starts_with(lit.as_bytes()) {
                        i += lit.len();
                        p += 1;
                        continue;
                    }
                }
            }
        } else if i == t.len() {
            return true;
        }
        // Mismatch: let the last `*` swallow one more character, or fail.
        match resume {
            Some((rp, ri)) if ri < t.len() => {
                let next = (ri + t.get(ri).map_or(1, |&b| char_len(b))).min(t.len());
                resume = Some((rp, next));
                p = rp;
                i = next;
            }
            _ => return false,
        }
    }
}

/// Splits a request ARN at its first five colons. `None` for anything that is not an ARN.
pub(crate) fn split_arn(text: &str) -> Option<[&str; 6]> {
    split_arn_parts(text, false)
}

/// Splits an ARN (or ARN pattern) at its first five colons; the sixth part keeps any further
/// colons. With `variables`, colons inside `${...}` do not count (so `${aws:username}` stays
/// whole). `None` if there are fewer than five colons.
pub(crate) fn split_arn_parts(text: &str, variables: bool) -> Option<[&str; 6]> {
    let bytes = text.as_bytes();
    let mut cuts = [0usize; 5];
    let mut found = 0;
    let mut i = 0;
    while i < bytes.len() && found < 5 {
        if variables && bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'{') {
            match text[i..].find('}') {
                Some(end) => {
                    i += end + 1;
                    continue;
                }
                None => break,
            }
        }
        if bytes[i] == b':' {
            cuts[found] = i;
            found += 1;
        }
        i += 1;
    }
    if found < 5 {
        return None;
    }
    Some([
        &text[..cuts[0]],
        &text[cuts[0] + 1..cuts[1]],
        &text[cuts[1] + 1..cuts[2]],
        &text[cuts[2] + 1..cuts[3]],
        &text[cuts[3] + 1..cuts[4]],
        &text[cuts[4] + 1..],
    ])
}

/// An ARN pattern: six component templates, matched component by component.
#[derive(Clone, Debug)]
pub(crate) struct ArnPattern {
    pub source: Box<str>,
    pub parts: Box<[Template; 6]>,
}

impl ArnPattern {
    /// Matches an already-split ARN. The resource component, the most selective, goes first.
    pub fn matches(&self, arn: &[&str; 6], ctx: &Context) -> bool {
        const ORDER: [usize; 6] = [5, 4, 2, 3, 1, 0];
        ORDER.iter().all(|&i| self.parts[i].matches(arn[i], ctx))
    }
}

/// One entry of Action / NotAction, compiled lowercase.
#[derive(Clone, Debug)]
pub(crate) struct ActionPattern {
    pub source: Box<str>,
    pub glob: Glob,
}

/// The statement's Action or NotAction element.
#[derive(Clone, Debug)]
pub(crate) struct ActionSpec {
    pub negated: bool,
    pub patterns: Vec<ActionPattern>,
}

impl ActionSpec {
    /// `action` must already be ASCII-lowercased, as the patterns are.
    pub fn matches(&self, action: &str) -> bool {
        self.patterns.iter().any(|p| p.glob.matches(action)) != self.negated
    }
}

/// Calls `f` with `action` ASCII-lowercased, without allocating for ordinary action names.
pub(crate) fn with_lowercase<R>(action: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 128];
    match buf.get_mut(..action.len()) {
        Some(lower) => {
            lower.copy_from_slice(action.as_bytes());
            lower.make_ascii_lowercase();
            // ASCII lowercasing keeps UTF-8 valid, so this never falls back.
            match std::str::from_utf8(lower) {
                Ok(lower) => f(lower),
                Err(_) => f(&action.to_ascii_lowercase()),
            }
        }
        None => f(&action.to_ascii_lowercase()),
    }
}

/// One entry of Resource / NotResource.
#[derive(Clone, Debug)]
pub(crate) enum ResourcePattern {
    Any,
    Arn(ArnPattern),
}

impl ResourcePattern {
    pub fn source(&self) -> &str {
        match self {
            ResourcePattern::Any => "*",
            ResourcePattern::Arn(p) => &p.source,
        }
    }
}

/// The request's resource, split once per evaluation.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    Arn([&'a str; 6]),
    Other,
}

impl<'a> Target<'a> {
    pub fn new(resource: &'a str) -> Target<'a> {
        match split_arn(resource) {
            Some(parts) if parts[0] == "arn" => Target::Arn(parts),
            _ => Target::Other,
        }
    }
}

/// The statement's Resource or NotResource element.
#[derive(Clone, Debug)]
pub(crate) struct ResourceSpec {
    pub negated: bool,
    pub patterns: Vec<ResourcePattern>,
}

impl ResourceSpec {
    pub fn matches(&self, target: &Target<'_>, ctx: &Context) -> bool {
        let any = self.patterns.iter().any(|p| match (p, target) {
            (ResourcePattern::Any, _) => true,
            (ResourcePattern::Arn(arn), Target::Arn(parts)) => arn.matches(parts, ctx),
            (ResourcePattern::Arn(_), Target::Other) => false,
        });
        any != self.negated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).matches(text)
    }

    #[test]
    fn star_and_question_mark() {
        assert!(m("*", ""));
        assert!(m("*", "anything/at:all"));
        assert!(m("a*", "a"));
        assert!(m("a*c", "abbbc"));
        assert!(m("a*c", "ac"));
        assert!(!m("a*c", "acb"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*/test/*", "1/2/test/3/x"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "aXbYbZ"));
        assert!(m("**", "x"));
        assert!(m("?*", "x"));
        assert!(!m("?*", ""));
        assert!(m("*a", "aaa"));
        assert!(!m("", "a"));
        assert!(m("", ""));
    }

    #[test]
    fn question_mark_is_one_character_not_one_byte() {
        assert!(m("caf?", "café"));
        assert!(m("?", "日"));
        assert!(!m("??", "日"));
        assert!(m("*é", "ééé"));
        assert!(m("*?", "日本"));
    }

    #[test]
    fn actions_are_lowercased_once() {
        assert_eq!(
            with_lowercase("S3:GetObject", str::to_owned),
            "s3:getobject"
        );
        let long = format!("s3:{}", "A".repeat(300));
        assert_eq!(with_lowercase(&long, str::len), long.len());
        assert_eq!(with_lowercase("s3:Ünïcode", str::to_owned), "s3:Ünïcode");
        let spec = ActionSpec {
            negated: false,
            patterns: vec![ActionPattern {
                source: "S3:Get*".into(),
                glob: Glob::new("s3:get*"),
            }],
        };
        assert!(with_lowercase("s3:GETOBJECT", |a| spec.matches(a)));
        assert!(!with_lowercase("s3:PutObject", |a| spec.matches(a)));
    }

    #[test]
    fn fast_paths_are_chosen() {
        assert_eq!(Glob::new("*"), Glob::Any);
        assert_eq!(Glob::new("***"), Glob::Any);
        assert_eq!(Glob::new("abc"), Glob::Exact("abc".into()));
        assert_eq!(Glob::new("abc*"), Glob::Prefix("abc".into()));
        assert!(matches!(Glob::new("a?c"), Glob::General(_)));
    }

    #[test]
    fn arn_patterns_keep_variables_whole() {
        assert_eq!(split_arn_parts("arn:aws:s3::", false), None);
        assert_eq!(
            split_arn_parts("arn:aws:iam::${aws:PrincipalAccount}:user/x", true),
            Some(["arn", "aws", "iam", "", "${aws:PrincipalAccount}", "user/x"])
        );
        assert_eq!(
            split_arn_parts("arn:aws:iam::${aws:PrincipalAccount}:user/x", false),
            Some(["arn", "aws", "iam", "", "${aws", "PrincipalAccount}:user/x"])
        );
        assert_eq!(
            split_arn_parts("arn:aws:s3:::${unterminated", true),
            Some(["arn", "aws", "s3", "", "", "${unterminated"])
        );
        assert_eq!(split_arn_parts("arn:aws:s3:${x", true), None);
    }

    #[test]
    fn arns_split_at_first_five_colons() {
        assert_eq!(
            split_arn("arn:aws:s3:::bucket/a:b"),
            Some(["arn", "aws", "s3", "", "", "bucket/a:b"])
        );
        assert_eq!(split_arn("arn:aws:s3"), None);
        assert!(matches!(Target::new("arn:aws:s3:::"), Target::Arn(p) if p[5].is_empty()));
        assert!(matches!(Target::new("bucket/key"), Target::Other));
        assert!(matches!(Target::new("ARN:aws:s3:::b"), Target::Other));
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let text = "a".repeat(10_000);
        let pattern = format!("{}b", "*a".repeat(50));
        let start = std::time::Instant::now();
        assert!(!m(&pattern, &text));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }
}
