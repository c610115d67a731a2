//! Reading the JSON dialects: the body goes through `serde_json` into a [`Value`] once, then
//! the dialect walks it with these accessors, which know where they are ([`Path`]) so every
//! error names the field (`logics_data.logics[0].records[2].counts[1].value`).
//!
//! Walking a `Value` rather than deriving structs is deliberate: serde's derive errors are
//! strings, and we need to tell a missing field from a wrong type from a bad count.

use serde_json::{Map, Value};

use super::{time, CounterError, Dialect, MAX_NAME};

/// Where a value sits in the document: a chain of keys and indexes on the stack, rendered
/// only when an error needs it.
#[derive(Clone, Copy)]
pub(super) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg<'a>,
}

/// One step of a [`Path`].
#[derive(Clone, Copy)]
enum Seg<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

impl<'a> Path<'a> {
    /// The document itself (rendered `$`).
    pub(super) const ROOT: Path<'static> = Path {
        parent: None,
        seg: Seg::Root,
    };

    /// The member `key` of this object.
    pub(super) fn key<'b>(&'b self, key: &'b str) -> Path<'b> {
        Path {
            parent: Some(self),
            seg: Seg::Key(key),
        }
    }

    /// Element `i` of this array.
    pub(super) fn index(&self, i: usize) -> Path<'_> {
        Path {
            parent: Some(self),
            seg: Seg::Index(i),
        }
    }

    /// `a.b[2].c`, or `$` for the root.
    pub(super) fn render(&self) -> String {
        let mut segs = Vec::new();
        let mut at = Some(self);
        while let Some(p) = at {
            segs.push(p.seg);
            at = p.parent;
        }
        let mut out = String::new();
        for seg in segs.iter().rev() {
            match *seg {
                Seg::Root => {}
                Seg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        if out.is_empty() {
            out.push('$');
        }
        out
    }
}

/// Parses a body as JSON. A UTF-8 byte-order mark is skipped (some HTTP stacks add one); a
/// blank body is [`CounterError::Empty`].
pub(super) fn from_slice(d: Dialect, body: &[u8]) -> Result<Value, CounterError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(CounterError::Empty { dialect: d });
    }
    serde_json::from_slice(body).map_err(|e| CounterError::MalformedJson {
        dialect: d,
        what: match e.classify() {
            serde_json::error::Category::Eof => "truncated",
            serde_json::error::Category::Data => "data",
            _ => "syntax",
        },
        line: e.line(),
        column: e.column(),
    })
}

/// The dialect being read, carried by the accessors for their errors.
#[derive(Clone, Copy)]
pub(super) struct Reader {
    pub(super) d: Dialect,
}

impl Reader {
    /// A [`CounterError::WrongType`] at `p`.
    pub(super) fn wrong(self, p: &Path<'_>, expected: &'static str) -> CounterError {
        CounterError::WrongType {
            dialect: self.d,
            path: p.render(),
            expected,
        }
    }

    /// A [`CounterError::MissingField`] at `p`.
    pub(super) fn missing(self, p: &Path<'_>) -> CounterError {
        CounterError::MissingField {
            dialect: self.d,
            path: p.render(),
        }
    }

