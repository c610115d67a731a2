//! Reading and writing the XML dialects: charset decoding, a roxmltree parse with DTDs
//! refused and a node limit, element lookup by *local* name (vendors change namespaces
//! between firmware versions), error paths (`Metrics/ReportData/Report/Object[1]/@Name`) and
//! escaping for `emit`.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};
use roxmltree::{Document, Node, ParsingOptions};

use super::{CounterError, Dialect, MAX_NAME};

/// Most nodes (elements, attributes' text, comments) one document may have. A real push has
/// a few thousand; the limit bounds memory for a 1 MiB body of `<a/>`s.
const MAX_NODES: u32 = 100_000;

/// The body as text. A byte-order mark decides (UTF-8, UTF-16LE/BE); otherwise the charset
/// of the `<?xml … encoding="…"?>` declaration (GB2312, ISO-8859-1, … through encoding_rs);
/// otherwise UTF-8. Malformed bytes are an error, never replaced.
pub(super) fn decode(d: Dialect, body: &[u8]) -> Result<Cow<'_, str>, CounterError> {
    let bad = |what| CounterError::BadEncoding { dialect: d, what };
    let utf8 = |b| utf8_text(d, b);
    if let Some(rest) = body.strip_prefix(b"\xEF\xBB\xBF") {
        return utf8(rest);
    }
    for (bom, enc) in [(b"\xFF\xFE", UTF_16LE), (b"\xFE\xFF", UTF_16BE)] {
        if let Some(rest) = body.strip_prefix(bom) {
            return enc
                .decode_without_bom_handling_and_without_replacement(rest)
                .ok_or(bad("invalid_charset_bytes"));
        }
    }
    let Some(label) = declared_charset(body) else {
        return utf8(body);
    };
    let enc = Encoding::for_label(label).ok_or(bad("unknown_charset"))?;
    // A declaration we could read as ASCII is not UTF-16 whatever it says.
    if enc == UTF_8 || enc == UTF_16LE || enc == UTF_16BE {
        return utf8(body);
    }
    enc.decode_without_bom_handling_and_without_replacement(body)
        .ok_or(bad("invalid_charset_bytes"))
}

/// `b` as UTF-8 text, or [`CounterError::BadEncoding`].
fn utf8_text(d: Dialect, b: &[u8]) -> Result<Cow<'_, str>, CounterError> {
    core::str::from_utf8(b)
        .map(Cow::Borrowed)
        .map_err(|_| CounterError::BadEncoding {
            dialect: d,
            what: "invalid_utf8",
        })
}

/// The `encoding` pseudo-attribute of an XML declaration at the very start of `body`.
fn declared_charset(body: &[u8]) -> Option<&[u8]> {
    if !body.starts_with(b"<?xml") {
        return None;
    }
    let head = body.get(..body.len().min(256))?;
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = head.get(..end)?;
    let at = decl.windows(8).position(|w| w == b"encoding")?;
    let rest = decl.get(at + 8..)?;
    let rest = rest
        .trim_ascii_start()
        .strip_prefix(b"=")?
        .trim_ascii_start();
    let (&quote, rest) = rest.split_first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let len = rest.iter().position(|&c| c == quote)?;
    rest.get(..len)
}

/// Deepest element nesting accepted. Counter payloads nest 4 to 6 levels.
pub(super) const MAX_DEPTH: usize = 64;

