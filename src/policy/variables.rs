//! Policy variables (`${aws:username}`, `${key, 'default'}`, `${*}` `${?}` `${$}`) and the
//! templates they appear in.
//!
//! Follows the IAM User Guide's "Variables and tags" page: variables exist only in
//! `"Version": "2012-10-17"` policies (otherwise `${...}` is literal text); the key name is
//! case-insensitive; a default follows a comma in single quotes; `${*}`, `${?}` and `${$}` stand
//! for the literal characters. A variable whose key has no value (and no default) is null: the
//! text it is part of matches nothing. Substituted text is always matched literally, never as
//! wildcards (AWS does not say; this is the fail-closed reading).

use super::context::{Context, lowercase_key};
use super::matching::{Glob, Piece, glob_match};

/// Templates with at most this many tokens are resolved without allocating.
const INLINE_TOKENS: usize = 8;

/// How a template's text is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Syntax {
    /// `${...}` is a variable (Version 2012-10-17), otherwise literal.
    pub variables: bool,
    /// `*` and `?` are wildcards (Like operators, ARNs), otherwise literal (Equals operators).
    pub wildcards: bool,
}

/// A reference to a condition key inside `${...}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Variable {
    /// Lowercased, as context keys are.
    pub key: Box<str>,
    pub default: Option<Box<str>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    Lit(Box<str>),
    Star,
    One,
    Var(Variable),
}

/// A text from a policy that may contain wildcards and variables, compiled once.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    source: Box<str>,
    kind: TemplateKind,
}

#[derive(Clone, Debug)]
enum TemplateKind {
    /// No variables: matched directly.
    Static(Glob),
    /// Variables are substituted at evaluation time.
    Dynamic(Vec<Token>),
}

impl Template {
    pub fn parse(text: &str, syntax: Syntax) -> Result<Template, &'static str> {
        let tokens = tokenize(text, syntax)?;
        let kind = match Glob::from_tokens(&tokens) {
            Some(glob) => TemplateKind::Static(glob),
            None => TemplateKind::Dynamic(tokens),
        };
        Ok(Template {
            source: text.into(),
            kind,
        })
    }

    /// The text as written in the policy.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn variables(&self) -> impl Iterator<Item = &Variable> {
        let tokens: &[Token] = match &self.kind {
            TemplateKind::Static(_) => &[],
            TemplateKind::Dynamic(tokens) => tokens,
        };
        tokens.iter().filter_map(|t| match t {
            Token::Var(v) => Some(v),
            _ => None,
        })
    }

    pub fn has_variables(&self) -> bool {
        matches!(self.kind, TemplateKind::Dynamic(_))
    }

    /// The template without variables, if it has none.
    pub fn as_static(&self) -> Option<&Glob> {
        match &self.kind {
            TemplateKind::Static(g) => Some(g),
            TemplateKind::Dynamic(_) => None,
        }
    }

    /// Wildcard (or, without wildcards, exact) match, case-sensitive. An unresolvable variable
    /// makes the template match nothing.
    pub fn matches(&self, text: &str, ctx: &Context) -> bool {
        match &self.kind {
            TemplateKind::Static(glob) => glob.matches(text),
            TemplateKind::Dynamic(tokens) => {
                with_resolved(tokens, ctx, |pieces| glob_match(pieces, text)).unwrap_or(false)
            }
        }
    }

    /// Equality ignoring case (Unicode lowercase), for the `*IgnoreCase` operators, whose
    /// templates hold no wildcards.
    pub fn eq_ignore_case(&self, text: &str, ctx: &Context) -> bool {
        let folded = text.chars().flat_map(char::to_lowercase);
        match &self.kind {
            TemplateKind::Static(glob) => glob
                .literal()
                .is_some_and(|lit| lit.chars().flat_map(char::to_lowercase).eq(folded)),
            TemplateKind::Dynamic(tokens) => with_resolved(tokens, ctx, |pieces| {
                pieces
                    .iter()
                    .flat_map(|p| p.text().chars())
                    .flat_map(char::to_lowercase)
                    .eq(folded)
            })
            .unwrap_or(false),
        }
    }

    /// The whole text with variables substituted, for operators that compare parsed values
    /// (`Bool`). `None` if a variable is unresolvable.
    pub fn resolved_text(&self, ctx: &Context) -> Option<String> {
        match &self.kind {
            TemplateKind::Static(_) => Some(self.source.to_string()),
            TemplateKind::Dynamic(tokens) => with_resolved(tokens, ctx, |pieces| {
                pieces.iter().map(Piece::text).collect()
            }),
        }
    }
}