    /// `v` as an object.
    pub(super) fn obj<'v>(
        self,
        v: &'v Value,
        p: &Path<'_>,
    ) -> Result<&'v Map<String, Value>, CounterError> {
        v.as_object().ok_or_else(|| self.wrong(p, "object"))
    }

    /// Member `key` of `m`, `None` when absent or `null` (devices write `null` for "none").
    pub(super) fn opt<'v>(self, m: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
        m.get(key).filter(|v| !v.is_null())
    }

    /// Member `key` of `m`, required.
    pub(super) fn req<'v>(
        self,
        m: &'v Map<String, Value>,
        key: &'static str,
        p: &Path<'_>,
    ) -> Result<&'v Value, CounterError> {
        self.opt(m, key).ok_or_else(|| self.missing(&p.key(key)))
    }

    /// `v` as an array.
    pub(super) fn array<'v>(self, v: &'v Value, p: &Path<'_>) -> Result<&'v [Value], CounterError> {
        v.as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.wrong(p, "array"))
    }

    /// `v` as an array, or a lone object as an array of one (JSON converted from XML
    /// writes a one-element list as the element itself).
    pub(super) fn list<'v>(self, v: &'v Value, p: &Path<'_>) -> Result<&'v [Value], CounterError> {
        match v {
            Value::Array(a) => Ok(a),
            Value::Object(_) => Ok(core::slice::from_ref(v)),
            _ => Err(self.wrong(p, "array")),
        }
    }

    /// `v` as a string.
    pub(super) fn str<'v>(self, v: &'v Value, p: &Path<'_>) -> Result<&'v str, CounterError> {
        v.as_str().ok_or_else(|| self.wrong(p, "string"))
    }

    /// `v` as a count: a non-negative JSON integer. `7.0` and `"7"` are the wrong type;
    /// negative and beyond-`u64` integers are bad counts.
    pub(super) fn count(self, v: &Value, p: &Path<'_>) -> Result<u64, CounterError> {
        let bad = |what| CounterError::BadCount {
            dialect: self.d,
            path: p.render(),
            what,
        };
        let Value::Number(n) = v else {
            return Err(self.wrong(p, "unsigned integer"));
        };
        if let Some(u) = n.as_u64() {
            return Ok(u);
        }
        if n.as_i64().is_some() {
            return Err(bad("negative"));
        }
        // A float: serde_json reads integers beyond u64 as floats, so a whole number that
        // large is a count too large, anything else is not a count at all.
        match n.as_f64() {
            Some(f) if f.is_finite() && f.fract() == 0.0 && f < 0.0 => Err(bad("negative")),
            Some(f) if f.is_finite() && f.fract() == 0.0 && f >= 1.8e19 => Err(bad("too_large")),
            _ => Err(self.wrong(p, "unsigned integer")),
        }
    }

    /// `v` as a time: an ISO 8601 string (no offset: `default_offset_s` applies) or, when
    /// `unix_ms` is allowed, an integer of Unix milliseconds.
    pub(super) fn time(
        self,
        v: &Value,
        p: &Path<'_>,
        default_offset_s: i32,
        unix_ms: bool,
    ) -> Result<i64, CounterError> {
        let bad = || CounterError::BadTime {
            dialect: self.d,
            path: p.render(),
        };
        match v {
            Value::String(s) => time::parse_iso(s, default_offset_s).ok_or_else(bad),
            Value::Number(n) if unix_ms => {
                let t = n.as_i64().ok_or_else(|| self.wrong(p, "integer Unix ms"))?;
                time::check_ms(t).ok_or_else(bad)
            }
            _ => Err(self.wrong(p, "time string")),
        }
    }

    /// A name (device, line) checked against [`MAX_NAME`].
    pub(super) fn name(self, s: &str, p: &Path<'_>) -> Result<String, CounterError> {
        if s.len() > MAX_NAME {
            return Err(CounterError::NameTooLong {
                dialect: self.d,
                path: p.render(),
            });
        }
        Ok(s.to_owned())
    }

    /// The first of `keys` in `m` that holds a non-empty string, as a checked name; `""`
    /// when none does. Used for device identities, which are optional everywhere.
    pub(super) fn first_name(
        self,
        m: &Map<String, Value>,
        keys: &[&'static str],
        p: &Path<'_>,
    ) -> Result<String, CounterError> {
        for &k in keys {
            match self.opt(m, k) {
                Some(Value::String(s)) if !s.is_empty() => return self.name(s, &p.key(k)),
                Some(Value::String(_)) | None => {}
                Some(_) => return Err(self.wrong(&p.key(k), "string")),
            }
        }
        Ok(String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_json_paths_and_counts() {
        let root = Path::ROOT;
        assert_eq!(root.render(), "$");
        let a = root.key("logics");
        let b = a.index(3);
        let c = b.key("records");
        assert_eq!(c.index(0).key("to").render(), "logics[3].records[0].to");
        assert_eq!(root.index(2).key("x").render(), "[2].x");

        let r = Reader { d: Dialect::Irisys };
        let v: Value = serde_json::from_str(
            r#"[7, -1, 7.0, "7", 18446744073709551615, 18446744073709551616, -1e30, 1e3]"#,
        )
        .unwrap_or(Value::Null);
        let got: Vec<_> = r
            .array(&v, &root)
            .unwrap()
            .iter()
            .map(|x| r.count(x, &root).map_err(|e| e.reason()))
            .collect();
        assert_eq!(
            got,
            [
                Ok(7),
                Err("bad_count"),
                Err("wrong_type"),
                Err("wrong_type"),
                Ok(u64::MAX),
                Err("bad_count"),
                Err("bad_count"),
                Err("wrong_type"),
            ]
        );
    }
}
