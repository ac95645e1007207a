//! Reading a job answer whose body exceeds the response cap: a streaming filter that keeps the
//! job object's own fields and replaces the value of its top-level `output` with `null`, so the
//! status of a finished job is still learned when its output is too large to buffer
//! (docs/client.md, "Oversized outputs"). The output's bytes are looked at once and never kept.

/// Most bytes of a top-level key remembered to recognise `output` (longer keys are never it).
const KEY_PREFIX: usize = 8;

/// Streaming filter over a JSON object's bytes: everything but the top-level `output` value is
/// copied out; that value becomes `null`. It only tracks nesting and strings, it does not validate:
/// the kept bytes are decoded afterwards, and anything malformed fails there.
#[derive(Debug, Default)]
pub(super) struct OutputSkim {
    kept: Vec<u8>,
    /// Nesting depth outside the skipped value (1 = inside the top-level object).
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// The last string that ended at depth 1, up to [`KEY_PREFIX`] bytes; `None` when longer.
    last_key: Option<Vec<u8>>,
    /// Bytes of the string being read at depth 1 (`None` once it is longer than the prefix).
    current: Option<Vec<u8>>,
    /// Set while the `output` value is being skipped.
    skip: Option<Skip>,
    /// True once an `output` value was replaced.
    dropped: bool,
}

/// State inside the skipped value.
#[derive(Debug, Default)]
struct Skip {
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// Whether any byte of the value (not whitespace) was seen.
    started: bool,
}

impl OutputSkim {
    /// Feeds the next bytes of the body.
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    /// Bytes kept so far (the body without the output's value).
    pub(super) fn kept_len(&self) -> usize {
        self.kept.len()
    }

    /// The kept body, and whether an `output` value was replaced by `null`.
    pub(super) fn finish(mut self) -> (Vec<u8>, bool) {
        if self.skip.take().is_some() {
            // The body ended inside the value: keep it undecodable rather than guess.
            self.kept.extend_from_slice(b"null");
            self.dropped = true;
        }
        (self.kept, self.dropped)
    }

    fn byte(&mut self, b: u8) {
        if let Some(skip) = &mut self.skip {
            if skip.in_string {
                if skip.escaped {
                    skip.escaped = false;
                } else if b == b'\\' {
                    skip.escaped = true;
                } else if b == b'"' {
                    skip.in_string = false;
                }
                return;
            }
            match b {
                b' ' | b'\t' | b'\n' | b'\r' if !skip.started => return,
                b'"' => skip.in_string = true,
                b'{' | b'[' => skip.depth += 1,
                b'}' | b']' if skip.depth > 0 => skip.depth -= 1,
                b',' if skip.depth > 0 => {}
                // The end of the enclosing object, or the next member: the value is over.
                b'}' | b']' | b',' => {
                    self.skip = None;
                    self.kept.extend_from_slice(b"null");
                    self.dropped = true;
                    return self.byte(b);
                }
                _ => {}
            }
            skip.started = true;
            return;
        }
        self.kept.push(b);
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
                // An escaped key is never taken for `output`.
                self.current = None;
            } else if b == b'"' {
                self.in_string = false;
                if self.depth == 1 {
                    self.last_key = self.current.take();
                }
            } else if let Some(current) = &mut self.current {
                if current.len() < KEY_PREFIX {
                    current.push(b);
                } else {
                    self.current = None;
                }
            }
            return;
        }
        match b {
            b'"' => {
                self.in_string = true;
                self.current = (self.depth == 1).then(Vec::new);
            }
            b'{' | b'[' => {
                self.depth += 1;
                self.last_key = None;
            }
            b'}' | b']' => self.depth = self.depth.saturating_sub(1),
            b':' if self.depth == 1 && self.last_key.take().as_deref() == Some(b"output") => {
                self.skip = Some(Skip::default());
            }
            b',' => self.last_key = None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skim(body: &str, chunk: usize) -> (String, bool) {
        let mut s = OutputSkim::default();
        for part in body.as_bytes().chunks(chunk) {
            s.feed(part);
        }
        let (kept, dropped) = s.finish();
        (String::from_utf8(kept).unwrap(), dropped)
    }

    #[test]
    fn the_top_level_output_becomes_null_whatever_its_shape() {
        for output in [
            r#""x""#,
            r#"{"a":[1,{"output":"y"}],"b":"}\"]"}"#,
            r#"[1, 2, "]"]"#,
            "12.5",
            "true",
            "null",
        ] {
            let body =
                format!(r#"{{"job_id":"j","status":0, "output" : {output} ,"message":"ok"}}"#);
            for chunk in [1, 3, 1000] {
                let (kept, dropped) = skim(&body, chunk);
                let v: serde_json::Value = serde_json::from_str(&kept).unwrap();
                assert_eq!(v["output"], serde_json::Value::Null, "{body}");
                assert_eq!(v["status"], 0);
                assert_eq!(v["message"], "ok");
                assert!(dropped);
            }
        }
    }

    #[test]
    fn output_last_and_nested_outputs_and_values_named_output() {
        let (kept, dropped) = skim(r#"{"job_id":"j","output":{"k":"v"}}"#, 2);
        assert_eq!(kept, r#"{"job_id":"j","output":null}"#);
        assert!(dropped);
        // A nested `output` key and a string value "output" are left alone.
        let body = r#"{"cast_url":"output","input":{"output":"keep"},"status":2}"#;
        assert_eq!(skim(body, 4), (body.to_owned(), false));
        // An escaped key is not taken for `output`.
        let body = r#"{"outp\u0075t":"kept"}"#;
        assert_eq!(skim(body, 1), (body.to_owned(), false));
    }

    #[test]
    fn a_body_cut_inside_the_output_is_not_taken_for_a_whole_one() {
        let (kept, dropped) = skim(r#"{"status":0,"output":"xxxx"#, 5);
        assert!(dropped);
        assert!(serde_json::from_str::<serde_json::Value>(&kept).is_err());
    }
}
