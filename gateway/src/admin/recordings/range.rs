//! The `Range` request header (RFC 9110 §14): one `bytes` range, resolved against a file's
//! length. Several ranges in one request are refused rather than answered as multipart.

/// An inclusive byte range of a file, `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

impl ByteRange {
    /// How many bytes it covers.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never true: a range covers one byte at least (here for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` header value of this range of a `total`-byte file.
    pub fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{total}", self.first, self.last)
    }
}

/// Why a `Range` header cannot be served (answered with 416).
#[derive(Debug, PartialEq, Eq)]
pub enum RangeError {
    /// Not `bytes=first-last`, `bytes=first-` or `bytes=-suffix`.
    Malformed,
    /// More than one range.
    Several,
    /// No byte of the file is in it (or the file is empty).
    Unsatisfiable,
}

impl std::fmt::Display for RangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RangeError::Malformed => {
                "Range: use bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX_LENGTH"
            }
            RangeError::Several => "Range: only one range per request is served",
            RangeError::Unsatisfiable => "Range: no byte of the file is in the requested range",
        })
    }
}

/// The range `header` asks of a `total`-byte file. A last position past the end is cut to
/// the end; a suffix longer than the file is the whole file.
pub fn parse(header: &str, total: u64) -> Result<ByteRange, RangeError> {
    let spec = header
        .trim()
        .strip_prefix("bytes=")
        .ok_or(RangeError::Malformed)?;
    if spec.contains(',') {
        return Err(RangeError::Several);
    }
    let (first, last) = spec.trim().split_once('-').ok_or(RangeError::Malformed)?;
    let number = |s: &str| -> Result<Option<u64>, RangeError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RangeError::Malformed);
        }
        s.parse().map(Some).map_err(|_| RangeError::Malformed)
    };
    let range = match (number(first)?, number(last)?) {
        (Some(first), last) => {
            if last.is_some_and(|l| l < first) {
                return Err(RangeError::Malformed);
            }
            if first >= total {
                return Err(RangeError::Unsatisfiable);
            }
            let end = total - 1;
            ByteRange {
                first,
                last: last.map_or(end, |l| l.min(end)),
            }
        }
        (None, Some(suffix)) => {
            if suffix == 0 || total == 0 {
                return Err(RangeError::Unsatisfiable);
            }
            ByteRange {
                first: total.saturating_sub(suffix),
                last: total - 1,
            }
        }
        (None, None) => return Err(RangeError::Malformed),
    };
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(first: u64, last: u64) -> Result<ByteRange, RangeError> {
        Ok(ByteRange { first, last })
    }

    #[test]
    fn ranges_of_a_100_byte_file() {
        let cases = [
            ("bytes=0-99", r(0, 99)),
            ("bytes=0-0", r(0, 0)),
            ("bytes=10-19", r(10, 19)),
            ("bytes=10-", r(10, 99)),
            ("bytes=90-500", r(90, 99)),
            ("bytes=-10", r(90, 99)),
            ("bytes=-500", r(0, 99)),
            (" bytes= 5 - 6 ", r(5, 6)),
            ("bytes=100-", Err(RangeError::Unsatisfiable)),
            ("bytes=100-200", Err(RangeError::Unsatisfiable)),
            ("bytes=-0", Err(RangeError::Unsatisfiable)),
            ("bytes=20-10", Err(RangeError::Malformed)),
            ("bytes=-", Err(RangeError::Malformed)),
            ("bytes=a-b", Err(RangeError::Malformed)),
            ("bytes=+1-2", Err(RangeError::Malformed)),
            ("bytes=1", Err(RangeError::Malformed)),
            ("items=0-1", Err(RangeError::Malformed)),
            ("", Err(RangeError::Malformed)),
            ("bytes=99999999999999999999-", Err(RangeError::Malformed)),
            ("bytes=0-1,5-6", Err(RangeError::Several)),
        ];
        for (header, want) in cases {
            assert_eq!(parse(header, 100), want, "{header:?}");
        }
        assert_eq!(r(10, 19).unwrap().len(), 10);
        assert_eq!(r(10, 19).unwrap().content_range(100), "bytes 10-19/100");
    }

    #[test]
    fn an_empty_file_has_no_range() {
        assert_eq!(parse("bytes=0-", 0), Err(RangeError::Unsatisfiable));
        assert_eq!(parse("bytes=-1", 0), Err(RangeError::Unsatisfiable));
    }
}