/// Substitutes variables and hands the result to `f`; `None` if a variable has no value and no
/// default. Short templates are resolved on the stack.
fn with_resolved<'a, R>(
    tokens: &'a [Token],
    ctx: &'a Context,
    f: impl FnOnce(&[Piece<'_>]) -> R,
) -> Option<R> {
    let resolve = |token: &'a Token| -> Option<Piece<'a>> {
        Some(match token {
            Token::Lit(s) => Piece::Lit(s),
            Token::Star => Piece::Star,
            Token::One => Piece::One,
            Token::Var(var) => {
                super::trace::note(&var.key);
                Piece::Lit(ctx.variable(&var.key).or(var.default.as_deref())?)
            }
        })
    };
    if tokens.len() <= INLINE_TOKENS {
        let mut buf = [Piece::Star; INLINE_TOKENS];
        for (slot, token) in buf.iter_mut().zip(tokens) {
            *slot = resolve(token)?;
        }
        Some(f(buf.get(..tokens.len()).unwrap_or_default()))
    } else {
        let pieces = tokens.iter().map(resolve).collect::<Option<Vec<_>>>()?;
        Some(f(&pieces))
    }
}

/// Splits text into literal runs, wildcards and variables.
pub(crate) fn tokenize(text: &str, syntax: Syntax) -> Result<Vec<Token>, &'static str> {
    let mut tokens = Vec::new();
    let mut lit = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if syntax.variables && rest.starts_with("${") {
            let body_and_rest = &rest[2..];
            let end = body_and_rest
                .find('}')
                .ok_or("\"${\" without a closing \"}\"")?;
            let body = &body_and_rest[..end];
            rest = &body_and_rest[end + 1..];
            match body {
                "*" | "?" | "$" => lit.push_str(body),
                _ => {
                    flush(&mut lit, &mut tokens);
                    tokens.push(Token::Var(parse_variable(body)?));
                }
            }
            continue;
        }
        rest = &rest[c.len_utf8()..];
        match c {
            '*' if syntax.wildcards => {
                flush(&mut lit, &mut tokens);
                // Consecutive stars mean the same as one.
                if tokens.last() != Some(&Token::Star) {
                    tokens.push(Token::Star);
                }
            }
            '?' if syntax.wildcards => {
                flush(&mut lit, &mut tokens);
                tokens.push(Token::One);
            }
            _ => lit.push(c),
        }
    }
    flush(&mut lit, &mut tokens);
    Ok(tokens)
}

fn flush(lit: &mut String, tokens: &mut Vec<Token>) {
    if !lit.is_empty() {
        tokens.push(Token::Lit(std::mem::take(lit).into_boxed_str()));
    }
}