/// Whether elements in `text` nest deeper than `limit`.
///
/// roxmltree 0.20 parses an element's content by recursion, one stack frame chain per
/// level, and has no depth limit: a 1 MiB body of `<a>`s would overflow the stack, which
/// aborts the process. This scan runs first. It may overestimate the depth of a malformed
/// document (which roxmltree would refuse anyway) but never underestimates what roxmltree
/// recurses into: it skips comments, CDATA, processing instructions and quoted attribute
/// values as roxmltree does, and counts every start tag not closed by `/>`.
fn too_deep(text: &str, limit: usize) -> bool {
    let b = text.as_bytes();
    let find = |from: usize, pat: &[u8]| -> Option<usize> {
        b.get(from..)?
            .windows(pat.len())
            .position(|w| w == pat)
            .map(|p| from + p + pat.len())
    };
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(rel) = b.get(i..).and_then(|r| r.iter().position(|&c| c == b'<')) {
        i += rel;
        let rest = b.get(i..).unwrap_or_default();
        let skip_to = if rest.starts_with(b"<!--") {
            find(i + 4, b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            find(i + 9, b"]]>")
        } else if rest.starts_with(b"<?") {
            find(i + 2, b"?>")
        } else if rest.starts_with(b"<!") {
            find(i + 2, b">")
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            find(i + 2, b">")
        } else {
            // A start tag: find its `>` outside quoted attribute values.
            let mut quote = None;
            let mut prev = 0u8;
            let mut end = None;
            for (j, &c) in rest.iter().enumerate().skip(1) {
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if c == b'"' || c == b'\'' => quote = Some(c),
                    None if c == b'>' => {
                        end = Some((i + j + 1, prev == b'/'));
                        break;
                    }
                    None => {}
                }
                prev = c;
            }
            match end {
                Some((next, self_closing)) => {
                    if !self_closing {
                        depth += 1;
                        if depth > limit {
                            return true;
                        }
                    }
                    Some(next)
                }
                None => None,
            }
        };
        // Unterminated constructs end the scan: roxmltree stops there too.
        match skip_to {
            Some(next) => i = next,
            None => return false,
        }
    }
    false
}

/// Parses XML text: no DTD (so no entity expansion), at most [`MAX_NODES`] nodes nested at
/// most [`MAX_DEPTH`] deep.
pub(super) fn document(d: Dialect, text: &str) -> Result<Document<'_>, CounterError> {
    if text.trim().is_empty() {
        return Err(CounterError::Empty { dialect: d });
    }
    if too_deep(text, MAX_DEPTH) {
        return Err(CounterError::MalformedXml {
            dialect: d,
            what: "too_deep",
            line: 0,
            column: 0,
        });
    }
    let opt = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
    };
    Document::parse_with_options(text, opt).map_err(|e| {
        use roxmltree::Error as E;
        let what = match e {
            E::DtdDetected => "dtd",
            E::NodesLimitReached | E::AttributesLimitReached | E::NamespacesLimitReached => {
                "too_many_nodes"
            }
            E::UnknownEntityReference(..)
            | E::MalformedEntityReference(_)
            | E::EntityReferenceLoop(_)
            | E::UnexpectedEntityCloseTag(_) => "entity",
            E::NoRootNode => "no_root",
            _ => "syntax",
        };
        let pos = e.pos();
        CounterError::MalformedXml {
            dialect: d,
            what,
            line: pos.row,
            column: pos.col,
        }
    })
}

/// The first child element of `n` with local name `name`, whatever its namespace.
pub(super) fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// The child elements of `n` with local name `name`.
pub(super) fn children<'a, 'i: 'a>(
    n: Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    n.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// `Root/Child[1]/Leaf`: local names from the root element down, with the index among
/// same-named siblings where there are several.
pub(super) fn path(n: Node<'_, '_>) -> String {
    let mut segs: Vec<String> = Vec::new();
    let mut at = Some(n);
    while let Some(e) = at.filter(Node::is_element) {
        let name = e.tag_name().name();
        let same = |s: &Node<'_, '_>| s.is_element() && s.tag_name().name() == name;
        let before = e.prev_siblings().skip(1).filter(same).count();
        let after = e.next_siblings().skip(1).filter(same).count();
        segs.push(if before + after > 0 {
            format!("{name}[{before}]")
        } else {
            name.to_owned()
        });
        at = e.parent();
    }
    segs.reverse();
    segs.join("/")
}

/// The dialect being read, carried by the accessors for their errors.
#[derive(Clone, Copy)]
pub(super) struct Reader {
    pub(super) d: Dialect,
}

impl Reader {
    /// A [`CounterError::MissingField`] for child or attribute `what` of `n` (`@Name` for
    /// attributes).
    pub(super) fn missing(self, n: Node<'_, '_>, what: &str) -> CounterError {
        CounterError::MissingField {
            dialect: self.d,
            path: format!("{}/{what}", path(n)),
        }
    }

    /// The child element `name` of `n`, required.
    pub(super) fn req_child<'a, 'i>(
        self,
        n: Node<'a, 'i>,
        name: &str,
    ) -> Result<Node<'a, 'i>, CounterError> {
        child(n, name).ok_or_else(|| self.missing(n, name))
    }

