//! Wildcard matching of actions and ARNs.
//!
//! Follows the IAM User Guide (Action, Resource and ARN-operator pages): `*` matches any run of
//! characters, `?` exactly one; actions compare case-insensitively, ARNs case-sensitively; an
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

trait AsPiece {
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

    /// Whether `text` matches; `fold` compares ASCII letters case-insensitively.
    pub fn matches(&self, text: &str, fold: bool) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(s) => eq_bytes(text.as_bytes(), s.as_bytes(), fold),
            Glob::Prefix(s) => starts_with(text.as_bytes(), s.as_bytes(), fold),
            Glob::General(pieces) => glob_match(pieces, text, fold),
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

fn eq_bytes(a: &[u8], b: &[u8], fold: bool) -> bool {
    if fold {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

fn starts_with(text: &[u8], prefix: &[u8], fold: bool) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| eq_bytes(head, prefix, fold))
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
#[allow(private_bounds)]
pub(crate) fn glob_match<P: AsPiece>(pattern: &[P], text: &str, fold: bool) -> bool {
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
                    if starts_with(t.get(i..).unwrap_or_default(), lit.as_bytes(), fold) {
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
    let mut parts = text.splitn(6, ':');
    let out = [
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    ];
    Some(out)
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
        ORDER
            .iter()
            .all(|&i| self.parts[i].matches(arn[i], ctx, false))
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
    pub fn matches(&self, action: &str) -> bool {
        self.patterns.iter().any(|p| p.glob.matches(action, true)) != self.negated
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
        Glob::new(pattern).matches(text, false)
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
    fn folding_is_for_ascii_letters() {
        let g = Glob::new("s3:get*");
        assert!(g.matches("S3:GetObject", true));
        assert!(!g.matches("S3:GetObject", false));
        assert!(Glob::new("s3:getobject").matches("s3:GETOBJECT", true));
        assert!(Glob::new("s3:*object").matches("s3:GETOBJECT", true));
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