/// `key` or `key, 'default'` (AWS writes a comma and a space; any spacing is accepted).
fn parse_variable(body: &str) -> Result<Variable, &'static str> {
    let (key, default) = match body.split_once(',') {
        None => (body.trim(), None),
        Some((key, default)) => {
            let default = default.trim();
            let inner = default
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .filter(|_| default.len() >= 2)
                .ok_or("a default value must be written in single quotes, as in ${key, 'value'}")?;
            (key.trim(), Some(inner.into()))
        }
    };
    if key.is_empty() {
        return Err("empty variable name");
    }
    if key
        .chars()
        .any(|c| c.is_whitespace() || c == '$' || c == '{')
    {
        return Err("invalid character in variable name");
    }
    Ok(Variable {
        key: lowercase_key(key).into(),
        default,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: Syntax = Syntax {
        variables: true,
        wildcards: true,
    };
    const LITERAL: Syntax = Syntax {
        variables: false,
        wildcards: true,
    };
    const EXACT: Syntax = Syntax {
        variables: true,
        wildcards: false,
    };

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        let mut c = Context::new();
        for (k, v) in pairs {
            c.set(k, *v);
        }
        c
    }

    #[test]
    fn tokenizes_wildcards_variables_and_escapes() {
        let t = tokenize("a*${aws:UserName}?${*}${$}x", VARS).unwrap();
        assert_eq!(
            t,
            vec![
                Token::Lit("a".into()),
                Token::Star,
                Token::Var(Variable {
                    key: "aws:username".into(),
                    default: None
                }),
                Token::One,
                Token::Lit("*$x".into()),
            ]
        );
    }

    #[test]
    fn defaults_need_single_quotes() {
        let t = tokenize("${aws:PrincipalTag/team, 'company-wide'}", VARS).unwrap();
        assert_eq!(
            t,
            vec![Token::Var(Variable {
                key: "aws:principaltag/team".into(),
                default: Some("company-wide".into())
            })]
        );
        assert!(tokenize("${k, company}", VARS).is_err());
        assert!(tokenize("${k, '}", VARS).is_err());
        assert_eq!(
            tokenize("${k,''}", VARS).unwrap(),
            vec![Token::Var(Variable {
                key: "k".into(),
                default: Some("".into())
            })]
        );
    }

    #[test]
    fn malformed_variables_are_errors() {
        assert!(tokenize("a${aws:username", VARS).is_err());
        assert!(tokenize("${}", VARS).is_err());
        assert!(tokenize("${ , 'x'}", VARS).is_err());
        assert!(tokenize("${a b}", VARS).is_err());
    }

    #[test]
    fn without_version_variables_are_literal_text() {
        let t = tokenize("${aws:username}", LITERAL).unwrap();
        assert_eq!(t, vec![Token::Lit("${aws:username}".into())]);
        let t = tokenize("a${x", LITERAL).unwrap();
        assert_eq!(t, vec![Token::Lit("a${x".into())]);
    }

    #[test]
    fn substitution_is_literal_never_a_wildcard() {
        let tpl = Template::parse("home/${aws:username}/x", VARS).unwrap();
        assert!(tpl.matches("home/a*/x", &ctx(&[("aws:username", "a*")])));
        assert!(!tpl.matches("home/abc/x", &ctx(&[("aws:username", "a*")])));
    }

    #[test]
    fn unresolved_variable_matches_nothing_unless_defaulted() {
        let tpl = Template::parse("${aws:username}*", VARS).unwrap();
        assert!(!tpl.matches("", &Context::new()));
        assert!(!tpl.matches("anything", &Context::new()));
        let tpl = Template::parse("b-${aws:PrincipalTag/team, 'all'}", VARS).unwrap();
        assert!(tpl.matches("b-all", &Context::new()));
        assert!(tpl.matches("b-red", &ctx(&[("aws:principaltag/team", "red")])));
    }

    #[test]
    fn exact_templates_treat_stars_literally() {
        let tpl = Template::parse("a*", EXACT).unwrap();
        assert!(tpl.matches("a*", &Context::new()));
        assert!(!tpl.matches("ab", &Context::new()));
    }

    #[test]
    fn ignore_case_compares_unicode_lowercase() {
        let tpl = Template::parse("ÄBC-${aws:username}", EXACT).unwrap();
        assert!(tpl.eq_ignore_case("äbc-BOB", &ctx(&[("aws:username", "bob")])));
        assert!(!tpl.eq_ignore_case("äbc-bo", &ctx(&[("aws:username", "bob")])));
        assert!(!tpl.eq_ignore_case("äbc-bob", &Context::new()));
    }

    #[test]
    fn resolved_text_substitutes() {
        let tpl = Template::parse("${a}-${b, 'x'}", EXACT).unwrap();
        assert_eq!(tpl.resolved_text(&ctx(&[("a", "1")])), Some("1-x".into()));
        assert_eq!(tpl.resolved_text(&Context::new()), None);
    }
}