    /// The text of child `name` of `n`, trimmed; `None` when the child is absent or blank.
    pub(super) fn opt_text<'a, 'i>(
        self,
        n: Node<'a, 'i>,
        name: &str,
    ) -> Option<(Node<'a, 'i>, Cow<'a, str>)> {
        let c = child(n, name)?;
        let t = text(c);
        (!t.is_empty()).then_some((c, t))
    }

    /// The text of child `name` of `n`, trimmed and non-empty.
    pub(super) fn req_text<'a, 'i>(
        self,
        n: Node<'a, 'i>,
        name: &str,
    ) -> Result<(Node<'a, 'i>, Cow<'a, str>), CounterError> {
        self.opt_text(n, name).ok_or_else(|| self.missing(n, name))
    }

    /// Attribute `name` of `n` (no namespace), required.
    pub(super) fn req_attr<'a>(self, n: Node<'a, '_>, name: &str) -> Result<&'a str, CounterError> {
        n.attribute(name)
            .ok_or_else(|| self.missing(n, &format!("@{name}")))
    }

    /// A count written as decimal text (surrounding whitespace allowed).
    pub(super) fn count(self, s: &str, at: impl Fn() -> String) -> Result<u64, CounterError> {
        let s = s.trim();
        let (neg, digits) = match s.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, s),
        };
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return Err(CounterError::WrongType {
                dialect: self.d,
                path: at(),
                expected: "unsigned integer",
            });
        }
        let bad = |what| CounterError::BadCount {
            dialect: self.d,
            path: at(),
            what,
        };
        if neg {
            // `-0` is zero; anything else below zero is not a count.
            return if digits.bytes().all(|c| c == b'0') {
                Ok(0)
            } else {
                Err(bad("negative"))
            };
        }
        digits.parse().map_err(|_| bad("too_large"))
    }

    /// A name (device, line) checked against [`MAX_NAME`].
    pub(super) fn name(self, s: &str, at: impl Fn() -> String) -> Result<String, CounterError> {
        if s.len() > MAX_NAME {
            return Err(CounterError::NameTooLong {
                dialect: self.d,
                path: at(),
            });
        }
        Ok(s.to_owned())
    }
}

/// The text content of element `n` (its direct text and CDATA children joined), trimmed.
pub(super) fn text<'a>(n: Node<'a, '_>) -> Cow<'a, str> {
    let mut parts = n.children().filter(Node::is_text).filter_map(|c| c.text());
    let first = parts.next().unwrap_or("");
    match parts.next() {
        None => Cow::Borrowed(first.trim()),
        Some(second) => {
            let mut s = String::from(first);
            s.push_str(second);
            parts.for_each(|p| s.push_str(p));
            Cow::Owned(s.trim().to_owned())
        }
    }
}

/// Appends `s` escaped for element text.
pub(super) fn escape_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A raw CR would be normalised away by the reader.
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Appends `s` escaped for a double-quoted attribute value; whitespace other than spaces
/// is written as character references so attribute-value normalisation keeps it.
pub(super) fn escape_attr(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Whether `s` can be written in XML 1.0 and read back unchanged as trimmed element text:
/// no control characters (except tab, LF, CR), no non-characters, no surrounding whitespace.
pub(super) fn writable_text(s: &str) -> bool {
    writable_attr(s) && s.trim() == s
}

/// Whether `s` can be written in an XML 1.0 attribute (no forbidden characters).
pub(super) fn writable_attr(s: &str) -> bool {
    s.chars().all(|c| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_xml_depth_scan() {
        let nest = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        assert!(!too_deep(&nest(3), 3));
        assert!(too_deep(&nest(4), 3));
        // Siblings do not add up; self-closing tags and closed elements do not count.
        assert!(!too_deep("<a><b/><b></b><b x='/>'/><c><d/></c></a>", 2));
        assert!(too_deep("<a><b><c></c></b></a>", 2));
        // What hides in comments, CDATA, PIs and attribute values is not a tag.
        for hidden in [
            "<!-- </a></a> -->",
            "<![CDATA[</a></a>]]>",
            "<?pi </a></a> ?>",
            "<x y=\"&gt;</a></a>\"/>",
        ] {
            let doc = format!("<a><a>{hidden}<a></a></a></a>");
            assert!(too_deep(&doc, 2), "{doc}");
            assert!(!too_deep(&doc, 3), "{doc}");
        }
        // Unterminated input stops the scan (roxmltree refuses it).
        assert!(!too_deep("<a><!-- <a><a>", 1));
        assert!(!too_deep("<a><b x='>", 1));
    }
}
