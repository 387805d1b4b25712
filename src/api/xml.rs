//! XML for Query-protocol responses: escaping, a small element writer, the
//! `<{Action}Response>` envelope, timestamps, and URL-encoded policy documents.

use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::Service;

/// Escapes text for element content.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const POLICY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A policy document as IAM returns it: URL-encoded JSON, which botocore
/// decodes before parsing.
pub fn encode_policy(doc: &str) -> String {
    utf8_percent_encode(doc, POLICY_ENCODE).to_string()
}

/// ISO 8601 UTC as IAM and STS send it.
pub fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Builds the inside of a result element.
#[derive(Default)]
pub struct Xml(String);

impl Xml {
    pub fn new() -> Xml {
        Xml(String::with_capacity(512))
    }

    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.0.push('<');
        self.0.push_str(tag);
        self.0.push('>');
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.0.push_str("</");
        self.0.push_str(tag);
        self.0.push('>');
        self
    }

    /// `<tag>escaped text</tag>`.
    pub fn text(&mut self, tag: &str, value: &str) -> &mut Self {
        self.open(tag);
        self.0.push_str(&escape(value));
        self.close(tag)
    }

    /// `<tag><member>…</member>…</tag>`, each member's content written by `each`.
    pub fn members<T>(
        &mut self,
        tag: &str,
        items: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut Xml, T),
    ) -> &mut Self {
        self.open(tag);
        for item in items {
            self.open("member");
            each(self, item);
            self.close("member");
        }
        self.close(tag)
    }

    /// Escaped text at the current position.
    pub fn escaped(&mut self, value: &str) -> &mut Self {
        self.0.push_str(&escape(value));
        self
    }

    pub fn opt(&mut self, tag: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.text(tag, v);
        }
        self
    }

    pub fn date(&mut self, tag: &str, t: DateTime<Utc>) -> &mut Self {
        self.text(tag, &iso(t))
    }

    pub fn bool(&mut self, tag: &str, b: bool) -> &mut Self {
        self.text(tag, if b { "true" } else { "false" })
    }

    /// `IsTruncated` and, when truncated, `Marker`.
    pub fn page(&mut self, next: Option<&str>) -> &mut Self {
        self.bool("IsTruncated", next.is_some());
        self.opt("Marker", next)
    }

    pub fn finish(self) -> String {
        self.0
    }
}

/// The success envelope; actions without output carry no result element.
pub fn envelope(service: Service, action: &str, result: Option<&str>, request_id: &str) -> String {
    let mut out = String::with_capacity(256 + result.map_or(0, str::len));
    out.push('<');
    out.push_str(action);
    out.push_str("Response xmlns=\"");
    out.push_str(service.namespace());
    out.push_str("\">");
    if let Some(r) = result {
        out.push_str(&format!("<{action}Result>{r}</{action}Result>"));
    }
    out.push_str(&format!(
        "<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        escape(request_id)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_percent_encoded_like_iam() {
        assert_eq!(
            encode_policy(r#"{"A": "s3:*"}"#),
            "%7B%22A%22%3A%20%22s3%3A%2A%22%7D"
        );
    }

    #[test]
    fn text_is_escaped() {
        let mut x = Xml::new();
        x.text("M", "a<b & 'c'");
        assert_eq!(x.finish(), "<M>a&lt;b &amp; &apos;c&apos;</M>");
    }
}
